"""Decode frames from a video file or a folder of frame images, and pick frames out of a time window.

Decoding streams: a reader holds only the frames a caller asked for, never the whole video, and it
refuses videos longer than `max_frames` up front, so the work a tool call can cause is bounded. The same
holds for what a hostile folder or file can cost: a folder is read entry by entry and refused as soon as it
holds more than `max_frames` frame images (never listed whole); only regular files count (a FIFO would block
the reader, a symlink could point outside the data root); a frame whose size (an image header, a video
stream's) exceeds `max_decode_pixels` is refused before any decoding, and a frame image far above
`max_pixels` is decoded at 1/2, 1/4 or 1/8 scale where the codec can (JPEG's reduced decoding).
Frames come out RGB uint8, optionally downscaled to `max_pixels` on decode; `VideoInfo` keeps both
the size frames come out at (`width`, `height`) and the native size (`source_width`, `source_height`)
so a box found on a decoded frame maps back to the source by the ratio of the two.
"""

import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
# Seeking (CAP_PROP_POS_FRAMES) jumps to the keyframe before the target and decodes forward from there, so it
# costs up to one keyframe interval of decoding; grabbing in order costs the gap. Seek only past x264's default
# keyframe interval (250), where a seek is never much dearer than the grabs it replaces; on 720p mp4v, H.264,
# VP9 and MJPEG it landed on the exact frame every time, and a seek whose frame timestamp disagrees is undone.
SEEK_MIN_GAP = 250  # frames
# Frame times are index / fps; this slack keeps 2.3 s at 10 fps on frame 23 rather than 22.999...
_TIME_EPS = 1e-6
# OpenCV's reduced decoders by scale: a frame image this many times larger per side than needed decodes smaller.
_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    width: int  # pixels of frames as decoded, after any max_pixels downscale
    height: int
    source_width: int = 0  # native size in the file; 0 means the same as width/height
    source_height: int = 0

    def __post_init__(self) -> None:
        if not self.source_width:
            object.__setattr__(self, "source_width", self.width)
        if not self.source_height:
            object.__setattr__(self, "source_height", self.height)

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps


@dataclass
class Frame:
    index: int
    timestamp_s: float
    image: np.ndarray  # RGB uint8, height x width x 3


def _fit_pixels(width: int, height: int, max_pixels: int | None) -> tuple[int, int]:
    if max_pixels is None or width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


