"""Rendering CoTA traces into verl's two parquet formats.

SFT rows are what verl's `MultiTurnSFTDataset` reads (`data.messages_key=messages`): one assistant turn per
step (the thought, then the hermes tool call), the tool's observation as a `tool` message with one `<image>`
placeholder per returned image, and a last assistant turn with the final thought and `<answer>`. `images`
holds the question image(s) and then every observation image, in placeholder order. Because verl renders
the same messages through the same chat template in RL, the model imitates exactly what it will see and
write during rollouts. Two columns are JSON strings on purpose, since parquet merges the fields of
differently shaped structs across rows (a zoom call would gain a null `point_2d`): a tool call's
`arguments` (the chat template writes a string as is) and `tools` (decoded by `pixelis_verl.sft.dataset`).

RL rows are `pixelis_verl.data.rl_rows.rl_row`s: the question, the ground truth and the media the tools read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pixelis_verl.data.cota import Trace
from pixelis_verl.data.rl_rows import SYSTEM_PROMPT, rl_row

TOOL_CALL_TYPE = "function"


def arguments_json(arguments: dict[str, Any]) -> str:
    """A call's arguments as the chat template's `tojson` writes them (`json.dumps` defaults)."""
    return json.dumps(arguments, ensure_ascii=False)


def answer_text(trace: Trace) -> str:
    answer = f"<answer>{trace.answer}</answer>"
    return f"{trace.final_thought}\n{answer}" if trace.final_thought else answer


def sft_messages(trace: Trace, system_prompt: str = SYSTEM_PROMPT) -> list[dict[str, Any]]:
    """The conversation of a trace with `<image>` placeholders, in verl's multi-turn SFT message format."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": "<image>" * len(trace.images) + "\n" + trace.question},
    ]
    for step in trace.steps:
        call = {"name": step.tool, "arguments": arguments_json(step.arguments)}
        messages.append({"role": "assistant", "content": step.thought, "tool_calls": [{"type": TOOL_CALL_TYPE,
                                                                                       "function": call}]})  # fmt: skip
        # verl's agent loop puts a tool's images before its text.
        messages.append({"role": "tool", "content": "<image>" * len(step.observation.images) + step.observation.text})
    messages.append({"role": "assistant", "content": answer_text(trace)})
    return messages


def sft_row(trace: Trace, root: Path, schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One row of verl's multi-turn SFT parquet for a trace stored under `root`."""
    offered = trace.tools or sorted(schemas)
    view = trace.view
    question = [
        {"bytes": (root / p).read_bytes(), "min_pixels": view.min_pixels, "max_pixels": view.max_pixels}
        for p in trace.images
    ]
    observed = [{"bytes": (root / p).read_bytes()} for s in trace.steps for p in s.observation.images]
    return {
        "id": trace.id,
        "kind": trace.kind,
        "task": trace.task,
        "messages": sft_messages(trace),
        "images": question + observed,
        "tools": json.dumps([schemas[name] for name in offered], ensure_ascii=False),
    }


def rl_row_of(trace: Trace, root: Path, index: int, split: str, data_root: Path) -> dict[str, Any]:
    """One verl RL row for a trace's question; its video (if any) is named relative to the tools' `data_root`.

    `root / trace.video.path` (an absolute path stays itself) must be the video file, and lie inside `data_root`.
    """
    question = [(root / p).read_bytes() for p in trace.images]
    pixelis: dict[str, Any] = {"source_images": [{"bytes": raw} for raw in question], "video": None}
    if trace.video is not None:
        video = (root / trace.video.path).resolve()
        pixelis = {
            "source_images": [],
            "video": {
                "path": str(video.relative_to(data_root)),
                "question_frames": trace.video.question_frames,
                "fps": trace.video.fps,
            },
        }
    return rl_row(
        question=trace.question,
        answer=trace.answer,
        answer_metric=trace.answer_metric,
        images=question,
        pixelis=pixelis,
        shown_max_pixels=trace.view.max_pixels,
        tool_selection=trace.tools or None,
        extra_info={"index": index, "split": split, "kind": trace.task, "trace_id": trace.id, "variant": trace.kind},
        data_source=trace.provenance.get("source", "pixelis/cota"),
    )
