"""Synthetic videos of one saturated shape moving over a static scene, with its box known on every frame.

The scene is a noisy light background with a few large muted distractors; the target glides along a
straight or gently curved path (a quadratic Bezier curve) whose net direction sits near the middle of
one of the eight compass sectors, so its direction word is unambiguous. Half the videos (odd
`index`) have an event: the target changes colour at `event_frame`. Ground truth serves tracking
tests and tasks such as "which way does the red square move?" or "when does it change colour?".
Each video comes from its own (seed, index) stream, like the zoom tasks.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from pixelis_verl.data.synth.zoom_tasks import COLOURS, SHAPES, _background, _draw_shape
from pixelis_verl.ops.track import direction_word
from pixelis_verl.ops.zoom import PixelBox

TARGET_SIDE = (0.08, 0.12)  # target side, fraction of the frame's short side
DISTRACTOR_SIDE = (0.2, 0.45)  # muted distractors are larger than the target, fraction of the short side
NUM_DISTRACTORS = (2, 5)  # range, upper exclusive
TRAVEL = (0.35, 0.6)  # net distance moved, fraction of the short side
BEND = 0.3  # the path's control point sits up to this fraction of the travel off the straight line
ANGLE_JITTER_DEG = 12.0  # net direction within this of a sector's centre; sectors are 45 degrees wide
MARGIN_PX = 4  # the target stays this far inside the frame
FRAME_NOISE_STD = 2.0  # fresh sensor noise on every frame, grey levels
_FOURCCS = {".mp4": "mp4v", ".avi": "MJPG"}


@dataclass
class MovingObjectVideo:
    frames: list[np.ndarray]  # RGB uint8, height x width x 3
    boxes: list[PixelBox]  # the target's box on each frame; x2/y2 exclusive
    fps: float
    colour: str  # the target's colour on frame 0, a key of COLOURS
    shape: str  # one of SHAPES
    direction: str  # direction_word of the net motion, e.g. "up-left"
    event_frame: int | None  # first frame showing the event; None when nothing happens
    event: str | None  # e.g. "the red circle turns blue"
    background: np.ndarray  # the scene without the target, RGB uint8


def _distractors(rng: np.random.Generator, canvas: Image.Image) -> None:
    draw = ImageDraw.Draw(canvas)
    short = min(canvas.size)
    for _ in range(int(rng.integers(*NUM_DISTRACTORS))):
        w, h = (int(short * v) for v in rng.uniform(*DISTRACTOR_SIDE, size=2))
        x, y = int(rng.integers(-w // 3, canvas.width - w // 2)), int(rng.integers(-h // 3, canvas.height - h // 2))
        muted = tuple(int(0.45 * c + 0.55 * 170) for c in rng.integers(0, 256, size=3))
        _draw_shape(draw, str(rng.choice(["circle", "square", "triangle"])), (x, y, x + w, y + h), muted)


def _path(rng: np.random.Generator, size: tuple[int, int], side: int, num_frames: int) -> list[tuple[int, int]]:
    """Top-left corners along a Bezier curve from start to end, inside the frame."""
    width, height = size
    angle = math.radians(45 * int(rng.integers(8)) + rng.uniform(-ANGLE_JITTER_DEG, ANGLE_JITTER_DEG))
    travel = rng.uniform(*TRAVEL) * min(size)
    dx, dy = travel * math.cos(angle), -travel * math.sin(angle)  # image y grows downwards
    lo_x, hi_x, lo_y, hi_y = MARGIN_PX, width - MARGIN_PX - side, MARGIN_PX, height - MARGIN_PX - side
    x0 = rng.uniform(max(lo_x, lo_x - dx), min(hi_x, hi_x - dx))
    y0 = rng.uniform(max(lo_y, lo_y - dy), min(hi_y, hi_y - dy))
    bend = rng.uniform(-BEND, BEND)
    cx = min(max(x0 + dx / 2 - dy * bend, lo_x), hi_x)  # midpoint pushed along the normal (-dy, dx)
    cy = min(max(y0 + dy / 2 + dx * bend, lo_y), hi_y)
    corners = []
    for i in range(num_frames):
        t = i / max(num_frames - 1, 1)
        x = (1 - t) ** 2 * x0 + 2 * t * (1 - t) * cx + t**2 * (x0 + dx)
        y = (1 - t) ** 2 * y0 + 2 * t * (1 - t) * cy + t**2 * (y0 + dy)
        corners.append((round(x), round(y)))
    return corners


def generate_moving_object_video(
    seed: int, index: int, *, size: tuple[int, int] = (320, 240), num_frames: int = 30, fps: float = 10
) -> MovingObjectVideo:
    """Video `index` of the stream for `seed`; `size` is (width, height) in pixels."""
    rng = np.random.default_rng([seed, index])
    scene = _background(rng, size)
    _distractors(rng, scene)
    colour, shape = str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES))
    side = round(rng.uniform(*TARGET_SIDE) * min(size))
    corners = _path(rng, size, side, num_frames)
    event_frame, event, new_colour = None, None, colour
    if index % 2 == 1:
        event_frame = int(rng.integers(num_frames // 3, 2 * num_frames // 3 + 1))
        new_colour = str(rng.choice([c for c in COLOURS if c != colour]))
        event = f"the {colour} {shape} turns {new_colour}"
    frames, boxes = [], []
    for i, (x, y) in enumerate(corners):
        canvas = scene.copy()
        box = (x, y, x + side, y + side)
        fill = COLOURS[new_colour if event_frame is not None and i >= event_frame else colour]
        _draw_shape(ImageDraw.Draw(canvas), shape, box, fill)
        noise = rng.normal(0.0, FRAME_NOISE_STD, size=(size[1], size[0], 1)).astype(np.float32)
        frames.append(np.clip(np.asarray(canvas, dtype=np.float32) + noise, 0, 255).astype(np.uint8))
        boxes.append(box)
    (x0, y0), (x1, y1) = corners[0], corners[-1]
    return MovingObjectVideo(
        frames=frames,
        boxes=boxes,
        fps=float(fps),
        colour=colour,
        shape=shape,
        direction=direction_word(x1 - x0, y1 - y0, box_size=side),
        event_frame=event_frame,
        event=event,
        background=np.asarray(scene),
    )


def write_video(frames: list[np.ndarray], path: str | Path, fps: float) -> Path:
    """Write RGB `frames` as an .mp4 (mp4v) or .avi (MJPG) file, or, for a path without suffix, a folder of PNGs.

    A file is read back to check that every frame made it; returns `path`.
    """
    path = Path(path)
    if not path.suffix:
        path.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(frames):
            cv2.imwrite(str(path / f"{i:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        return path
    if path.suffix not in _FOURCCS:
        raise ValueError(f"write_video: {path} must end in one of {list(_FOURCCS)} or have no suffix (PNG folder)")
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*_FOURCCS[path.suffix]), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    written = int(cv2.VideoCapture(str(path), cv2.CAP_FFMPEG).get(cv2.CAP_PROP_FRAME_COUNT))
    if written != len(frames):
        raise ValueError(f"write_video: {path} reads back {written} frames, not {len(frames)}")
    return path
