"""The media a row provides to its tools, opened safely: full-resolution images and a video.

A row names its media in `tools_kwargs["pixelis"]`:
  `source_images`: one entry per question image, `{"bytes": b"..."}`, `{"path": "..."}` or a path string
      (a dict may carry both keys with one None: parquet unifies struct fields across rows);
  `video`: `{"path": "...", "fps": <for frame folders>, "question_frames": [frame index of each question image]}`.
Paths resolve inside the tool's `data_root` (relative paths against it); a path outside it, or any path
when no root is configured, is refused, so a data row cannot make a tool read arbitrary files.
Images whose header claims more than `max_decode_pixels` are refused before decoding (decompression
bombs); images above `max_source_pixels` are downscaled as they load, and the tools work on that
copy, so coordinates stay consistent. Decoded sources are cached process-wide (the n trajectories of
a GRPO group share one question image), bounded by `SOURCE_CACHE_BYTES`.

Problems with the row's media are `MediaError`s: the model did nothing wrong, so the tool answers
with the message and no penalty.
"""

import contextlib
import hashlib
import io
import stat
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cachetools import LRUCache
from PIL import Image

from pixelis_verl.ops.video import VideoReader

SOURCE_CACHE_BYTES = 1 << 30  # decoded source images kept per process (RGB bytes), least recently used dropped


class MediaError(Exception):
    """The row's media cannot be used (missing, outside the data root, too large, unreadable)."""


@dataclass(frozen=True)
class MediaLimits:
    data_root: str | None  # files may be read only inside this directory; None: no file paths at all
    max_source_pixels: int  # larger images are downscaled to this area as they load
    max_decode_pixels: int  # larger images are refused without decoding
    max_video_frames: int  # longer videos are refused
    max_frame_pixels: int  # video frames are decoded at most this large


def resolve_path(path: str | Path, data_root: str | None, *, folder_ok: bool = False) -> Path:
    """`path` made absolute against `data_root`, refused when it leaves the root (symlinks followed) or is not a
    regular file (a folder too with `folder_ok`: a video's frame folder). A FIFO or device would block or stream
    forever; a NUL byte, an over-long name or a symlink loop is refused in the same one-line way."""
    shown = _show_path(path)
    if not data_root:
        raise MediaError(f"media path {shown} given but the tool config sets no data_root to read files from")
    try:
        root = Path(data_root).expanduser().resolve()
        resolved = (root / Path(path).expanduser()).resolve()
        if not resolved.is_relative_to(root):
            raise MediaError(f"media path {shown} lies outside the data root {str(root)!r}")
        mode = resolved.stat().st_mode
    except FileNotFoundError:
        raise MediaError(f"media path {shown} does not exist under the data root") from None
    except (OSError, ValueError, RuntimeError) as e:  # NUL byte, name too long, symlink loop, permissions
        raise MediaError(f"media path {shown} cannot be opened ({type(e).__name__})") from None
    if not (stat.S_ISREG(mode) or (folder_ok and stat.S_ISDIR(mode))):
        raise MediaError(f"media path {shown} is not a regular file")
    return resolved


def _show_path(path: str | Path) -> str:
    """A path as error messages quote it: repr (escapes control characters), cut to a readable length."""
    text = repr(str(path))
    return text if len(text) <= 80 else text[:77] + "...'"


def tool_media_limits(tool_config_path: str | Path, data_root: str | None) -> MediaLimits:
    """The media budget the pixel tools of a verl tool config apply (their first tool's limits), with `data_root`:
    what reads media for the tools elsewhere (the TTRL request stream) keeps to the same limits."""
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(OmegaConf.load(tool_config_path).tools[0].config, resolve=False)
    keys = ("max_source_pixels", "max_decode_pixels", "max_video_frames", "max_frame_pixels")
    return MediaLimits(data_root, **{key: int(config[key]) for key in keys})


