"""Coordinate frames for the boxes and points a model emits, and mapping them to and from source pixels.

The model sees a resized copy of each image, and VLM families ground in different frames:
Qwen2.5-VL emits pixels of the image it was shown, Qwen3-VL emits 0..1000 relative coordinates.
Tools work in source pixels (the full-resolution image when the row provides one). Every frame is
therefore defined by its extent, the width and height its coordinates span for a given image, and
mapping to source pixels is one scale per axis. A new frame is one entry in `COORD_FRAMES`.

Parsing the numbers themselves is `tools/arguments.py`.
"""

from collections.abc import Callable
from dataclasses import dataclass

from pixelis_verl.tools.arguments import Box, Point, ToolArgumentError

Size = tuple[int, int]  # (width, height) in pixels


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
