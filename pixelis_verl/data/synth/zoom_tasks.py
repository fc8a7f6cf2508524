"""Synthetic zoom tasks: a large noisy canvas with one small target whose answer needs a zoom.

The model sees the canvas downscaled (about 448 px for an 896 px canvas), where the target spans a
few pixels: 9-12 px text becomes 4-6 px and unreadable, a 6-10 px dot keeps no reliable colour, a
10-14 px shape no reliable outline. Zooming into the target at source resolution recovers the answer.
Distractors are large, muted, text-free shapes kept clear of the target, so the question has exactly
one answer. Each task is generated from its own (seed, index) stream: a task does not depend on how
many were generated, and the same seed always gives the same pixels.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

KINDS = ("text", "colour", "shape")

# Saturated, well-separated colours for targets; distractors are muted so they never read as these.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (20, 150, 40),
    "blue": (30, 70, 220),
    "yellow": (240, 200, 0),
    "orange": (245, 120, 10),
    "purple": (130, 40, 170),
    "black": (15, 15, 15),
}
SHAPES = ("circle", "square", "triangle", "diamond")
WORDS = (
    "apple", "river", "cloud", "tiger", "piano", "lemon", "house", "train", "chair", "stone",
    "bread", "plant", "mouse", "ocean", "candle", "rocket", "garden", "window", "silver", "paper",
    "wolf", "bird", "lamp", "door", "moon", "star", "fish", "kite", "ship", "rain",
)  # fmt: skip

TEXT_SIZES_PX = (9, 12)  # font size range, inclusive
DOT_DIAMETERS_PX = (6, 10)
SHAPE_SIZES_PX = (10, 14)
DISTRACTOR_SIZES_PX = (60, 260)
NUM_DISTRACTORS = (4, 9)  # range, upper exclusive
NOISE_STD = 6.0  # background noise, grey levels
EDGE_MARGIN_PX = 24  # target keeps this far from the canvas edge
CLEARANCE_PX = 16  # distractors keep this far from the target
CANVAS_SIZE = (896, 896)  # pixels; the model is shown at most 448 px of it, so small targets need a zoom


@dataclass
class ZoomTask:
    image: Image.Image
    question: str
    answer: str
    target_box: tuple[int, int, int, int]  # x1, y1, x2, y2 in canvas pixels; x2/y2 exclusive
    kind: str  # one of KINDS


def _background(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    base = rng.integers(200, 246, size=3)
    noise = rng.normal(0.0, NOISE_STD, size=(size[1], size[0], 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def _place(rng: np.random.Generator, canvas: tuple[int, int], w: int, h: int) -> tuple[int, int]:
    x = int(rng.integers(EDGE_MARGIN_PX, canvas[0] - EDGE_MARGIN_PX - w))
    y = int(rng.integers(EDGE_MARGIN_PX, canvas[1] - EDGE_MARGIN_PX - h))
    return x, y


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], fill: tuple) -> None:
    x1, y1, x2, y2 = box[0], box[1], box[2] - 1, box[3] - 1  # PIL's draw boxes are inclusive
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    if shape == "circle":
        draw.ellipse((x1, y1, x2, y2), fill=fill)
    elif shape == "square":
        draw.rectangle((x1, y1, x2, y2), fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, y1), (x2, y2), (x1, y2)], fill=fill)
    elif shape == "diamond":
        draw.polygon([(cx, y1), (x2, cy), (cx, y2), (x1, cy)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")


def draw_label(
    rng: np.random.Generator, canvas: Image.Image, text: str, size_px: int, pad: int
) -> tuple[int, int, int, int]:
    """Black `text` on a white, grey-outlined box at a random place; returns the box (x2/y2 exclusive)."""
    font = ImageFont.load_default(size=size_px)
    left, top, right, bottom = font.getbbox(text)
    w, h = right - left + 2 * pad, bottom - top + 2 * pad
    x, y = _place(rng, canvas.size, w, h)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((x, y, x + w - 1, y + h - 1), fill=(255, 255, 255), outline=(90, 90, 90))
    draw.text((x + pad - left, y + pad - top), text, font=font, fill=(0, 0, 0))
    return x, y, x + w, y + h


def _text_target(rng: np.random.Generator, canvas: Image.Image) -> tuple[str, str, tuple[int, int, int, int]]:
    is_number = rng.random() < 0.3
    answer = str(int(rng.integers(100, 10000))) if is_number else str(rng.choice(WORDS))
    box = draw_label(rng, canvas, answer, int(rng.integers(TEXT_SIZES_PX[0], TEXT_SIZES_PX[1] + 1)), pad=3)
    question = f"What {'number' if is_number else 'word'} is written in the small box?"
    return question, answer, box


def _colour_target(rng: np.random.Generator, canvas: Image.Image) -> tuple[str, str, tuple[int, int, int, int]]:
    answer = str(rng.choice(list(COLOURS)))
    d = int(rng.integers(DOT_DIAMETERS_PX[0], DOT_DIAMETERS_PX[1] + 1))
    x, y = _place(rng, canvas.size, d, d)
    _draw_shape(ImageDraw.Draw(canvas), "circle", (x, y, x + d, y + d), COLOURS[answer])
    return "What colour is the small circle?", answer, (x, y, x + d, y + d)


def _shape_target(rng: np.random.Generator, canvas: Image.Image) -> tuple[str, str, tuple[int, int, int, int]]:
    colour = str(rng.choice(list(COLOURS)))
    answer = str(rng.choice(SHAPES))
    s = int(rng.integers(SHAPE_SIZES_PX[0], SHAPE_SIZES_PX[1] + 1))
    x, y = _place(rng, canvas.size, s, s)
    _draw_shape(ImageDraw.Draw(canvas), answer, (x, y, x + s, y + s), COLOURS[colour])
    return f"What shape is the small {colour} object?", answer, (x, y, x + s, y + s)


_TARGETS = {"text": _text_target, "colour": _colour_target, "shape": _shape_target}


def _add_distractors(
    rng: np.random.Generator, canvas: Image.Image, keep_clear: tuple[int, int, int, int] | None
) -> None:
    """Large muted shapes and lines, pasted through a mask that spares the area around the target (if any)."""
    layer = canvas.copy()
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(*NUM_DISTRACTORS))):
        w, h = (int(v) for v in rng.integers(DISTRACTOR_SIZES_PX[0], DISTRACTOR_SIZES_PX[1] + 1, size=2))
        x = int(rng.integers(-w // 2, canvas.width - w // 2))
        y = int(rng.integers(-h // 2, canvas.height - h // 2))
        muted = tuple(int(0.45 * c + 0.55 * 170) for c in rng.integers(0, 256, size=3))
        if rng.random() < 0.2:
            draw.line((x, y, x + w, y + h), fill=muted, width=int(rng.integers(3, 9)))
        else:
            _draw_shape(draw, str(rng.choice(["circle", "square", "triangle"])), (x, y, x + w, y + h), muted)
    if keep_clear is None:
        canvas.paste(layer)
        return
    mask = Image.new("L", canvas.size, 255)
    x1, y1, x2, y2 = keep_clear
    ImageDraw.Draw(mask).rectangle(
        (x1 - CLEARANCE_PX, y1 - CLEARANCE_PX, x2 - 1 + CLEARANCE_PX, y2 - 1 + CLEARANCE_PX), fill=0
    )
    canvas.paste(layer, mask=mask)


def generate_zoom_task(seed: int, index: int, canvas_size: tuple[int, int] = CANVAS_SIZE) -> ZoomTask:
    """Task `index` of the stream for `seed`; kinds rotate text, colour, shape."""
    rng = np.random.default_rng([seed, index])
    kind = KINDS[index % len(KINDS)]
    canvas = _background(rng, canvas_size)
    question, answer, box = _TARGETS[kind](rng, canvas)
    _add_distractors(rng, canvas, keep_clear=box)
    return ZoomTask(image=canvas, question=question, answer=answer, target_box=box, kind=kind)


def generate_zoom_tasks(num: int, seed: int, canvas_size: tuple[int, int] = CANVAS_SIZE) -> list[ZoomTask]:
    """`num` tasks, deterministic in `seed`; the first k of num are the k tasks of generate_zoom_tasks(k, seed)."""
    return [generate_zoom_task(seed, i, canvas_size) for i in range(num)]