def pixelis_kwargs(tools_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    return (tools_kwargs or {}).get("pixelis") or {}


# cachetools' LRU caches are not thread-safe, and the calls of one turn run in concurrent worker threads.
_LOCK = threading.Lock()
# Decoded sources by content, bounded by their RGB size; an image larger than the whole budget is not kept.
_DECODED: LRUCache = LRUCache(maxsize=SOURCE_CACHE_BYTES, getsizeof=lambda image: image.width * image.height * 3)
# Digests of source bytes by object identity: hashing a 12 MP PNG (~25 MB) costs ~25 ms, more than a zoom, and a
# trajectory passes the same bytes object on every call. The entry keeps the bytes alive, so the id stays theirs.
_DIGESTS: LRUCache = LRUCache(maxsize=256)


def _digest(data: bytes) -> bytes:
    with _LOCK:
        entry = _DIGESTS.get(id(data))
    if entry is not None and entry[0] is data:
        return entry[1]
    digest = hashlib.blake2b(data, digest_size=16).digest()
    with _LOCK:
        _DIGESTS[id(data)] = (data, digest)
    return digest


def decode_image(raw: bytes | Path, limits: MediaLimits, what: str) -> Image.Image:
    """Decode within the limits: refuse above max_decode_pixels, downscale above max_source_pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            image = Image.open(io.BytesIO(raw) if isinstance(raw, bytes) else raw)
        pixels = image.width * image.height
        if pixels > limits.max_decode_pixels:
            raise MediaError(
                f"{what} is {image.width}x{image.height}, above the limit of {limits.max_decode_pixels} pixels"
            )
        if pixels > limits.max_source_pixels:
            scale = (limits.max_source_pixels / pixels) ** 0.5
            target = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
            image.draft("RGB", target)  # JPEG decodes at a reduced scale; other formats ignore this
            image = image.convert("RGB")
            image.thumbnail(target, Image.Resampling.LANCZOS)
            return image
        return image.convert("RGB")
    except Image.DecompressionBombError as e:  # Pillow's own header check, at twice its MAX_IMAGE_PIXELS
        raise MediaError(f"{what} is above the limit of {limits.max_decode_pixels} pixels (Pillow: {e})") from e
    except (OSError, ValueError) as e:
        raise MediaError(f"{what} could not be decoded ({type(e).__name__})") from e


def source_image(tools_kwargs: dict[str, Any] | None, index: int, limits: MediaLimits) -> Image.Image | None:
    """The full-resolution image the row provides for question image `index`, or None."""
    sources = pixelis_kwargs(tools_kwargs).get("source_images") or []
    if index >= len(sources) or not sources[index]:
        return None
    entry = sources[index]
    data, path = (entry.get("bytes"), entry.get("path")) if isinstance(entry, dict) else (None, entry)
    if data:
        raw: bytes | Path = data
        key: tuple = ("bytes", _digest(data))
    elif path:
        raw = resolve_path(path, limits.data_root)
        key = ("path", str(raw), raw.stat().st_mtime_ns)
    else:
        return None
    key += (limits.max_source_pixels, limits.max_decode_pixels)
    with _LOCK:
        image = _DECODED.get(key)
    if image is None:
        image = decode_image(raw, limits, f"source image {index}")
        with _LOCK, contextlib.suppress(ValueError):  # ValueError: larger than the whole cache
            _DECODED[key] = image
    return image


def video_entry(tools_kwargs: dict[str, Any] | None) -> dict[str, Any] | None:
    """The row's `video` entry, or None when the row has no video."""
    entry = pixelis_kwargs(tools_kwargs).get("video")
    return entry if isinstance(entry, dict) and entry.get("path") else None


def question_frames(tools_kwargs: dict[str, Any] | None) -> list[int]:
    """Frame index shown by each question image of a video row (empty for image rows)."""
    entry = video_entry(tools_kwargs)
    return [int(f) for f in (entry.get("question_frames") or [])] if entry else []


def open_video(entry: dict[str, Any], limits: MediaLimits, *, max_pixels: int | None = None) -> VideoReader:
    """A reader for the row's video; frames come out at most `max_pixels` (default: max_frame_pixels)."""
    path = resolve_path(entry["path"], limits.data_root, folder_ok=True)
    try:
        return VideoReader(
            path,
            fps=entry.get("fps"),
            max_frames=limits.max_video_frames,
            max_pixels=max_pixels or limits.max_frame_pixels,
            max_decode_pixels=limits.max_decode_pixels,
        )
    except ValueError as e:
        raise MediaError(f"the video could not be used: {e}") from e