class VideoReader:
    """A video file (anything OpenCV/ffmpeg decodes: mp4, avi, webm...) or a folder of frame images sorted by name.

    `fps` is required for a folder and overrides the file's own rate for a file. Frames larger than
    `max_pixels` are downscaled on decode, aspect kept; frames larger than `max_decode_pixels` are refused
    undecoded. Raises ValueError naming the path when it is not a readable video, is empty, has more than
    `max_frames` frames or frames above `max_decode_pixels`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float | None = None,
        max_frames: int = 100_000,
        max_pixels: int | None = None,
        max_decode_pixels: int | None = None,
    ):
        self.path = Path(path)
        self._cap: cv2.VideoCapture | None = None
        self._files: list[Path] = []
        self._max_pixels, self._max_decode_pixels = max_pixels, max_decode_pixels
        if self.path.is_dir():
            num_frames, fps, first = self._open_folder(fps, max_frames)
        else:
            num_frames, fps, first = self._open_file(fps, max_frames)
        if num_frames > max_frames:
            self.close()
            raise ValueError(f"video {self.path}: {num_frames} frames is more than max_frames={max_frames}")
        src_w, src_h = first  # a file's from its first decoded frame (rotated videos swap the header's two)
        width, height = _fit_pixels(src_w, src_h, max_pixels)
        self.info = VideoInfo(num_frames, fps, width, height, src_w, src_h)

    def _open_folder(self, fps: float | None, max_frames: int) -> tuple[int, float, tuple[int, int]]:
        if fps is None or not fps > 0:
            raise ValueError(f"video {self.path}: a folder of frames needs fps > 0; got {fps}")
        files = []
        with os.scandir(self.path) as entries:
            for entry in entries:
                if entry.name.lower().endswith(IMAGE_SUFFIXES) and entry.is_file(follow_symlinks=False):
                    files.append(entry.name)
                    if len(files) > max_frames:
                        raise ValueError(f"video {self.path}: more than max_frames={max_frames} frame images")
        if not files:
            raise ValueError(
                f"video {self.path}: no frame images ({', '.join(IMAGE_SUFFIXES)}, regular files) in the folder"
            )
        self._files = [self.path / name for name in sorted(files)]
        width, height, _ = self._frame_plan(0)
        return len(self._files), float(fps), (width, height)

    def _check_pixels(self, width: int, height: int, what: str) -> None:
        if self._max_decode_pixels is not None and width * height > self._max_decode_pixels:
            raise ValueError(
                f"video {self.path}: {what} is {width}x{height}, more than max_decode_pixels={self._max_decode_pixels}"
            )

    def _open_file(self, fps: float | None, max_frames: int) -> tuple[int, float, np.ndarray]:
        if not self.path.is_file():
            raise ValueError(f"video {self.path}: no such file")
        self._reopen()
        num_frames = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self._native_fps = self._cap.get(cv2.CAP_PROP_FPS)
        fps = fps or self._native_fps
        header = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        try:  # the stream's header size, before decoding a frame of it
            self._check_pixels(*header, "a frame")
        except ValueError:
            self.close()
            raise
        first = self._cap.retrieve()[1] if self._cap.grab() else None
        self._pos = 1
        if first is None:
            self.close()
            raise ValueError(f"video {self.path}: not a readable video (no frame decodes)")
        if num_frames < 1:  # the container does not say (a raw .h264 stream reports garbage): count, bounded
            num_frames = 1
            while num_frames <= max_frames and self._cap.grab():
                num_frames += 1
            self._reopen()
        if not (fps and fps > 0 and math.isfinite(fps)):
            self.close()
            raise ValueError(f"video {self.path}: the file has no frame rate; pass fps")
        return num_frames, float(fps), (first.shape[1], first.shape[0])

    def _reopen(self) -> None:
        if self._cap is not None:
            self._cap.release()
        # CAP_FFMPEG, not CAP_ANY: OpenCV's image-sequence backend would read "clip_%02d.mp4" as a pattern.
        self._cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        self._pos = 0  # index of the frame the next grab() decodes
        if not self._cap.isOpened():
            raise ValueError(f"video {self.path}: not a video OpenCV/ffmpeg can open")

    def _frame_plan(self, index: int) -> tuple[int, int, int]:
        """(width, height, OpenCV read flag) of frame image `index`: its header's size, refused above the budget,
        and the reduced decoder that still gives at least `max_pixels`."""
        name = self._files[index].name
        try:
            with Image.open(self._files[index]) as header:  # reads the header only
                width, height = header.size
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise ValueError(f"video {self.path}: frame image {name} is not a readable image ({e})") from e
        self._check_pixels(width, height, f"frame image {name}")
        for scale, flag in _REDUCED:
            if self._max_pixels is not None and (width // scale) * (height // scale) >= self._max_pixels:
                return width, height, flag
        return width, height, cv2.IMREAD_COLOR

    def _read_file(self, index: int) -> np.ndarray:
        _, _, flag = self._frame_plan(index)
        image = cv2.imread(str(self._files[index]), flag)
        if image is None:
            raise ValueError(f"video {self.path}: frame image {self._files[index].name} does not decode")
        return image

    def _frame(self, index: int, bgr: np.ndarray) -> Frame:
        size = (self.info.width, self.info.height)
        if bgr.shape[1::-1] != size:
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        return Frame(index, index / self.info.fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def _grab_to(self, index: int) -> None:
        """Make `index` the grabbed frame: a seek for long jumps, else grabs in order (reopening to go back)."""
        if index < self._pos:
            self._reopen()
        if index - self._pos >= SEEK_MIN_GAP and self._seek(index):
            return
        while self._pos <= index:
            if not self._cap.grab():
                raise ValueError(
                    f"video {self.path}: decoding ended at frame {self._pos}; the file reports {self.info.num_frames}"
                )
            self._pos += 1

    def _seek(self, index: int) -> bool:
        """Seek and grab `index`; False (capture reopened at 0) unless the grabbed frame's timestamp is index's."""
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        shown = self._cap.get(cv2.CAP_PROP_POS_MSEC) * self._native_fps / 1000 if self._cap.grab() else -1.0
        if abs(shown - index) < 0.5:
            self._pos = index + 1
            return True
        logger.debug("video %s: seek to frame %d landed on %.1f; decoding in order", self.path, index, shown)
        self._reopen()
        return False

    def _decode(self, indices: Sequence[int]) -> Iterator[Frame]:
        """Frames at ascending `indices`, one at a time; only wanted frames are retrieved (colour-converted)."""
        for index in indices:
            if self._files:
                yield self._frame(index, self._read_file(index))
                continue
            self._grab_to(index)
            ok, bgr = self._cap.retrieve()
            if not ok:
                raise ValueError(f"video {self.path}: frame {index} does not decode")
            yield self._frame(index, bgr)

    def _check(self, indices: Sequence[int]) -> None:
        bad = [i for i in indices if not 0 <= i < self.info.num_frames]
        if bad:
            raise ValueError(f"video {self.path}: frame indices {bad[:5]} outside 0..{self.info.num_frames - 1}")

    def frames(self, indices: Sequence[int]) -> list[Frame]:
        """The frames at `indices`, ascending and without repeats; memory is len(indices) frames, not the video."""
        wanted = sorted(set(int(i) for i in indices))
        self._check(wanted)
        return list(self._decode(wanted))

    def iter_frames(self, start: int, end: int) -> Iterator[Frame]:
        """Frames start..end inclusive, streamed one at a time."""
        if start > end:
            raise ValueError(f"video {self.path}: frame range {start}..{end} is empty")
        self._check([start, end])
        return self._decode(range(start, end + 1))

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def frame_window(
    info: VideoInfo,
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    start_frame: int | None = None,
    end_frame: int | None = None,
) -> tuple[int, int]:
    """The inclusive frame range of a time window or a frame window (not both), clipped to the video.

    A time window holds every frame shown during it: frame k is on screen from k/fps to (k+1)/fps. Missing
    ends default to the video's ends. Raises ValueError, with the valid range, for an empty window.
    """
    last = info.num_frames - 1
    valid = f"the video has frames 0..{last} (0-{info.duration_s:.2f} s)"
    uses_time = start_s is not None or end_s is not None
    if uses_time and (start_frame is not None or end_frame is not None):
        raise ValueError("frame_window: give a time window (start_s/end_s) or a frame window, not both")
    if uses_time:
        for name, t in (("start_s", start_s), ("end_s", end_s)):
            if t is not None and not math.isfinite(t):
                raise ValueError(f"frame_window: {name} must be a finite number of seconds; got {t}")
        start = 0 if start_s is None else math.floor(start_s * info.fps + _TIME_EPS)
        end = last if end_s is None else math.floor(end_s * info.fps + _TIME_EPS)
        asked = f"{start_s if start_s is not None else 0}-{end_s if end_s is not None else info.duration_s} s"
    else:
        start = 0 if start_frame is None else int(start_frame)
        end = last if end_frame is None else int(end_frame)
        asked = f"frames {start}..{end}"
    if start > end or start > last or end < 0:
        raise ValueError(f"frame_window: window {asked} is empty; {valid}")
    return max(start, 0), min(end, last)


def select_frames(
    reader: VideoReader,
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    start_frame: int | None = None,
    end_frame: int | None = None,
    num_frames: int = 8,
) -> list[Frame]:
    """`num_frames` evenly spaced frames covering the window, first and last included; fewer if it is shorter.

    One frame is the window's middle frame.
    """
    if num_frames < 1:
        raise ValueError(f"select_frames: num_frames must be >= 1; got {num_frames}")
    start, end = frame_window(reader.info, start_s=start_s, end_s=end_s, start_frame=start_frame, end_frame=end_frame)
    count = min(num_frames, end - start + 1)
    if count == 1:
        return reader.frames([(start + end) // 2])
    step = (end - start) / (count - 1)  # >= 1, so rounding half up keeps the indices distinct
    return reader.frames([math.floor(start + i * step + 0.5) for i in range(count)])
