"""Follow one object through consecutive video frames from a box on the first frame.

A backend turns a stream of frames and a start box into a stream of boxes, None where the target is
lost. The OpenCV backends (CSRT, KCF) track on a downscaled copy of each frame for speed and judge
each tracked box against the first frame's appearance: the target is lost when the tracker reports
failure, when the box collapses or leaves the frame, or when its patch no longer correlates with the
initial template. While lost they search each frame for the template and restart the tracker on a
confident match. SAM2 keeps its own memory of the object and is used as is.
"""

import inspect
import itertools
import math
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from pixelis_verl.ops.video import Frame
from pixelis_verl.ops.zoom import PixelBox, snap_box

STATIONARY_FRACTION = 0.25  # a centre that moved less than this fraction of the box's mean side stood still
# Counter-clockwise from +x in 45-degree sectors; image y grows downwards, so "up" is -y.
DIRECTIONS = ("right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right")
# Appearance is judged on the box grown by this fraction of its size on each side: the target's outline
# against its surroundings, which a box filled by a flat-coloured target would not show.
CONTEXT = 0.1
SEARCH_REACH = 2  # while lost, search this many box sizes around the last box, one more per frame lost
# CSRT rescales its search window to about this many pixels a side; OpenCV's 200 tracked synthetic 720p clips
# at ~42 frames/s, 100 at ~70 with the same IoU (0.89 moving, 0.80 under a zoom).
CSRT_TEMPLATE_SIZE = 100

Rect = tuple[int, int, int, int]  # x, y, width, height: OpenCV's box


def direction_word(dx: float, dy: float, *, box_size: float) -> str:
    """The compass word ("right", "up-left", ...) for a displacement in image pixels, or "stationary"."""
    if math.hypot(dx, dy) < STATIONARY_FRACTION * box_size:
        return "stationary"
    return DIRECTIONS[round(math.degrees(math.atan2(-dy, dx)) / 45) % 8]


def frame_spans(indices: list[int], limit: int = 3) -> str:
    """[3, 4, 5, 9] -> "3-5, 9"; at most `limit` spans, then "...", so a summary stays one short line."""
    spans: list[list[int]] = []
    for i in indices:
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    text = ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in spans[:limit])
    return text + (", ..." if len(spans) > limit else "")


@dataclass
class TrackResult:
    start_frame: int
    boxes: list[PixelBox | None]  # one per frame from start_frame on; None where the target is lost
    lost_frames: list[int]  # absolute frame indices where the target was lost
    reacquired_frames: list[int]  # frames where a lost target was found again
    displacement: tuple[float, float]  # centre of the last found box minus centre of the first, pixels
    direction: str  # direction_word of the displacement

    def summary(self) -> str:
        """One short line for a model: frames, net motion, last box, and when the target was lost."""
        end = self.start_frame + len(self.boxes) - 1
        last = next(b for b in reversed(self.boxes) if b is not None)
        dx, dy = self.displacement
        text = f"tracked frames {self.start_frame}-{end}: {self.direction} by ({dx:+.0f}, {dy:+.0f}) px"
        text += f", last seen at {list(last)}"
        if self.lost_frames:
            text += f"; lost at {frame_spans(self.lost_frames)}"
        if self.reacquired_frames:
            text += f"; found again at {frame_spans(self.reacquired_frames)}"
        return text


class TrackerBackend(Protocol):
    def track(self, images: Iterator[np.ndarray], box: PixelBox) -> Iterator[PixelBox | None]:
        """Boxes (pixels of each RGB image) for every image, the first being `box`; None while lost."""
        ...


