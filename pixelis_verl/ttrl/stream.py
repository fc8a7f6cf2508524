"""The request stream: unlabeled visual requests read from JSON lines, committed only once answered.

Sources sit behind one interface (`RequestSource`): a JSONL file and a directory of JSONL files (read in name
order). Each read returns what exists now after a position, so polling again tails a growing file and picks
up new files; while following, a last line without its newline is still being written and is left for the next
read (without `follow`, the source is complete and that line is read). A file shorter than the committed
position was replaced under the stream: that stops it with a `StreamError` instead of stalling. A position is
(file name, byte offset after the line).

A record is `{"id", "question", "images": [path or data URI, ...] | "video": path, "options"?: [...],
"tools"?: [tool name, ...]}` (`tools` narrows the offered tools to those named);
paths resolve inside the configured data root, `data:image/png;base64,...` URIs carry an image inline; a video
request is shown its first frame.

Hostile input is the normal case. Every line becomes either a request or exactly one dead letter (a row of the
run's ledger, `ttrl/ledger.py`, with a one-line reason), and nothing a line holds stops the stream:

- **limits before work** (`RecordLimits`): a line longer than `max_line_bytes` is skipped without being held in
  memory; more than `max_images` images, an image whose header claims more than the tools' `max_decode_pixels`,
  or more decoded pixels per record than `max_record_pixels` are refused; images above the tools'
  `max_source_pixels` are downscaled as they load and video frames decode at most at `max_frame_pixels` (the
  tools' own media budget, `tools/media.py`);
- **text the rest of the system can carry**: JSON nested too deeply, numbers too long to parse, and strings that
  cannot be encoded as UTF-8 (a lone surrogate would crash the tokenizer, the ledger or a print after the
  rollout) are refused at parse;
- **ids unique per run**: `1` and `"1"` are different ids (the ledger keys an id by its JSON form); a record whose
  id was already handed out or answered at another position is dead-lettered as a duplicate; the same record
  handed out again after a crash (answered, its offset not yet committed) is skipped, not answered twice;
- **one dead letter per record**: a line already dead-lettered before a crash is not dead-lettered again;
- anything else that goes wrong while reading one record (a bug, an exotic file) is that record's dead letter,
  with the exception's type as its reason.

`RequestStream.answer(requests, records)` writes the answers and the committed position in one transaction; the
position only ever moves over a contiguous run of done lines, so a restart resumes after the last line whose
answer (or dead letter) is in the ledger and before every other one; a line re-read after a crash is skipped
if the ledger holds its answer or its letter.
"""

from __future__ import annotations

import abc
import base64
import binascii
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from PIL import Image

from pixelis_verl.tools.media import MediaError, MediaLimits, decode_image, open_video, resolve_path
from pixelis_verl.ttrl.durable import make_dirs
from pixelis_verl.ttrl.ledger import Ledger, Position

RequestId = str | int  # as the record gives it; `id_key` tells 1 from "1"
MAX_DEAD_RECORD_CHARS = 2000  # of the raw line kept in a dead letter
MAX_ID_CHARS = 256  # of an id's JSON form
_SKIP_CHUNK = 1 << 20  # bytes read at a time while skipping an over-long line
LOCK_FILE = ".lock"  # in the state directory: held by the one process serving it


class BadRequest(ValueError):
    """Why a record cannot be served; the reason goes to the dead-letter file."""


@dataclass(frozen=True)
class RecordLimits:
    """What one record may cost before it is refused; `media` is the tools' own budget (`tool_media_limits`)."""

    media: MediaLimits
    max_line_bytes: int = 16 << 20  # a longer line is dead-lettered unread (data URIs count here)
    max_images: int = 8  # images per record
    max_record_pixels: int = 50_000_000  # decoded pixels per record, all images together


def _lock(path: Path) -> IO[str]:
    """Hold an exclusive lock on `path` (released when the file closes, or the process dies)."""
    file = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.seek(0)
        holder = file.read().strip() or "another process"
        file.close()
        raise StreamError(f"{path.parent} is being served by {holder}; one TTRL process per run directory") from None
    file.truncate(0)
    file.write(f"pid {os.getpid()} on {socket.gethostname()}")
    file.flush()
    return file


def id_key(request_id: RequestId) -> str:
    """The id's identity: its JSON form, so the integer 1 and the string "1" stay two ids."""
    return json.dumps(request_id, ensure_ascii=False)


@dataclass
class Request:
    id: RequestId
    question: str
    images: list[Image.Image] = field(default_factory=list)  # question images; a video request's first frame
    video: Path | None = None  # resolved inside the data root
    options: list[str] | None = None
    tools: list[str] | None = None  # the tools to offer (verl's per-row tool_selection); None: all configured
    position: Position = ("", 0)

    @property
    def key(self) -> str:
        return id_key(self.id)


