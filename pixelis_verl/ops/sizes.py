"""How Qwen-VL sizes an image for its vision encoder, in one place for the processor, the tools and the data.

Qwen-VL's own `smart_resize` makes both sides a multiple of the encoder's patch-merge size (28 for Qwen2.5-VL,
32 for Qwen3-VL) with the area inside [min_pixels, max_pixels]; an image already sized like that passes through
the processor unchanged, which is what lets a tool's returned view be exactly the image the model sees.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple


def fit_size(width: int, height: int, *, min_pixels: int, max_pixels: int, factor: int) -> tuple[int, int]:
    """(width, height) with sides multiples of `factor`, area within [min_pixels, max_pixels], aspect kept."""
    w_bar = max(factor, round(width / factor) * factor)
    h_bar = max(factor, round(height / factor) * factor)
    if w_bar * h_bar > max_pixels:
        beta = math.sqrt(width * height / max_pixels)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
    elif w_bar * h_bar < min_pixels:
        beta = math.sqrt(min_pixels / (width * height))
        w_bar = math.ceil(width * beta / factor) * factor
        h_bar = math.ceil(height * beta / factor) * factor
    return w_bar, h_bar


class ImageBudget(NamedTuple):
    """How the processor sizes images: area bounds in pixels and the side multiple (patch size x merge size)."""

    min_pixels: int
    max_pixels: int
    factor: int

    @classmethod
    def of(cls, processor: Any) -> ImageBudget:
        image_processor = processor.image_processor
        size = image_processor.size
        return cls(size["shortest_edge"], size["longest_edge"], image_processor.patch_size * image_processor.merge_size)
