"""Running tool calls for real, the way verl's tool agent loop runs them.

Synthesis uses a `ToolSession` to produce observations; validation uses `replay_mismatches` to check
that a stored trace's observations are what the tools return today (same text, same pixels); the
trajectory viewer (`pixelis_verl.eval.viewer`) replays a run's logged calls to show what the model got.
A session is one trajectory: the question images as the model sees them (for a trace, resized by its
`View`), the full-resolution sources and the video for the tools (`tools_kwargs["pixelis"]`), and every
image a tool returned, appended in order, so `image_index` and `mask_id` resolve as in RL.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from verl.experimental.agent_loop.tool_agent_loop import AgentData
from verl.tools.tool_registry import initialize_tools_from_config

from pixelis_verl.data.cota import Observation, Step, Trace, TraceError, TraceSet
from pixelis_verl.tools.state import release_trajectory
from pixelis_verl.trajectory.steps import STEPS_KEY

MAX_PIXEL_DIFF = 1.0  # mean absolute difference (grey levels) two observation images may differ by


def load_tools(tool_config: str | Path, data_root: str | Path) -> dict[str, Any]:
    """The tools of a tool YAML, by name, reading media under `data_root` (the YAML's data_root reads the env)."""
    previous = os.environ.get("PIXELIS_DATA_ROOT")
    os.environ["PIXELIS_DATA_ROOT"] = str(data_root)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # verl prints every schema it loads
            return {tool.name: tool for tool in initialize_tools_from_config(str(tool_config))}
    finally:
        if previous is None:
            os.environ.pop("PIXELIS_DATA_ROOT")
        else:
            os.environ["PIXELIS_DATA_ROOT"] = previous


def tool_schemas(tools: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each tool's schema exactly as verl's agent loop renders it (pydantic round trip drops unknown keys)."""
    return {name: tool.tool_schema.model_dump(exclude_unset=True, exclude_none=True) for name, tool in tools.items()}


def tools_kwargs(trace: Trace) -> dict[str, Any]:
    """The `tools_kwargs` an RL row of this trace hands its tools: sources and video relative to the data root."""
    if trace.video is not None:  # the question images are frames of the video; the tools decode them from it
        video = {"path": trace.video.path, "question_frames": list(trace.video.question_frames), "fps": trace.video.fps}
        return {"pixelis": {"source_images": [], "video": video}}
    return {"pixelis": {"source_images": [{"path": path} for path in trace.images], "video": None}}


def shown_image(source: Image.Image, trace: Trace) -> Image.Image:
    """The question image as the model sees it: resized by the processor's rule (qwen_vl_utils uses bicubic)."""
    return source.convert("RGB").resize(trace.view.shown_size(source.size), Image.Resampling.BICUBIC)


class ToolSession:
    """One trajectory's tool calls, made the way verl's agent loop makes them; use as a context manager (it frees
    the tools' state).

    `shown` are the question images as the model saw them, `tools_kwargs` the row's (the full-resolution sources and
    the video the tools read), `request_id` names the trajectory's tool state (masks, frame images).
    """

    def __init__(self, tools: dict[str, Any], shown: list[Image.Image], tools_kwargs: dict[str, Any], request_id: str):
        self.tools = tools
        self.agent_data = AgentData([], list(shown), None, None, None, {}, request_id, tools_kwargs)

    @classmethod
    def for_trace(cls, trace: Trace, root: Path, tools: dict[str, Any]) -> ToolSession:
        """A session on a trace's media (paths under `root`), its question images resized by the trace's view."""
        shown = []
        for path in trace.images:
            with Image.open(root / path) as image:
                shown.append(shown_image(image, trace))
        return cls(tools, shown, tools_kwargs(trace), f"cota-{trace.id}")

    def call(self, tool: str, arguments: dict[str, Any]) -> tuple[str, list[Image.Image], bool]:
        """(text, images, ok) of one call; the images join the conversation, as in verl's agent loop."""
        return self.call_turn([(tool, arguments)])[0]

    def call_turn(self, calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, list[Image.Image], bool]]:
        """(text, images, ok) of each call of one assistant turn, in order.

        Every call sees the images of the conversation before the turn; the images they return join it after the
        turn, in call order, as verl's agent loop appends them (it runs a turn's calls concurrently).
        """
        unknown = [tool for tool, _ in calls if tool not in self.tools]
        if unknown:
            raise TraceError("unknown_tool", f"no tool named {unknown[0]!r}; known: {sorted(self.tools)}")
        results = []
        for tool, arguments in calls:
            execution = self.tools[tool].execute("replay", arguments, agent_data=self.agent_data)
            response, _, metrics = asyncio.run(execution)
            results.append((response.text or "", list(response.image or []), bool(metrics["ok"])))
        for _, images, _ in results:
            self.agent_data.image_data.extend(images)
        return results

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The tools' step records of the calls made so far (`pixelis_verl.trajectory.steps.StepRecord`)."""
        return self.agent_data.extra_fields.get(STEPS_KEY, [])

    def __enter__(self) -> ToolSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        release_trajectory(self.agent_data.request_id)


class StepFailed(RuntimeError):
    """A planned call the tool refused; the message is the tool's own error text."""


def run_steps(trace: Trace, out: TraceSet, tools: dict[str, Any], plan: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Execute `plan` ((thought, tool, arguments) per step) on the trace's media and append the steps.

    Observation images are saved under the set's media folder. A call a tool refuses raises StepFailed: a
    trace must only show calls that work (self-correction traces show misses that work but reveal nothing).
    """
    with ToolSession.for_trace(trace, out.root, tools) as session:
        for number, (thought, tool, arguments) in enumerate(plan):
            text, images, ok = session.call(tool, arguments)
            if not ok:
                raise StepFailed(f"{trace.id}: {tool}({arguments}) failed: {text}")
            paths = []
            for k, image in enumerate(images):
                path = out.media_path(f"{trace.id}/step{number}_{k}.png")
                image.save(path, format="PNG")
                paths.append(out.relative(path))
            trace.steps.append(Step(thought, tool, arguments, Observation(text, paths)))


def replay_mismatches(trace: Trace, root: Path, tools: dict[str, Any]) -> list[TraceError]:
    """Re-run every step; an `observation_mismatch` for each step whose text or images differ from the stored ones."""
    errors = []
    with ToolSession.for_trace(trace, root, tools) as session:
        for number, step in enumerate(trace.steps, start=1):
            text, images, _ = session.call(step.tool, step.arguments)
            where = f"trace {trace.id} step {number} ({step.tool})"
            if text != step.observation.text:
                errors.append(
                    TraceError("observation_mismatch", f"{where}: the tool now says {text!r}, the trace has "
                               f"{step.observation.text!r}")
                )  # fmt: skip
            elif len(images) != len(step.observation.images):
                errors.append(
                    TraceError("observation_mismatch", f"{where}: the tool now returns {len(images)} image(s), "
                               f"the trace has {len(step.observation.images)}")
                )  # fmt: skip
            else:
                for new, path in zip(images, step.observation.images, strict=True):
                    if _pixel_difference(new, root / path) > MAX_PIXEL_DIFF:
                        errors.append(TraceError("observation_mismatch", f"{where}: image {path} differs"))
    return errors


def _pixel_difference(image: Image.Image, path: Path) -> float:
    with Image.open(path) as stored:
        if stored.size != image.size:
            return float("inf")
        a = np.asarray(stored.convert("RGB"), dtype=np.float32)
    return float(np.abs(a - np.asarray(image.convert("RGB"), dtype=np.float32)).mean())
