"""Read the text in an image, or in a box of it, with an OCR engine running offline on CPU.

The default engine is PP-OCRv4 (DB text detector, angle classifier, CTC recogniser) through
`rapidocr_onnxruntime` 1.4.4, whose wheel ships the ONNX models. We drive its three stages ourselves
rather than through `RapidOCR.__call__`, for three reasons measured on 1000x1000 pages of rendered
10-32 px text and on tight word crops (character accuracy = 1 - edit distance / length):
- detection runs on a copy downscaled to `det_max_side` px: the detector costs ~0.3 s per megapixel
  on one thread, and rapidocr's own size limits never downscale a 1000 px image;
- the detector input gets a replicated border: text touching the edge of a tight crop is otherwise
  missed (word crops: accuracy 0.82 -> 0.99);
- each line is cut from the full-resolution image and upscaled bicubically to the recogniser's 48 px
  input height; rapidocr upscales bilinearly, which blurs small text and drops the spaces between
  words, "Totalamount" (pages: accuracy 0.92 -> 0.96; every line of 12 px or more read exactly).
Upscaling the detector input of small regions was measured too: no gain, so it is not done.

With the defaults a 1-megapixel image with a few lines reads in ~0.27 s on one thread (median, 2-core
CPU). Text under ~12 px high in a 1000 px image shrinks below what the detector finds; read it through
a `box`, or raise `det_max_side` (832 finds 10 px text, ~35% slower).
"""

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

from pixelis_verl.ops.zoom import PixelBox, snap_box

_DET_PAD_PX = 16  # border replicated around the detector input, in detector pixels
_INSTALL_HINT = (
    "pip install --no-deps rapidocr_onnxruntime==1.4.4 (its opencv-python requirement would clobber OpenCV contrib)"
)


@dataclass(frozen=True)
class TextLine:
    text: str
    box: PixelBox  # axis-aligned box of the line, in pixels of the image passed to read_text
    confidence: float  # the recogniser's mean character probability, 0..1


class OcrBackend(Protocol):
    def read(self, image: np.ndarray) -> list[TextLine]:
        """Lines in an RGB uint8 HxWx3 array, boxes in its pixels, in any order."""
        ...


