"""Coordinate frames for the boxes a model emits, and the checks those boxes must pass.

The model sees a resized copy of each image, and VLM families ground in different frames:
Qwen2.5-VL emits pixels of the image it was shown, Qwen3-VL emits 0..1000 relative coordinates.
Tools work in source pixels (the full-resolution image when the row provides one). Every frame is
therefore defined by its extent, the width and height its coordinates span for a given image, and
mapping to source pixels is one scale per axis. A new frame is one entry in `COORD_FRAMES`.

Argument errors are `ToolArgumentError`s whose message is shown to the model, so each is one line
that names the tool, the argument and the value it got.
"""

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Size = tuple[int, int]  # (width, height) in pixels
Box = tuple[float, float, float, float]  # x1, y1, x2, y2

# Longest rendering of a bad value inside an error message; verl truncates tool text to
# `multi_turn.max_tool_response_length` (256 characters by default).
_MAX_VALUE_CHARS = 60


class ToolArgumentError(ValueError):
    """An argument the model got wrong. The message goes back to the model as the tool's answer."""


@dataclass(frozen=True)
class CoordFrame:
    extent: Callable[[Size, Size], tuple[float, float]]  # (shown size, source size) -> span of the coordinates
    help: str  # how the frame reads to the model; used in tool descriptions


COORD_FRAMES: dict[str, CoordFrame] = {
    "absolute_resized": CoordFrame(
        extent=lambda shown, source: shown,
        help="pixel coordinates of the image as you see it (0 to its width and height)",
    ),
    "relative_1000": CoordFrame(
        extent=lambda shown, source: (1000.0, 1000.0),
        help="relative coordinates from 0 to 1000 on each axis ([0, 0, 1000, 1000] is the whole image)",
    ),
    "absolute_source": CoordFrame(
        extent=lambda shown, source: source,
        help="pixel coordinates of the original full-resolution image",
    ),
}


def get_coord_frame(name: str) -> CoordFrame:
    if name not in COORD_FRAMES:
        raise ValueError(f"coord_frame must be one of {sorted(COORD_FRAMES)}; got {name!r}")
    return COORD_FRAMES[name]


def show_value(value: Any) -> str:
    """A short, JSON-looking rendering of a model-given value for an error message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def parse_box(tool: str, value: Any, arg: str = "bbox_2d") -> Box:
    """[x1, y1, x2, y2] from a list/tuple of numbers or numeric strings, or a JSON string of one."""
    given = show_value(value)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    numbers = [_as_number(v) for v in value] if isinstance(value, list | tuple) else []
    if len(numbers) != 4 or None in numbers:
        raise ToolArgumentError(f"{tool}: {arg} must be a list of 4 numbers [x1, y1, x2, y2]; got {given}")
    if not all(math.isfinite(n) for n in numbers):
        raise ToolArgumentError(f"{tool}: {arg} must contain finite numbers; got {given}")
    x1, y1, x2, y2 = numbers
    if not (x1 < x2 and y1 < y2):
        raise ToolArgumentError(f"{tool}: {arg} must be [x1, y1, x2, y2] with x1 < x2 and y1 < y2; got {given}")
    return x1, y1, x2, y2


def box_to_source(
    tool: str, box: Box, frame: str, shown: Size, source: Size, *, image_index: int, arg: str = "bbox_2d"
) -> Box:
    """Clip `box` (in `frame`) to the image and map it to source pixels.

    Raises ToolArgumentError when nothing of the box is left inside the image after clipping.
    """
    ew, eh = get_coord_frame(frame).extent(shown, source)
    x1, x2 = (min(max(v, 0.0), ew) for v in (box[0], box[2]))
    y1, y2 = (min(max(v, 0.0), eh) for v in (box[1], box[3]))
    if x2 <= x1 or y2 <= y1:
        raise ToolArgumentError(
            f"{tool}: {arg} [{', '.join(f'{v:g}' for v in box)}] lies outside image {image_index}, "
            f"which spans [0, 0, {ew:g}, {eh:g}] in {frame} coordinates"
        )
    sx, sy = source[0] / ew, source[1] / eh
    return x1 * sx, y1 * sy, x2 * sx, y2 * sy