class RequestSource(abc.ABC):
    """Raw lines with their positions, from a start position on."""

    @abc.abstractmethod
    def lines(
        self, start: Position | None, max_bytes: int, final: bool = False
    ) -> Iterator[tuple[Position, bytes | None]]:
        """Every complete line after `start` (None: from the beginning) that exists now, in order; a line longer
        than `max_bytes` comes as None, its bytes skipped without being held. With `final` (nothing more will be
        written), a last line without its newline is complete too."""


class StreamError(RuntimeError):
    """The stream cannot go on safely (its file shrank under it, another process serves it); one line says why."""


def _complete_lines(path: Path, offset: int, max_bytes: int, final: bool) -> Iterator[tuple[int, bytes | None]]:
    size = path.stat().st_size
    if offset > size:
        raise StreamError(f"{path} is shorter ({size} bytes) than the position already committed ({offset}): it was "
                          "replaced; move it aside, or serve the new file from a new run directory")  # fmt: skip
    with path.open("rb") as file:
        file.seek(offset)
        while line := file.readline(max_bytes + 1):
            if not line.endswith(b"\n") and len(line) <= max_bytes:
                if final:
                    yield offset + len(line), line
                return  # still being written
            if line.endswith(b"\n"):
                offset += len(line)
                yield offset, line
                continue
            skipped = len(line)  # over-long: find its end a chunk at a time
            while not line.endswith(b"\n"):
                line = file.readline(_SKIP_CHUNK)
                if not line:
                    return  # the over-long line is still being written
                skipped += len(line)
            offset += skipped
            yield offset, None


class JsonlFileSource(RequestSource):
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def lines(
        self, start: Position | None, max_bytes: int, final: bool = False
    ) -> Iterator[tuple[Position, bytes | None]]:
        if not self.path.exists():
            return
        for offset, line in _complete_lines(self.path, start[1] if start else 0, max_bytes, final):
            yield (self.path.name, offset), line


class JsonlDirSource(RequestSource):
    def __init__(self, path: str | Path, pattern: str = "*.jsonl"):
        self.path, self.pattern = Path(path), pattern

    def lines(
        self, start: Position | None, max_bytes: int, final: bool = False
    ) -> Iterator[tuple[Position, bytes | None]]:
        for file in sorted(self.path.glob(self.pattern)):
            if start and file.name < start[0]:
                continue
            offset = start[1] if start and file.name == start[0] else 0
            for end, line in _complete_lines(file, offset, max_bytes, final):
                yield (file.name, end), line


class _Pixels:
    """The decoded-pixel budget of one record, spent image by image."""

    def __init__(self, limit: int):
        self.left = limit

    def spend(self, image: Image.Image) -> Image.Image:
        self.left -= image.width * image.height
        if self.left < 0:
            raise BadRequest("the record's images exceed its pixel budget (max_record_pixels)")
        return image


def _image(value: Any, index: int, limits: RecordLimits) -> Image.Image:
    """Question image `index` from a `data:image/...;base64,...` URI or a path inside the data root."""
    if not isinstance(value, str) or not value:
        raise BadRequest("images must be a list of paths or data:image/...;base64 URIs")
    if value.startswith("data:"):
        try:
            raw: bytes | Path = base64.b64decode(value.split(",", 1)[-1], validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("an image's base64 payload does not decode") from None
    else:
        raw = resolve_path(value, limits.media.data_root)
    return decode_image(raw, limits.media, f"image {index}")


def _parse_json(line: bytes) -> Any:
    try:
        return json.loads(line)
    except RecursionError:
        raise BadRequest("JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise BadRequest("not UTF-8") from None
    except json.JSONDecodeError:
        raise BadRequest("not JSON") from None
    except ValueError:  # e.g. an integer past Python's digit limit
        raise BadRequest("not JSON this reader accepts (a number too long?)") from None


def parse_request(line: bytes, limits: RecordLimits) -> Request:
    """A request from one JSON line; BadRequest with the reason otherwise (media problems included)."""
    record = _parse_json(line)
    if not isinstance(record, dict):
        raise BadRequest("not a JSON object")
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("holds text that is not valid UTF-8 (a lone surrogate)") from None
    request_id, question = record.get("id"), record.get("question")
    if not isinstance(request_id, str | int) or isinstance(request_id, bool) or request_id == "":
        raise BadRequest("id must be a non-empty string or an integer")
    if len(id_key(request_id)) > MAX_ID_CHARS:
        raise BadRequest(f"id longer than {MAX_ID_CHARS} characters")
    if not isinstance(question, str) or not question.strip():
        raise BadRequest("question must be a non-empty string")
    images, video = record.get("images"), record.get("video")
    if (images is None) == (video is None):
        raise BadRequest("give exactly one of images (a list) and video (a path)")
    options = record.get("options")
    if options is not None and (not isinstance(options, list) or not all(isinstance(o, str) for o in options)):
        raise BadRequest("options must be a list of strings")
    tools = record.get("tools")
    if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, str) and t for t in tools)):
        raise BadRequest("tools must be a list of tool names")
    request = Request(request_id, question.strip(), options=options, tools=tools)
    pixels = _Pixels(limits.max_record_pixels)
    try:
        if images is not None:
            if not isinstance(images, list) or not images:
                raise BadRequest("images must be a non-empty list")
            if len(images) > limits.max_images:
                raise BadRequest(f"more than {limits.max_images} images (max_images)")
            request.images = [pixels.spend(_image(value, i, limits)) for i, value in enumerate(images)]
        else:
            if not isinstance(video, str) or not video:
                raise BadRequest("video must be a path")
            reader = open_video({"path": video}, limits.media)
            request.video = reader.path
            request.images = [pixels.spend(Image.fromarray(reader.frames([0])[0].image))]
    except MediaError as exc:
        raise BadRequest(str(exc)) from None
    return request