class RapidOcrBackend:
    """PP-OCRv4 through rapidocr_onnxruntime; see the module docstring for how it is driven."""

    def __init__(self, *, num_threads: int = 1, det_max_side: int = 736, text_score: float = 0.5):
        # num_threads: ONNX Runtime threads per stage; 1 because tools run in worker threads on shared cores.
        # det_max_side: longest side, in px, the image is shrunk to for detection; 736 keeps 1 megapixel < 0.3 s.
        # text_score: lines the recogniser is less sure of (mean character probability) are dropped.
        if num_threads < 1:
            raise ValueError(f"rapidocr: num_threads must be >= 1; got {num_threads}")
        if det_max_side < 32:
            raise ValueError(f"rapidocr: det_max_side must be >= 32 px; got {det_max_side}")
        if not 0.0 <= text_score <= 1.0:
            raise ValueError(f"rapidocr: text_score must be in [0, 1]; got {text_score}")
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as err:
            raise ImportError(f"rapidocr_onnxruntime is not importable ({err}); {_INSTALL_HINT}") from err
        # det_limit_type="max" makes the detector keep our (<= 2000 px) input size instead of upscaling
        # its short side to 736 px, which is what the default "min" does.
        engine = RapidOCR(intra_op_num_threads=num_threads, inter_op_num_threads=num_threads, det_limit_type="max")
        self._det, self._cls, self._rec = engine.text_det, engine.text_cls, engine.text_rec
        self._rec_height = engine.text_rec.rec_image_shape[1]
        self.det_max_side = det_max_side
        self.text_score = text_score

    def read(self, image: np.ndarray) -> list[TextLine]:
        height, width = image.shape[:2]
        bgr = np.ascontiguousarray(image[..., ::-1])  # PP-OCR models were trained on OpenCV's BGR
        scale = min(1.0, self.det_max_side / max(height, width))
        det_in = bgr
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            det_in = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        det_in = cv2.copyMakeBorder(det_in, *[_DET_PAD_PX] * 4, cv2.BORDER_REPLICATE)
        # TextDetector.__call__ stores its resize op on self before using it; two threads racing there
        # can only change the other's detector resolution, never its box coordinates.
        quads, _ = self._det(det_in)
        if quads is None or len(quads) == 0:
            return []
        quads = (np.asarray(quads, dtype=np.float32) - _DET_PAD_PX) / scale
        quads[..., 0] = quads[..., 0].clip(0, width)
        quads[..., 1] = quads[..., 1].clip(0, height)
        crops = [self._line_crop(bgr, quad) for quad in quads]
        crops, _, _ = self._cls(crops)  # turns lines it reads as upside down
        recognised, _ = self._rec(crops)
        lines = []
        for quad, (text, score) in zip(quads, recognised, strict=True):
            if text.strip() and score >= self.text_score:
                x1, y1 = np.floor(quad.min(axis=0)).astype(int)
                x2, y2 = np.ceil(quad.max(axis=0)).astype(int)
                lines.append(TextLine(text.strip(), (int(x1), int(y1), int(x2), int(y2)), float(score)))
        return lines

    def _line_crop(self, bgr: np.ndarray, quad: np.ndarray) -> np.ndarray:
        """The line under `quad` straightened, upscaled bicubically to at least the recogniser's input height."""
        w = max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3]))
        h = max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2]))
        up = max(1.0, self._rec_height / max(h, 1.0))
        out_w, out_h = max(1, round(w * up)), max(1, round(h * up))
        target = np.float32([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]])
        warp = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
        crop = cv2.warpPerspective(bgr, warp, (out_w, out_h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        return np.rot90(crop) if out_h >= 1.5 * out_w else crop  # vertical text reads along its long side


OCR_BACKENDS: dict[str, Callable[..., OcrBackend]] = {"rapidocr": RapidOcrBackend}


@functools.cache
def _cached_backend(name: str, options: tuple[tuple[str, object], ...]) -> OcrBackend:
    return OCR_BACKENDS[name](**dict(options))


def make_ocr_backend(name: str = "rapidocr", **options: object) -> OcrBackend:
    """The backend `name` built with `options`, once per process: loading the ONNX sessions takes ~0.3 s."""
    if name not in OCR_BACKENDS:
        raise ValueError(f"make_ocr_backend: unknown OCR backend {name!r}; known: {sorted(OCR_BACKENDS)}")
    known = inspect.signature(OCR_BACKENDS[name]).parameters
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"make_ocr_backend: unknown option(s) {unknown} for {name!r}; known: {sorted(known)}")
    return _cached_backend(name, tuple(sorted(options.items())))


def read_text(
    image: Image.Image | np.ndarray,
    box: PixelBox | None = None,
    *,
    backend: OcrBackend | None = None,
    min_confidence: float = 0.5,
) -> list[TextLine]:
    """Lines of text in `image`, or in `box` of it, in reading order; boxes in pixels of `image`.

    `image` is a PIL image (any mode) or an RGB uint8 HxWx3 array. `box` is clipped to the image; a box with
    x2 <= x1 or y2 <= y1, or one outside the image, raises ValueError. A region too thin to hold text (e.g.
    one pixel high) reads as no lines.
    """
    pixels = _as_rgb(image)
    height, width = pixels.shape[:2]
    x0, y0 = 0, 0
    if box is not None:
        if not (box[0] < box[2] and box[1] < box[3]):
            raise ValueError(f"read_text: box must be [x1, y1, x2, y2] with x1 < x2 and y1 < y2; got {list(box)}")
        if not (box[0] < width and box[1] < height and box[2] > 0 and box[3] > 0):
            raise ValueError(f"read_text: box {list(box)} does not overlap the {width}x{height} image")
        x0, y0, x1, y1 = snap_box(box, (width, height))
        pixels = pixels[y0:y1, x0:x1]
    lines = [line for line in (backend or make_ocr_backend()).read(pixels) if line.confidence >= min_confidence]
    if x0 or y0:
        lines = [TextLine(line.text, _shift(line.box, x0, y0), line.confidence) for line in lines]
    return reading_order(lines)


def reading_order(lines: Sequence[TextLine]) -> list[TextLine]:
    """Rows top to bottom, left to right within a row.

    A line joins a row when its vertical extent overlaps some line of the row by more than half the
    smaller of the two heights, so a word set in a bigger font stays on its row.
    """
    rows: list[list[TextLine]] = []
    for line in sorted(lines, key=lambda line: (line.box[1], line.box[0])):
        if rows and any(_same_row(line, other) for other in rows[-1]):
            rows[-1].append(line)
        else:
            rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda line: line.box[0])]


def _same_row(a: TextLine, b: TextLine) -> bool:
    overlap = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    return overlap > 0.5 * min(a.box[3] - a.box[1], b.box[3] - b.box[1])


def _shift(box: PixelBox, dx: int, dy: int) -> PixelBox:
    return box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy


def _as_rgb(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        return image
    raise ValueError(f"read_text: image must be PIL or RGB uint8 HxWx3; got {image.dtype} {image.shape}")
