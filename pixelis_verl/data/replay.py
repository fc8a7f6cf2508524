"""CoTA traces and the real tools: synthesis executes a trace's plan, validation replays its stored steps.

Both run the calls in a `ToolSession` (`tools/session.py`) on the trace's media, its question images resized
by the trace's `View`: `run_steps` appends the observations synthesis gets, `replay_mismatches` checks that a
stored trace's observations are what the tools return today (same text, same pixels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pixelis_verl.data.cota import Observation, Step, Trace, TraceError, TraceSet
from pixelis_verl.tools.session import ToolSession, UnknownTool

MAX_PIXEL_DIFF = 1.0  # mean absolute difference (grey levels) two observation images may differ by


def tools_kwargs(trace: Trace) -> dict[str, Any]:
    """The `tools_kwargs` an RL row of this trace hands its tools: sources and video relative to the data root."""
    if trace.video is not None:  # the question images are frames of the video; the tools decode them from it
        video = {"path": trace.video.path, "question_frames": list(trace.video.question_frames), "fps": trace.video.fps}
        return {"pixelis": {"source_images": [], "video": video}}
    return {"pixelis": {"source_images": [{"path": path} for path in trace.images], "video": None}}


def shown_image(source: Image.Image, trace: Trace) -> Image.Image:
    """The question image as the model sees it: resized by the processor's rule (qwen_vl_utils uses bicubic)."""
    return source.convert("RGB").resize(trace.view.shown_size(source.size), Image.Resampling.BICUBIC)


def trace_session(trace: Trace, root: Path, tools: dict[str, Any]) -> ToolSession:
    """A session on a trace's media (paths under `root`), its question images resized by the trace's view."""
    shown = []
    for path in trace.images:
        with Image.open(root / path) as image:
            shown.append(shown_image(image, trace))
    return ToolSession(tools, shown, tools_kwargs(trace), f"cota-{trace.id}")


def _call(session: ToolSession, tool: str, arguments: dict[str, Any]) -> tuple[str, list[Image.Image], bool]:
    try:
        return session.call(tool, arguments)
    except UnknownTool as e:
        raise TraceError("unknown_tool", str(e)) from None


class StepFailed(RuntimeError):
    """A planned call the tool refused; the message is the tool's own error text."""


def run_steps(trace: Trace, out: TraceSet, tools: dict[str, Any], plan: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Execute `plan` ((thought, tool, arguments) per step) on the trace's media and append the steps.

    Observation images are saved under the set's media folder. A call a tool refuses raises StepFailed: a
    trace must only show calls that work (self-correction traces show misses that work but reveal nothing).
    """
    with trace_session(trace, out.root, tools) as session:
        for number, (thought, tool, arguments) in enumerate(plan):
            text, images, ok = _call(session, tool, arguments)
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
    with trace_session(trace, root, tools) as session:
        for number, step in enumerate(trace.steps, start=1):
            text, images, _ = _call(session, step.tool, step.arguments)
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
