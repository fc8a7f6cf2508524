"""Benchmark variants as verl RL rows, one set per arm: the tool run and its tool-free control.

Both arms share everything but the tools: the same question text, options in the same order, the same
images at the same size, the same answer matching. The tool arm offers the pixel tools with the tool
system prompt; the control offers none (an empty ``tool_selection``, see ``pixelis_verl.agent_loop``)
with the same instructions minus the tool sentences. Each row's ``data_source`` is
``<benchmark>/<arm>``, so verl's own validation metrics come out per arm too.

Media stay where the benchmark keeps them: image files are read (not re-encoded) for the model's view
and named by path for the tools, inside the tools' data root (the benchmark folder); images a benchmark
ships as bytes travel as bytes. A video question shows `video_frames` frames spread over the video, in
both arms; the tools read the whole video.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from pixelis_verl.data.rl_rows import SYSTEM_PROMPT, TOOL_FREE_SYSTEM_PROMPT, png_bytes, rl_row, with_options
from pixelis_verl.eval.items import BenchmarkItem
from pixelis_verl.eval.protocols import Variant
from pixelis_verl.ops.video import VideoReader

ARMS = {"tools": SYSTEM_PROMPT, "no_tools": TOOL_FREE_SYSTEM_PROMPT}
CHOICE_INSTRUCTION = "Answer with the option's letter."


def _frames(
    path: Path, count: int, fps: float | None, window: tuple[float, float] | None
) -> tuple[list[bytes], list[int]]:
    """`count` frames spread over the video, or over its `window` (seconds) where the question names one."""
    reader = VideoReader(path, fps=fps)
    try:
        first, last = 0, reader.info.num_frames - 1
        if window is not None:
            first = min(int(window[0] * reader.info.fps), last)
            last = max(first, min(int(window[1] * reader.info.fps), last))
        indices = sorted({int(i) for i in np.linspace(first, last, max(1, count))})
        return [png_bytes(Image.fromarray(frame.image)) for frame in reader.frames(indices)], indices
    finally:
        reader.close()


def _relative(path: Path, data_root: Path) -> str:
    return str(path.resolve().relative_to(data_root.resolve()))


@dataclass(frozen=True)
class Media:
    """A question's media as its rows carry them: the images the model is shown and the tools' `pixelis` entry."""

    images: list[bytes]
    pixelis: dict[str, Any]


def item_media(item: BenchmarkItem, data_root: Path, video_frames: int) -> Media:
    """Read (or, for a video, decode) a question's media once; every variant and arm of it reuses them."""
    if item.video is not None:
        images, indices = _frames(item.video, video_frames, item.video_fps, item.video_window)
        video = {"path": _relative(item.video, data_root), "fps": item.video_fps, "question_frames": indices}
        return Media(images, {"source_images": [], "video": video})
    images = [raw if isinstance(raw, bytes) else raw.read_bytes() for raw in item.images]
    sources = [{"bytes": raw} if isinstance(raw, bytes) else {"path": _relative(raw, data_root)} for raw in item.images]
    return Media(images, {"source_images": sources, "video": None})


def variant_row(
    variant: Variant, media: Media, arm: str, benchmark: str, shown_max_pixels: int, tools: list[str] | None
) -> dict[str, Any]:
    item = variant.item
    question = with_options(item.question, variant.options)
    if variant.options is not None:
        question += "\n" + CHOICE_INSTRUCTION
    return rl_row(
        question=question,
        answer=variant.answer,
        answer_metric=item.metric,
        images=media.images,
        pixelis=media.pixelis,
        shown_max_pixels=shown_max_pixels,
        tool_selection=[] if arm == "no_tools" else tools,
        extra_info={
            "id": item.id, "arm": arm, "benchmark": benchmark, "category": item.category,
            "categories": item.categories, "rotation": variant.rotation,
            "options": variant.options, "answers": item.answers,
        },
        data_source=f"{benchmark}/{arm}",
        system_prompt=ARMS[arm],
    )  # fmt: skip


def write_rows(rows: list[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path, index=False)
    return path
