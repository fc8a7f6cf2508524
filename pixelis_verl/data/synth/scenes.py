"""Synthetic scenes of flat-coloured shapes with known masks, for segmentation tests and compare-objects tasks.

Each object has its own saturated colour and an area at least AREA_RATIO times that of the next
smaller one, so "which is bigger" and "which colour is it" have exactly one answer. Objects keep
CLEARANCE_PX apart and are painted through their own mask, so each mask is exactly the object's
pixels. Each scene is generated from its own (seed, index) stream, like the zoom tasks.
"""

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from pixelis_verl.data.synth.zoom_tasks import COLOURS, _background, _draw_shape
from pixelis_verl.ops.zoom import PixelBox

# Shape name -> (shape drawn by zoom_tasks._draw_shape, fraction of its box it fills, box width/height)
SHAPES: dict[str, tuple[str, float, float]] = {
    "circle": ("circle", math.pi / 4, 1.0),
    "square": ("square", 1.0, 1.0),
    "triangle": ("triangle", 0.5, 1.0),
    "diamond": ("diamond", 0.5, 1.0),
    "rectangle": ("square", 1.0, 2.0),  # drawn wide or tall at random
    "ellipse": ("circle", math.pi / 4, 2.0),
}
SCENE_SIZE = (640, 480)  # pixels
MIN_AREA_PX = 400  # about a 20x20 square
MAX_AREA_FRACTION = 0.08  # of the canvas, for the largest object
AREA_RATIO = 1.6  # object areas are drawn from a ladder with this step
CLEARANCE_PX = 12  # between object boxes, and from the canvas edge
PLACEMENT_TRIES = 200


@dataclass
class SceneObject:
    shape: str  # a key of SHAPES
    colour: str  # a key of zoom_tasks.COLOURS
    rgb: tuple[int, int, int]
    mask: np.ndarray  # bool HxW, exactly the pixels painted with `rgb`
    box: PixelBox  # tight box of the mask; x2/y2 exclusive
    area: int  # pixels
    centroid: tuple[float, float]  # x, y pixels


@dataclass
class Scene:
    image: Image.Image
    objects: list[SceneObject]  # largest first


def _overlaps(a: PixelBox, b: PixelBox) -> bool:
    return (
        a[0] < b[2] + CLEARANCE_PX
        and b[0] < a[2] + CLEARANCE_PX
        and a[1] < b[3] + CLEARANCE_PX
        and b[1] < a[3] + CLEARANCE_PX
    )


def _place(rng: np.random.Generator, size: tuple[int, int], w: int, h: int, taken: list[PixelBox]) -> PixelBox:
    tries = PLACEMENT_TRIES if max(w - size[0], h - size[1]) + 2 * CLEARANCE_PX <= 0 else 0
    for _ in range(tries):
        x = int(rng.integers(CLEARANCE_PX, size[0] - CLEARANCE_PX - w + 1))
        y = int(rng.integers(CLEARANCE_PX, size[1] - CLEARANCE_PX - h + 1))
        box = (x, y, x + w, y + h)
        if not any(_overlaps(box, other) for other in taken):
            return box
    raise ValueError(f"generate_scene: no room for a {w}x{h} object among {len(taken)} on a {size[0]}x{size[1]} canvas")


def generate_scene(
    seed: int, index: int, size: tuple[int, int] = SCENE_SIZE, num_objects: tuple[int, int] = (2, 5)
) -> Scene:
    """Scene `index` of the stream for `seed`: num_objects (inclusive range) shapes on a noisy light canvas."""
    rng = np.random.default_rng([seed, index])
    max_area = MAX_AREA_FRACTION * size[0] * size[1]
    ladder = [MIN_AREA_PX * AREA_RATIO**i for i in range(int(math.log(max_area / MIN_AREA_PX, AREA_RATIO)) + 1)]
    count = int(rng.integers(num_objects[0], num_objects[1] + 1))
    if count > min(len(COLOURS), len(ladder)):
        most = min(len(COLOURS), len(ladder))
        raise ValueError(f"generate_scene: {count} objects need distinct colours and sizes; at most {most} here")
    areas = sorted(rng.choice(ladder, size=count, replace=False), reverse=True)
    colours = rng.choice(list(COLOURS), size=count, replace=False)
    canvas, taken, objects = _background(rng, size), [], []
    for area, colour in zip(areas, colours, strict=True):
        shape = str(rng.choice(list(SHAPES)))
        drawn_as, fill, aspect = SHAPES[shape]
        aspect = aspect if rng.random() < 0.5 else 1 / aspect
        h = max(round(math.sqrt(area / (fill * aspect))), 2)
        w = max(round(h * aspect), 2)
        box = _place(rng, size, w, h, taken)
        taken.append(box)
        stencil = Image.new("L", size, 0)
        _draw_shape(ImageDraw.Draw(stencil), drawn_as, box, 255)
        rgb = COLOURS[str(colour)]
        canvas.paste(rgb, mask=stencil)
        mask = np.asarray(stencil) > 0
        ys, xs = np.nonzero(mask)
        tight = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        centroid = (float(xs.mean()), float(ys.mean()))
        objects.append(SceneObject(shape, str(colour), rgb, mask, tight, int(mask.sum()), centroid))
    return Scene(image=canvas, objects=objects)
