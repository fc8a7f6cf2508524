"""Crop a box out of an image and resize the crop for a vision encoder.

The crop is sized the way Qwen-VL's own `smart_resize` sizes images: both sides a multiple of the
encoder's patch-merge size (`size_factor`, 28 for Qwen2.5-VL, 32 for Qwen3-VL) and the area inside
[min_pixels, max_pixels]. An image already sized like that passes through the model's processor
unchanged, so the crop the tool returns is exactly the image the model sees, and a later call that
points into the crop in shown pixels lands where the model meant.
"""

import math
from typing import NamedTuple

from PIL import Image

from pixelis_verl.ops.sizes import fit_size

PixelBox = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels; x2 and y2 exclusive, as in PIL's crop

# Snapping a float box to whole pixels floors the top-left and ceils the bottom-right; this slack
# keeps a box that is an integer up to float error (e.g. 199.99999999) from growing by a pixel.
_SNAP_EPS = 1e-6


REDUCING_GAP = 2.0  # PIL: >= 3 is indistinguishable from a full resample, 2 is close and twice as fast


class Zoom(NamedTuple):
    image: Image.Image
    box: PixelBox  # the box actually cropped, in pixels of the input image


def snap_box(box: tuple[float, float, float, float], size: tuple[int, int]) -> PixelBox:
    """The smallest whole-pixel box covering `box`, clipped to an image of `size` (width, height)."""
    width, height = size
    x1 = min(max(math.floor(box[0] + _SNAP_EPS), 0), width - 1)
    y1 = min(max(math.floor(box[1] + _SNAP_EPS), 0), height - 1)
    x2 = max(min(math.ceil(box[2] - _SNAP_EPS), width), x1 + 1)
    y2 = max(min(math.ceil(box[3] - _SNAP_EPS), height), y1 + 1)
    return x1, y1, x2, y2


def _widen(lo: int, hi: int, length: int, limit: int) -> tuple[int, int]:
    """Grow [lo, hi) to `length` around its centre, shifted to stay inside [0, limit)."""
    length = min(length, limit)
    lo = round((lo + hi - length) / 2)
    lo = min(max(lo, 0), limit - length)
    return lo, lo + length


def limit_aspect(box: PixelBox, size: tuple[int, int], max_aspect_ratio: float) -> PixelBox:
    """Widen the short side of a sliver box so long/short <= max_aspect_ratio (inside the image).

    Qwen-VL's processors reject images with aspect ratio above 200, and that error would surface
    outside the tool, in verl's tokenisation, and end the rollout. Showing more context is also more
    useful to the model than a one-pixel-high strip stretched to a patch.
    """
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if w > h * max_aspect_ratio:
        y1, y2 = _widen(y1, y2, math.ceil(w / max_aspect_ratio), size[1])
    elif h > w * max_aspect_ratio:
        x1, x2 = _widen(x1, x2, math.ceil(h / max_aspect_ratio), size[0])
    return x1, y1, x2, y2


def grow_to_min_side(
    box: tuple[float, float, float, float], size: tuple[int, int], min_side: int
) -> tuple[float, float, float, float]:
    """`box` (clipped to an image of `size`) scaled about its centre so its shorter side is `min_side`, as Qwen-Agent's
    zoom tool does before cropping (a box too small to show anything); kept as is when the grown box, clipped to the
    image, would still have a side under `min_side`."""
    x1, y1 = max(box[0], 0.0), max(box[1], 0.0)
    x2, y2 = min(box[2], float(size[0])), min(box[3], float(size[1]))
    width, height = x2 - x1, y2 - y1
    if min(width, height) >= min_side or min(width, height) <= 0:
        return x1, y1, x2, y2
    ratio = min_side / min(width, height)
    half_w, half_h = math.ceil(width * ratio / 2), math.ceil(height * ratio / 2)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    grown = (
        max(math.floor(cx - half_w), 0),
        max(math.floor(cy - half_h), 0),
        min(math.ceil(cx + half_w), size[0]),
        min(math.ceil(cy + half_h), size[1]),
    )
    if min(grown[2] - grown[0], grown[3] - grown[1]) >= min_side:
        return tuple(float(v) for v in grown)
    return x1, y1, x2, y2


def zoom(
    image: Image.Image,
    box: tuple[float, float, float, float],
    *,
    min_pixels: int,
    max_pixels: int,
    size_factor: int = 28,
    max_aspect_ratio: float = 50.0,
) -> Zoom:
    """Crop `box` (pixels of `image`, clipped to it) and resize it for the vision encoder.

    Tiny crops are upscaled to at least `min_pixels` so the encoder gets enough patches to see the
    detail; large ones are downscaled to at most `max_pixels` to bound the tokens they cost.
    Raises ValueError when the box does not overlap the image.
    """
    if not (box[0] < image.width and box[1] < image.height and box[2] > 0 and box[3] > 0):
        raise ValueError(f"zoom: box {list(box)} does not overlap the {image.width}x{image.height} image")
    used = limit_aspect(snap_box(box, image.size), image.size, max_aspect_ratio)
    image = image if image.mode == "RGB" else image.convert("RGB")
    width, height = used[2] - used[0], used[3] - used[1]
    size = fit_size(width, height, min_pixels=min_pixels, max_pixels=max_pixels, factor=size_factor)
    if size == (width, height):
        crop = image.crop(used)
    else:
        # Resampling straight from the box skips copying the crop. Downscaling uses PIL's antialiased bilinear filter
        # (40% cheaper than bicubic: a 1045x697 crop, 7 -> 4 ms) after an integer box-reduction of large crops
        # (reducing_gap; a 2000x1500 crop: 20 -> 10 ms); small crops are upscaled bicubically, where it shows.
        upscale = size[0] > width
        resample = Image.Resampling.BICUBIC if upscale else Image.Resampling.BILINEAR
        crop = image.resize(size, resample, box=used, reducing_gap=None if upscale else REDUCING_GAP)
    return Zoom(crop, used)
