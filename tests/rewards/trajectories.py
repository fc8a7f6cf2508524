"""Hand-built trajectories for the reward tests: a response as verl decodes it, and the tools' step records."""

from __future__ import annotations

import json
from typing import Any

from pixelis_verl.trajectory.parse import Trajectory, build_trajectory
from pixelis_verl.trajectory.steps import GROUP_KEY, OBSERVATION_DIM, STEPS_KEY


def feature(level: float, spread: float = 0.1) -> list[float]:
    """An observation feature: a flat image of grey `level` (in [0, 1])."""
    return [level] * 3 + [spread] * 3 + [1.0 if i == min(int(level * 8), 7) else 0.0 for i in range(8)] + [0.0, 0.0]


def step(
    tool: str = "zoom_in",
    args: dict | None = None,
    *,
    ok: bool = True,
    error_kind: str | None = None,
    region: list[float] | None = None,
    seen: list[float] | None = None,
    returned: list[float] | None = None,
) -> dict[str, Any]:
    assert seen is None or len(seen) == OBSERVATION_DIM
    return {
        "tool": tool,
        "args": args if args is not None else {"bbox_2d": [0, 0, 10, 10]},
        "ok": ok,
        "error": None if ok else f"{tool}: bad",
        "error_kind": None if ok else (error_kind or "argument"),
        "reward": 0.0 if ok else -0.05,
        "latency_ms": 1.0,
        "image_index": 0 if ok else None,
        "box_source": None,
        "region": region if region is not None else ([0.1, 0.1, 0.4, 0.4] if ok else None),
        "span": None,
        "input_observation": seen if seen is not None else (feature(0.5) if ok else None),
        "observation": returned if returned is not None else (feature(0.2) if ok else None),
    }


def response(turns: list[tuple[str, list[dict]]], answer: str | None) -> str:
    """Assistant turns (thought, calls), each followed by a tool response turn, then the answer: ChatML as decoded."""
    parts = []
    for thought, calls in turns:
        blocks = "".join(f"<tool_call>\n{json.dumps(call)}\n</tool_call>" for call in calls)
        parts.append(
            f"{thought}{blocks}<|im_end|>\n<|im_start|>user\n<tool_response>\n"
            "<|vision_start|><|image_pad|><|vision_end|>done\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
        )
    parts.append(f"<answer>{answer}</answer><|im_end|>" if answer is not None else "I am not sure.<|im_end|>")
    return "".join(parts)


def trajectory(
    steps: list[dict],
    *,
    answer: str | None = "red",
    truth: str | None = "red",
    thoughts: list[str] | None = None,
    response_tokens: int = 100,
    group: dict | None = None,
    text: str | None = None,
) -> Trajectory:
    """One assistant turn per step, its call written as the model would, with the step's record."""
    thoughts = thoughts or [f"Look closer at region {i}." for i in range(len(steps))]
    turns = [(t, [{"name": s["tool"], "arguments": s["args"]}]) for t, s in zip(thoughts, steps, strict=True)]
    extra = {STEPS_KEY: steps, **({GROUP_KEY: group} if group else {})}
    return build_trajectory(
        text if text is not None else response(turns, answer),
        truth,
        extra,
        response_tokens=response_tokens,
        max_response_tokens=1000,
    )
