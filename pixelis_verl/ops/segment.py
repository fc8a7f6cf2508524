"""Segment the object under a point (or inside a box): its mask, tight box and area.

Backends are built by name from SEGMENT_BACKENDS. "grabcut" needs no weights and takes about a
tenth of a second on one CPU thread even for a 12 MP image, because it works on a copy of at most
`work_size`² pixels: a window around the point at full resolution for a small object, a window grown
and area-averaged by powers of two until it holds the whole object for a large one. "sam2" runs
SAM 2 from a local checkpoint on a GPU. Masks are always in pixels of the input image.
"""

import inspect
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import cv2
import numpy as np
from PIL import Image

from pixelis_verl.ops.zoom import PixelBox

_MIN_SAMPLES = 10  # GrabCut fits 5-component colour models to each side and cannot with fewer samples


@dataclass
class Segmentation:
    mask: np.ndarray  # bool, HxW, pixels of the input image
    box: PixelBox  # tight box of the mask
    area: int  # pixels in the mask
    score: float  # 0..1 confidence; what it measures is documented by each backend


class SegmentBackend(Protocol):
    def segment(self, image: np.ndarray | Image.Image, point: tuple[int, int]) -> Segmentation:
        """Mask of the object at `point` (x, y), whole pixels inside the image (RGB uint8 HxWx3 or PIL).

        A PIL image is passed as given so a backend reads only the pixels it needs: converting a
        12 MP PIL image to numpy alone takes about 50 ms.
        """
        ...


def image_size(image: np.ndarray | Image.Image) -> tuple[int, int]:
    """(width, height) of a PIL image or an RGB uint8 HxWx3 array; ValueError for other arrays."""
    if isinstance(image, Image.Image):
        return image.size
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"segment: image must be RGB uint8 HxWx3; got {image.dtype} {image.shape}")
    return image.shape[1], image.shape[0]