class RequestStream:
    """Parsed requests from a source; answers, dead letters and the committed position live in the ledger
    (`ttrl/ledger.py`) in `state_dir`.

    See the module docstring on ids. Without `follow`, the source is complete: a last line without its newline is
    read too. One process at a time serves a state directory (a lock held until `close` or exit); a second one
    fails with `StreamError` instead of interleaving answers.
    """

    def __init__(self, source: RequestSource, state_dir: str | Path, limits: RecordLimits, follow: bool = True):
        self.source, self.limits, self.follow = source, limits, follow
        self.state_dir = Path(state_dir)
        make_dirs(self.state_dir)
        self._lock = _lock(self.state_dir / LOCK_FILE)
        self.ledger = Ledger(self.state_dir)
        self.committed: Position | None = self.ledger.committed()
        self._read_to: Position | None = self.committed  # what has been handed out
        self._in_flight: list[Position] = []  # handed out, in stream order
        self._done: set[Position] = set()
        self._ids: dict[str, Position] = {}  # handed out and not yet answered: id key -> position
        self.dead_letters = 0  # by this process

    def next_batch(self, size: int) -> list[Request]:
        """Up to `size` valid requests after those already handed out; bad records are dead-lettered on the way."""
        batch: list[Request] = []
        for position, line in self.source.lines(self._read_to, self.limits.max_line_bytes, final=not self.follow):
            self._read_to = position
            self._in_flight.append(position)
            if (line is not None and not line.strip()) or self.ledger.is_dead(position):  # blank, or a letter already
                self._finish(position)
                continue
            if line is None:
                self._dead_letter(position, b"", f"line longer than {self.limits.max_line_bytes} bytes")
                continue
            try:
                request = parse_request(line, self.limits)
            except BadRequest as exc:
                self._dead_letter(position, line, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - whatever one record does, the stream goes on
                self._dead_letter(position, line, f"could not be read ({type(exc).__name__})")
                continue
            request.position = position
            if self._admit(request, line):
                batch.append(request)
                if len(batch) == size:
                    break
        return batch

    def _admit(self, request: Request, line: bytes) -> bool:
        """Whether `request` is to be served: not answered already, not a duplicate id (dead-lettered)."""
        key, position = request.key, request.position
        answered = self.ledger.answered_at(key)
        if answered == position:
            self._finish(position)  # answered before a crash, its offset not yet committed
            return False
        first = answered or self._ids.get(key)
        if first is not None:
            self._dead_letter(position, line, f"duplicate id {key[:80]} (first read at {first[0]}:{first[1]})")
            return False
        self._ids[key] = position
        return True

    def answer(self, requests: list[Request], records: list[dict[str, Any]]) -> None:
        """Record the requests' answers (`records`, one each) and commit the positions they complete, in one
        transaction: durable when it returns."""
        for request in requests:
            self._done.add(request.position)
            del self._ids[request.key]
        self._advance()
        answers = [(r.key, r.position, record) for r, record in zip(requests, records, strict=True)]
        self.ledger.add_answers(answers, self.committed)

    def close(self) -> None:
        """Release the ledger and the lock; writes nothing (what a crash would skip, a close skips too)."""
        self.ledger.close()
        self._lock.close()

    def _dead_letter(self, position: Position, line: bytes, reason: str) -> None:
        self._done.add(position)
        text = line.decode("utf-8", "replace")[:MAX_DEAD_RECORD_CHARS]
        self._advance()
        self.ledger.add_dead_letter(position, reason, text, self.committed)
        self.dead_letters += 1

    def _finish(self, position: Position) -> None:
        """A line that needs no write (blank, or answered or dead-lettered before a crash): done. Its position is
        saved with the next write; lost in a crash, the line is read and skipped again."""
        self._done.add(position)
        self._advance()

    def _advance(self) -> None:
        """Move the committed position over the done prefix of the in-flight lines (in memory; the ledger gets it
        with the next answer or dead letter)."""
        while self._in_flight and self._in_flight[0] in self._done:
            self.committed = self._in_flight.pop(0)
            self._done.discard(self.committed)
