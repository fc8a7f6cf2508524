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
Point = tuple[float, float]  # x, y

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
        help="pixels of the image as you see it",
    ),
    "relative_1000": CoordFrame(
        extent=lambda shown, source: (1000.0, 1000.0),
        help="relative coordinates, 0 to 1000 on each axis",
    ),
    "absolute_source": CoordFrame(
        extent=lambda shown, source: source,
        help="pixels of the full-resolution image",
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


def parse_int(tool: str, value: Any, arg: str, *, low: int, high: int, hint: str = "") -> int:
    """An integer argument in [low, high] from an int, an integral float or a numeric string."""
    number = _as_number(value)
    if number is None or not math.isfinite(number) or not number.is_integer() or not low <= number <= high:
        raise ToolArgumentError(f"{tool}: {arg} must be an integer from {low} to {high}{hint}; got {show_value(value)}")
    return int(number)


def parse_number(tool: str, value: Any, arg: str) -> float:
    """A finite number from a number or a numeric string."""
    number = _as_number(value)
    if number is None or not math.isfinite(number):
        raise ToolArgumentError(f"{tool}: {arg} must be a number; got {show_value(value)}")
    return number


def _numbers(tool: str, value: Any, arg: str, count: int, shape: str) -> list[float]:
    """`count` finite numbers from a list/tuple of numbers or numeric strings, or a JSON string of one."""
    given = show_value(value)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    numbers = [_as_number(v) for v in value] if isinstance(value, list | tuple) else []
    if len(numbers) != count or None in numbers:
        raise ToolArgumentError(f"{tool}: {arg} must be a list of {count} numbers {shape}; got {given}")
    if not all(math.isfinite(n) for n in numbers):
        raise ToolArgumentError(f"{tool}: {arg} must contain finite numbers; got {given}")
    return numbers


def parse_point(tool: str, value: Any, arg: str = "point_2d") -> Point:
    """[x, y] from a list/tuple of numbers or numeric strings, or a JSON string of one."""
    x, y = _numbers(tool, value, arg, 2, "[x, y]")
    return x, y


def parse_box(tool: str, value: Any, arg: str = "bbox_2d") -> Box:
    """[x1, y1, x2, y2] from a list/tuple of numbers or numeric strings, or a JSON string of one."""
    x1, y1, x2, y2 = _numbers(tool, value, arg, 4, "[x1, y1, x2, y2]")
    if not (x1 < x2 and y1 < y2):
        raise ToolArgumentError(
            f"{tool}: {arg} must be [x1, y1, x2, y2] with x1 < x2 and y1 < y2; got {show_value(value)}"
        )
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


def point_to_source(
    tool: str, point: Point, frame: str, shown: Size, source: Size, *, image_index: int, arg: str = "point_2d"
) -> tuple[int, int]:
    """Map `point` (in `frame`) to the source pixel it falls in; a point outside the image is an error, not clipped."""
    ew, eh = get_coord_frame(frame).extent(shown, source)
    if not (0 <= point[0] <= ew and 0 <= point[1] <= eh):
        raise ToolArgumentError(
            f"{tool}: {arg} [{point[0]:g}, {point[1]:g}] lies outside image {image_index}, "
            f"which spans [0, 0, {ew:g}, {eh:g}] in {frame} coordinates"
        )
    x = min(int(point[0] * source[0] / ew), source[0] - 1)
    y = min(int(point[1] * source[1] / eh), source[1] - 1)
    return x, y


def point_from_source(point: Point, frame: str, shown: Size, source: Size) -> list[int]:
    """A source-pixel point in `frame` coordinates, rounded."""
    ew, eh = get_coord_frame(frame).extent(shown, source)
    sx, sy = ew / source[0], eh / source[1]
    return [round(point[0] * sx), round(point[1] * sy)]


def box_from_source(box: Box, frame: str, shown: Size, source: Size) -> list[int]:
    """A source-pixel box in `frame` coordinates, rounded: how tools report boxes back to the model."""
    return point_from_source(box[:2], frame, shown, source) + point_from_source(box[2:], frame, shown, source)