def read_window(image: np.ndarray | Image.Image, box: PixelBox, factor: int = 1) -> np.ndarray:
    """RGB uint8 pixels of `box`, area-averaged by `factor` (box sides must be multiples of it).

    A PIL image is cropped before it is converted, never converted whole.
    """
    if isinstance(image, Image.Image):
        if image.mode == "RGB" and factor > 1:
            return np.asarray(image.reduce(factor, box=box))
        part = image.crop(box).convert("RGB")
        return np.asarray(part.reduce(factor) if factor > 1 else part)
    part = image[box[1] : box[3], box[0] : box[2]]
    size = ((box[2] - box[0]) // factor, (box[3] - box[1]) // factor)
    return part if factor == 1 else cv2.resize(part, size, interpolation=cv2.INTER_AREA)


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab (L 0..100) of an RGB uint8 image."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


class _Work(NamedTuple):
    """A window of the image area-averaged by a power of two: the copy the GrabCut code works on."""

    window: PixelBox
    factor: int
    rgb: np.ndarray
    lab: np.ndarray  # CIE Lab (L 0..100) of a lightly blurred rgb, so pixel noise does not split a flat region

    @classmethod
    def read(cls, image: np.ndarray | Image.Image, window: PixelBox, factor: int) -> "_Work":
        rgb = read_window(image, window, factor)
        return cls(window, factor, rgb, _lab(cv2.GaussianBlur(rgb, (5, 5), 0)))

    def at(self, point: tuple[int, int]) -> tuple[int, int]:
        return (point[0] - self.window[0]) // self.factor, (point[1] - self.window[1]) // self.factor

    def to_full(self, mask: np.ndarray, size: tuple[int, int], score: float) -> Segmentation:
        """`mask`, in working pixels, as a Segmentation in pixels of the whole image.

        Nearest upscaling by an integer factor keeps the mask exact and connected; only the mask's own
        box is upscaled, which matters at 12 MP.
        """
        x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
        f, x1, y1 = self.factor, self.window[0] + x * self.factor, self.window[1] + y * self.factor
        up = cv2.resize(mask[y : y + h, x : x + w].astype(np.uint8), (w * f, h * f), interpolation=cv2.INTER_NEAREST)
        full = np.zeros((size[1], size[0]), bool)
        full[y1 : y1 + h * f, x1 : x1 + w * f] = up.view(bool)
        return Segmentation(full, (x1, y1, x1 + w * f, y1 + h * f), int(np.count_nonzero(mask)) * f * f, score)


def _window(box: tuple[int, int, int, int], factor: int, size: tuple[int, int]) -> PixelBox:
    """`box` with sides grown to multiples of `factor` about its centre, then shifted (or cut) to fit the image."""
    spans = []
    for lo, hi, limit in ((box[0], box[2], size[0]), (box[1], box[3], size[1])):
        length = min(math.ceil((hi - lo) / factor) * factor, limit // factor * factor)
        start = min(max((lo + hi - length) // 2, 0), limit - length)
        spans.append((start, start + length))
    return spans[0][0], spans[1][0], spans[0][1], spans[1][1]


def _grow(box: PixelBox, by: int, shape: tuple[int, ...]) -> PixelBox:
    """`box` grown by `by` px on each side, clipped to an array of `shape` (height, width, ...)."""
    return max(box[0] - by, 0), max(box[1] - by, 0), min(box[2] + by, shape[1]), min(box[3] + by, shape[0])


def _component_at(mask: np.ndarray, point: tuple[int, int]) -> np.ndarray:
    """The 8-connected component of `mask` containing `point` (x, y); empty when the point is not in it."""
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return (labels == labels[point[1], point[0]]) & mask


def _separation(lab: np.ndarray, mask: np.ndarray) -> float:
    """d / (1 + d), d = colour step from the mask to a ring around it over the colour spread of both.

    The ring is 3 to 6 px out and the inside is eroded by 3 px, so the edge's blend is in neither. 0.5
    when the step equals the spread; near 1 for a flat object on a contrasting background; 0 with no ring.
    """
    near, far = (cv2.dilate(mask.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool) for k in (7, 13))
    core = cv2.erode(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    inside, outside = lab[core if core.any() else mask], lab[far & ~near]
    if not len(outside):
        return 0.0
    spread = [np.sqrt(((p - p.mean(0)) ** 2).sum(1).mean()) for p in (inside, outside)]
    d = float(np.linalg.norm(inside.mean(0) - outside.mean(0)) / (spread[0] + spread[1] + 1.0))
    return d / (1.0 + d)


def _grabcut(rgb: np.ndarray, labels: np.ndarray, iterations: int) -> np.ndarray | None:
    """Foreground after GrabCut from initial cv2.GC_* `labels` (updated in place); None if a side is too small."""
    foreground = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if min(np.count_nonzero(foreground), np.count_nonzero(~foreground)) < _MIN_SAMPLES:
        return None
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(np.ascontiguousarray(rgb), labels, None, *models, iterations, cv2.GC_INIT_WITH_MASK)
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


@dataclass(frozen=True)
class GrabCutBackend:
    """Colour seed plus GrabCut, on CPU, no weights.

    The seed is the connected region around the point whose colour is within `seed_delta_e` (CIE76) of
    the object's colour at the click (see `_seed`). It is looked for in a work_size window around the
    point at full resolution; while it comes within work_size/8 of the window's edge (not the image's),
    the window doubles and is area-averaged by two more. GrabCut then refines the seed inside the seed's
    box grown by work_size/16, learning the background from a band as wide again around that, and the
    8-connected component holding the point is kept; if GrabCut drops the point the seed is kept instead.
    score: `_separation` of the mask from its surroundings.
    """

    work_size: int = 256  # px; side of the working copy (GrabCut time grows with its area)
    seed_delta_e: float = 20.0  # CIE76 Lab distance from the object's colour at the click that still counts as it
    iterations: int = 3  # GrabCut rounds

    def __post_init__(self) -> None:
        if self.work_size < 32 or self.seed_delta_e <= 0 or self.iterations < 1:
            raise ValueError(f"grabcut backend: need work_size >= 32, seed_delta_e > 0, iterations >= 1; got {self}")

    def _seed(self, work: _Work, at: tuple[int, int], clicked: np.ndarray) -> np.ndarray:
        """Pixels connected to `at` whose (blurred) colour is within seed_delta_e of the object's colour.

        The object's colour is that of the working pixel within 2 px nearest to `clicked`, the Lab colour
        of the clicked full-resolution pixel: a click on an edge, where blurring and area-averaging blend
        object and background, still takes the object's colour. `at` is joined to the seed by a line.
        """
        x0, y0 = max(at[0] - 2, 0), max(at[1] - 2, 0)
        around = work.lab[y0 : at[1] + 3, x0 : at[0] + 3]
        nearest = int(np.argmin(np.linalg.norm(around - clicked, axis=2)))
        ref = (x0 + nearest % around.shape[1], y0 + nearest // around.shape[1])
        close = np.linalg.norm(work.lab - work.lab[ref[1], ref[0]], axis=2) < self.seed_delta_e
        seed = _component_at(close, ref).astype(np.uint8)
        return cv2.line(seed, at, ref, 1).astype(bool)

    def _find_seed(self, image: np.ndarray | Image.Image, point: tuple[int, int]) -> tuple[_Work, np.ndarray]:
        """The seed, at the finest level whose window holds it with work_size/8 px to spare (image edges aside)."""
        size, margin, factor = image_size(image), self.work_size // 8, 1
        clicked = _lab(read_window(image, (point[0], point[1], point[0] + 1, point[1] + 1)))
        while True:
            half = self.work_size * factor // 2
            around = (point[0] - half, point[1] - half, point[0] + half, point[1] + half)
            work = _Work.read(image, _window(around, factor, size), factor)
            seed = self._seed(work, work.at(point), clicked)
            x, y, w, h = cv2.boundingRect(seed.astype(np.uint8))
            (height, width), (wx1, wy1, wx2, wy2) = seed.shape, work.window
            cramped = (
                (x < margin and wx1 >= factor)
                or (y < margin and wy1 >= factor)
                or (x + w > width - margin and wx2 <= size[0] - factor)
                or (y + h > height - margin and wy2 <= size[1] - factor)
            )
            if not cramped or 2 * half >= max(size) or min(size) < 32 * factor:  # fits, or no bigger window
                return work, seed
            factor *= 2

    def segment(self, image: np.ndarray | Image.Image, point: tuple[int, int]) -> Segmentation:
        work, seed = self._find_seed(image, point)
        at, band = work.at(point), self.work_size // 16
        x, y, w, h = cv2.boundingRect(seed.astype(np.uint8))
        x1, y1, x2, y2 = _grow((x, y, x + w, y + h), 2 * band, seed.shape)
        ix1, iy1, ix2, iy2 = _grow((x, y, x + w, y + h), band, seed.shape)
        labels = np.full((y2 - y1, x2 - x1), cv2.GC_BGD, np.uint8)
        labels[iy1 - y1 : iy2 - y1, ix1 - x1 : ix2 - x1] = cv2.GC_PR_BGD
        labels[seed[y1:y2, x1:x2]] = cv2.GC_PR_FGD
        labels[at[1] - y1, at[0] - x1] = cv2.GC_FGD
        refined = _grabcut(work.rgb[y1:y2, x1:x2], labels, self.iterations)
        mask = seed
        if refined is not None and refined[at[1] - y1, at[0] - x1]:
            mask = np.zeros_like(seed)
            mask[y1:y2, x1:x2] = _component_at(refined, (at[0] - x1, at[1] - y1))
        return work.to_full(mask, image_size(image), _separation(work.lab, mask))


class Sam2Backend:
    """SAM 2 (facebookresearch/sam2) from a local checkpoint; never downloads weights.

    The point is the only prompt; of SAM's three masks the best-scoring one holding the point is kept,
    cut to the component holding the point. score: SAM's predicted IoU for that mask. Should no mask
    hold the point, the GrabCut backend answers instead.
    """

    def __init__(self, checkpoint: str, model_cfg: str = "configs/sam2.1/sam2.1_hiera_l.yaml", device: str = "cuda"):
        if not os.path.isfile(checkpoint):
            raise FileNotFoundError(f"sam2 backend: checkpoint {checkpoint!r} not found (weights are never downloaded)")
        try:
            from sam2.build_sam import build_sam2
            from sam2.sam2_image_predictor import SAM2ImagePredictor
        except ImportError as e:
            raise ImportError(
                "sam2 backend: package `sam2` is not installed (pip install from github.com/facebookresearch/sam2); "
                "use backend 'grabcut' on machines without it"
            ) from e
        self._predictor = SAM2ImagePredictor(build_sam2(model_cfg, checkpoint, device=device))

    def segment(self, image: np.ndarray | Image.Image, point: tuple[int, int]) -> Segmentation:
        size = image_size(image)
        self._predictor.set_image(read_window(image, (0, 0, *size)))
        masks, scores, _ = self._predictor.predict(
            point_coords=np.array([point], np.float32), point_labels=np.array([1]), multimask_output=True
        )
        for i in np.argsort(scores)[::-1]:
            mask = np.asarray(masks[i]) > 0.5
            if mask[point[1], point[0]]:
                mask = _component_at(mask, point)
                x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
                return Segmentation(mask, (x, y, x + w, y + h), int(np.count_nonzero(mask)), float(scores[i]))
        return GrabCutBackend().segment(image, point)


SEGMENT_BACKENDS: dict[str, Callable[..., SegmentBackend]] = {"grabcut": GrabCutBackend, "sam2": Sam2Backend}
_DEFAULT_BACKEND = GrabCutBackend()


def make_segment_backend(name: str = "grabcut", **options) -> SegmentBackend:
    """Backend `name` from SEGMENT_BACKENDS built with `options`; ValueError naming an unknown name or option."""
    if name not in SEGMENT_BACKENDS:
        raise ValueError(f"segment: unknown backend {name!r}; known: {sorted(SEGMENT_BACKENDS)}")
    params = inspect.signature(SEGMENT_BACKENDS[name]).parameters
    if unknown := sorted(set(options) - set(params)):
        raise ValueError(f"segment: backend {name!r} has no option {unknown}; options: {sorted(params)}")
    if missing := [p for p, v in params.items() if v.default is inspect.Parameter.empty and p not in options]:
        raise ValueError(f"segment: backend {name!r} needs option {missing}")
    return SEGMENT_BACKENDS[name](**options)


def segment_object_at(
    image: Image.Image | np.ndarray, point: tuple[float, float], *, backend: SegmentBackend | None = None
) -> Segmentation:
    """Mask of the object under `point` (x, y in pixels of `image`; the pixel containing it is used).

    The mask always contains that pixel and is one 8-connected region. ValueError when the point is
    outside the image.
    """
    width, height = image_size(image)
    x, y = point
    if not (0 <= x < width and 0 <= y < height):
        raise ValueError(f"segment_object_at: point {list(point)} is outside the {width}x{height} image")
    return (backend or _DEFAULT_BACKEND).segment(image, (math.floor(x), math.floor(y)))


def segment_object_in_box(
    image: Image.Image | np.ndarray, box: PixelBox, *, work_size: int = 256, iterations: int = 3
) -> Segmentation:
    """The object filling `box`: GrabCut initialised from the box, with pixels outside it as background.

    Works on the box plus a 10% margin, area-averaged by a power of two to about work_size² pixels,
    and keeps the largest 8-connected foreground component; the whole box when GrabCut finds nothing.
    With no pixels outside the box (it is the whole image) the box's rim is taken as background.
    score: `_separation` of the mask from its surroundings.
    """
    size = image_size(image)
    mx, my = (box[2] - box[0]) // 10 + 2, (box[3] - box[1]) // 10 + 2
    factor = 1
    while (box[2] - box[0] + 2 * mx) * (box[3] - box[1] + 2 * my) > (work_size * factor) ** 2:
        factor *= 2
    work = _Work.read(image, _window((box[0] - mx, box[1] - my, box[2] + mx, box[3] + my), factor, size), factor)
    (ax, ay), (bx, by) = work.at(box[:2]), work.at((box[2] + factor - 1, box[3] + factor - 1))
    mask = np.zeros(work.rgb.shape[:2], bool)
    mask[max(ay, 0) : by, max(ax, 0) : bx] = True
    labels = np.where(mask, cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8)
    if mask.all():
        labels[[0, -1], :] = labels[:, [0, -1]] = cv2.GC_BGD
    refined = _grabcut(work.rgb, labels, iterations)
    if refined is not None and refined.any():
        _, components, stats, _ = cv2.connectedComponentsWithStats(refined.astype(np.uint8), connectivity=8)
        mask = components == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return work.to_full(mask, size, _separation(work.lab, mask))