def _match(image: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation (-1..1) of `template` at every position of `image`, the better of colour and grey.

    Grey keeps a target that changes colour at the same brightness; colour keeps one as bright as its background.
    """
    grey = cv2.matchTemplate(*(cv2.cvtColor(i, cv2.COLOR_BGR2GRAY) for i in (image, template)), cv2.TM_CCOEFF_NORMED)
    return np.maximum(cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED), grey)


def _patch(image: np.ndarray, rect: Rect, size: tuple[int, int] | None = None) -> np.ndarray:
    """`rect` grown by CONTEXT on every side (edges replicated past the frame), resized to `size` (w, h) if given."""
    x, y, w, h = rect
    grown = (round(w * (1 + 2 * CONTEXT)), round(h * (1 + 2 * CONTEXT)))
    patch = cv2.getRectSubPix(image, grown, (x + w / 2, y + h / 2))
    return patch if size is None or grown == size else cv2.resize(patch, size, interpolation=cv2.INTER_AREA)


class OpenCVTracker:
    """An OpenCV single-object tracker with loss detection and template search to re-acquire.

    max_side: frames are tracked downscaled to this long side, pixels (None: full size).
    min_score: a tracked patch correlating less than this (NCC, -1..1) with the first frame's is lost.
    reacquire_score: while lost, a template match scoring at least this restarts the tracker.
    search_side: the re-acquisition search runs on frames downscaled to this long side, pixels.
    """

    def __init__(
        self,
        create: Callable[[], cv2.Tracker],
        *,
        max_side: int | None = 640,
        min_score: float = 0.5,
        reacquire_score: float = 0.6,
        search_side: int = 320,
    ):
        self._create, self.max_side, self.min_score = create, max_side, min_score
        self.reacquire_score, self.search_side = reacquire_score, search_side

    def _start(self, image: np.ndarray, rect: Rect) -> cv2.Tracker:
        tracker = self._create()
        tracker.init(image, rect)
        # OpenCV's KCF only learns on its first update (trackerKCF.cpp runs detection `if(frame>0)`), so without
        # this warm-up it misses the first frame's motion and stays that far behind; it changes nothing for CSRT.
        tracker.update(image)
        return tracker

    def _judge(self, image: np.ndarray, rect: Rect, template: np.ndarray) -> bool:
        """Whether `rect` still holds the target: at least half inside the frame and looking like the template."""
        x, y, w, h = rect
        inside = max(0, min(x + w, image.shape[1]) - max(x, 0)) * max(0, min(y + h, image.shape[0]) - max(y, 0))
        if w < 2 or h < 2 or inside < 0.5 * w * h:
            return False
        return float(_match(_patch(image, rect, template.shape[1::-1]), template)[0, 0]) >= self.min_score

    def _search(self, image: np.ndarray, template: np.ndarray, last: Rect, frames_lost: int) -> Rect | None:
        """The best match of `template` near `last`, if good enough; searched at most `search_side` wide.

        The window reaches SEARCH_REACH box sizes past the last box and one more per frame lost: a
        target moves continuously, and a look-alike across the frame is no evidence of it.
        """
        x, y, w, h = last
        reach = (SEARCH_REACH + frames_lost) * max(w, h)
        x0, y0 = max(0, round(x - reach)), max(0, round(y - reach))
        region = image[y0 : round(y + h + reach), x0 : round(x + w + reach)]
        th, tw = template.shape[:2]
        scale = min(1.0, max(self.search_side / max(image.shape[:2]), 8 / min(th, tw)))
        region = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        template = cv2.resize(template, (max(1, round(tw * scale)), max(1, round(th * scale))))
        if template.shape[0] > region.shape[0] or template.shape[1] > region.shape[1]:
            return None
        _, best, _, (mx, my) = cv2.minMaxLoc(_match(region, template))
        if best < self.reacquire_score:
            return None
        return round(x0 + mx / scale + (tw - w) / 2), round(y0 + my / scale + (th - h) / 2), w, h

    def track(self, images: Iterator[np.ndarray], box: PixelBox) -> Iterator[PixelBox | None]:
        first = next(images)
        height, width = first.shape[:2]
        scale = min(1.0, self.max_side / max(height, width)) if self.max_side else 1.0

        def shrink(image: np.ndarray) -> np.ndarray:  # and RGB -> BGR, the order OpenCV's colour features expect
            if scale < 1:
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)

        x1, y1, x2, y2 = (round(v * scale) for v in box)
        rect = (x1, y1, max(x2 - x1, 2), max(y2 - y1, 2))
        small = shrink(first)
        template = _patch(small, rect)
        tracker = self._start(small, rect)
        yield box
        last, frames_lost = rect, 0  # the last box accepted, and for how many frames since
        for image in images:
            small = shrink(image)
            found = None
            if not frames_lost:
                ok, tracked = tracker.update(small)
                found = tuple(tracked) if ok and self._judge(small, tuple(tracked), template) else None
            if found is None and (found := self._search(small, template, last, frames_lost)) is not None:
                tracker = self._start(small, found)
            if found is None:
                frames_lost += 1
                yield None
            else:
                last, frames_lost = found, 0
                x, y, w, h = found
                yield snap_box((x / scale, y / scale, (x + w) / scale, (y + h) / scale), (width, height))


class Sam2Tracker:
    """SAM2's video predictor (facebookresearch/sam2), prompted with the first box; for GPU machines.

    SAM2 reads a whole clip from a folder of JPEGs, so unlike the OpenCV backends it does not stream.
    """

    def __init__(self, *, checkpoint: str, model_cfg: str, device: str = "cuda"):
        if not Path(checkpoint).is_file():
            raise FileNotFoundError(f"sam2 tracker: checkpoint {checkpoint} does not exist (it is never downloaded)")
        try:
            from sam2.build_sam import build_sam2_video_predictor
        except ImportError as e:
            raise ImportError(f"sam2 tracker: the sam2 package is not installed ({e})") from None
        self._predictor = build_sam2_video_predictor(model_cfg, checkpoint, device=device)

    def track(self, images: Iterator[np.ndarray], box: PixelBox) -> Iterator[PixelBox | None]:
        import torch

        with tempfile.TemporaryDirectory() as folder, torch.inference_mode():
            for i, image in enumerate(images):  # SAM2 sorts frames by the integer in the file name
                cv2.imwrite(f"{folder}/{i}.jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
            state = self._predictor.init_state(video_path=folder)
            self._predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, box=np.array(box, dtype=np.float32))
            for _, _, masks in self._predictor.propagate_in_video(state):
                ys, xs = np.nonzero((masks[0, 0] > 0).cpu().numpy())
                yield (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else None


def _create_csrt() -> cv2.Tracker:
    params = cv2.TrackerCSRT_Params()
    params.template_size = CSRT_TEMPLATE_SIZE
    return cv2.TrackerCSRT_create(params)


TRACK_BACKENDS: dict[str, Callable[..., TrackerBackend]] = {
    "kcf": partial(OpenCVTracker, cv2.TrackerKCF_create),
    "csrt": partial(OpenCVTracker, _create_csrt),
    "sam2": Sam2Tracker,
}
# KCF (warmed up, tracking at 640 px) followed synthetic 720p clips with IoU 0.93 at ~250 frames/s on one
# thread, CSRT with 0.89 at ~70. KCF keeps the first box's size: for targets that grow or shrink, use "csrt".
DEFAULT_BACKEND = "kcf"


def make_tracker_backend(name: str = DEFAULT_BACKEND, **options: object) -> TrackerBackend:
    """The backend registered as `name`, built with `options`; ValueError names an unknown backend or option."""
    if name not in TRACK_BACKENDS:
        raise ValueError(f"unknown tracker backend {name!r}; known: {sorted(TRACK_BACKENDS)}")
    signature = inspect.signature(TRACK_BACKENDS[name])
    try:
        signature.bind(**options)
    except TypeError as e:
        raise ValueError(f"tracker backend {name!r}: {e}; options: {list(signature.parameters)}") from None
    return TRACK_BACKENDS[name](**options)


def track_object(frames: Iterable[Frame], box: PixelBox, *, backend: TrackerBackend | str | None = None) -> TrackResult:
    """Track the object in `box` (pixels of the first frame) through consecutive `frames`, one frame at a time.

    `backend` is a TrackerBackend or a registered name (default DEFAULT_BACKEND). To follow a mask,
    pass the mask's bounding box.
    """
    if backend is None or isinstance(backend, str):
        backend = make_tracker_backend(backend or DEFAULT_BACKEND)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("track_object: no frames")
    height, width = first.image.shape[:2]
    if not (box[0] < min(box[2], width) and box[1] < min(box[3], height) and box[2] > 0 and box[3] > 0):
        raise ValueError(f"track_object: box {list(box)} does not overlap the {width}x{height} first frame")
    box = snap_box(box, (width, height))
    indices: list[int] = []

    def images() -> Iterator[np.ndarray]:
        for frame in itertools.chain([first], frames):
            if indices and frame.index != indices[-1] + 1:
                raise ValueError(f"track_object: frames must be consecutive; frame {frame.index} after {indices[-1]}")
            indices.append(frame.index)
            yield frame.image

    boxes = list(backend.track(images(), box))
    lost = [i for i, b in zip(indices, boxes, strict=True) if b is None]
    back = [i for i, b, before in zip(indices[1:], boxes[1:], boxes, strict=False) if b is not None and before is None]
    last = next(b for b in reversed(boxes) if b is not None)
    dx, dy = (last[0] + last[2] - box[0] - box[2]) / 2, (last[1] + last[3] - box[1] - box[3]) / 2
    size = (box[2] - box[0] + box[3] - box[1]) / 2
    return TrackResult(first.index, boxes, lost, back, (dx, dy), direction_word(dx, dy, box_size=size))
