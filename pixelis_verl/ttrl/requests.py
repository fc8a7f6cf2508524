"""A stream request as what verl's agent loop and the policy's embedding pass take.

A request becomes the same RL row as a training question (`pixelis_verl.data.rl_rows.rl_row`: system prompt,
question images shown at the model's size, the full-resolution copies or the video for the tools), with no
ground truth: the reward loop still scores every pixelis component but accuracy, and the driver adds the
vote's pseudo-label. `rl_rows` (`runtime/upstream.py`) runs verl's own row processing
(`RLHFDataset.__getitem__`: structured messages, tools kwargs) on rows held in memory, so a micro-batch never
goes through a file.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from pixelis_verl.data.rl_rows import rl_row, with_options
from pixelis_verl.runtime.upstream import agent_loop_position_ids
from pixelis_verl.ttrl.stream import Request

DATA_SOURCE = "pixelis/ttrl_stream"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def prompt_text(request: Request, exemplars: list[tuple[str, ...]] | None = None) -> str:
    """The question as the model reads it: options listed, and (optionally) neighbours' successful tool chains."""
    text = with_options(request.question, request.options)
    if exemplars:
        chains = "\n".join(f"- {' -> '.join(chain) if chain else 'answered without tools'}" for chain in exemplars)
        text += f"\nSimilar requests were solved with these tool sequences:\n{chains}"
    return text


def request_row(
    request: Request,
    index: int,
    data_root: str | None,
    shown_max_pixels: int,
    exemplars: list[tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    images = [_png(image) for image in request.images]
    if request.video is None:
        pixelis: dict[str, Any] = {"source_images": [{"bytes": raw} for raw in images], "video": None}
    else:
        # A video request shows its first frame; the tools read the file, named inside their data root.
        path = request.video.relative_to(Path(data_root).resolve()) if data_root else request.video
        pixelis = {"source_images": [], "video": {"path": str(path), "question_frames": [0]}}
    return rl_row(
        question=prompt_text(request, exemplars),
        answer=None,
        answer_metric="exact",
        images=images,
        pixelis=pixelis,
        shown_max_pixels=shown_max_pixels,
        tool_selection=request.tools,
        extra_info={"index": index, "split": "stream", "request_id": request.id, "options": request.options},
        data_source=DATA_SOURCE,
    )


def embedding_inputs(processor: Any, request: Request, shown_max_pixels: int) -> dict[str, torch.Tensor]:
    """The policy's inputs for a request's embedding: question + images in the chat template, no system prompt.

    Position ids are verl's own for the model family (M-RoPE for Qwen-VL: a text row and three vision rows),
    computed by the agent loop's own function (`runtime/upstream.py`), which only reads the processor.
    """
    content = [{"type": "image"} for _ in request.images] + [{"type": "text", "text": prompt_text(request)}]
    text = processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False)
    images = [_shown(image, shown_max_pixels) for image in request.images]
    inputs = dict(processor(text=[text], images=images, return_tensors="pt"))
    position_ids = agent_loop_position_ids(processor, inputs)  # pops mm_token_type_ids, which only they use
    if position_ids.dim() == 3:  # (1, 4, seq) -> (4, 1, seq): verl's Qwen-VL forward takes rows first
        position_ids = position_ids.transpose(0, 1)
    return {**inputs, "position_ids": position_ids}


def _shown(image: Image.Image, max_pixels: int) -> Image.Image:
    """The image at most `max_pixels` large, as the rollout shows it (aspect kept)."""
    scale = (max_pixels / (image.width * image.height)) ** 0.5
    if scale >= 1:
        return image
    return image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))), Image.BICUBIC)
