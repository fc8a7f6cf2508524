"""Running tool calls outside a rollout, the way verl's tool agent loop runs them.

Data synthesis and validation, the trajectory viewer and the learner's trace synthesis all need a tool's real
answer without a rollout: a `ToolSession` is one trajectory, the question images as the model sees them, the
full-resolution sources and the video for the tools (`tools_kwargs["pixelis"]`), and every image a tool
returned, appended in order, so `image_index` and `mask_id` resolve as in RL.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from pathlib import Path
from typing import Any

from PIL import Image
from verl.experimental.agent_loop.tool_agent_loop import AgentData
from verl.tools.tool_registry import initialize_tools_from_config

from pixelis_verl.tools.state import release_trajectory
from pixelis_verl.trajectory.steps import STEPS_KEY


class UnknownTool(ValueError):
    """A call named a tool the session does not have."""


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


class ToolSession:
    """One trajectory's tool calls, made the way verl's agent loop makes them; use as a context manager (it frees
    the tools' state).

    `shown` are the question images as the model saw them, `tools_kwargs` the row's (the full-resolution sources and
    the video the tools read), `request_id` names the trajectory's tool state (masks, frame images).
    """

    def __init__(self, tools: dict[str, Any], shown: list[Image.Image], tools_kwargs: dict[str, Any], request_id: str):
        self.tools = tools
        self.agent_data = AgentData(
            messages=[],
            image_data=list(shown),
            video_data=None,
            audio_data=None,
            mm_processor_kwargs=None,
            metrics={},
            request_id=request_id,
            tools_kwargs=tools_kwargs,
        )

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
            raise UnknownTool(f"no tool named {unknown[0]!r}; known: {sorted(self.tools)}")
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
