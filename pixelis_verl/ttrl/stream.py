"""The request stream: unlabeled visual requests read from JSON lines, committed only once answered.

Sources sit behind one interface (`RequestSource`): a JSONL file and a directory of JSONL files (read in name
order). Each read returns what exists now after a position, so polling again tails a growing file and picks
up new files; a last line without its newline is still being written and is left for the next read. A
position is (file name, byte offset after the line).

A record is `{"id", "question", "images": [path or data URI, ...] | "video": path, "options"?: [...],
"tools"?: [tool name, ...]}` (`tools` narrows the offered tools to those named);
paths resolve inside the configured data root, `data:image/png;base64,...` URIs carry an image inline; a video
request is shown its first frame. A
record that is not that (bad JSON, a missing or mistyped field, a path outside the root or missing, an
undecodable image) goes to the dead-letter JSONL with its reason and the stream goes on.

`RequestStream.commit(request)` marks a request done once its answer is written; the committed position,
saved atomically, only ever moves over a contiguous run of done requests, so a restart resumes after the
last request whose answer (or dead letter) is on disk and before every other one.
"""

from __future__ import annotations

import abc
import base64
import binascii
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from pixelis_verl.ops.video import VideoReader
from pixelis_verl.tools.media import MediaError, resolve_path
from pixelis_verl.ttrl.durable import append_record, replace_text

Position = tuple[str, int]  # (file name, byte offset just after the record's line)
MAX_DEAD_RECORD_CHARS = 2000  # of the raw line kept in a dead letter


class BadRequest(ValueError):
    """Why a record cannot be served; the reason goes to the dead-letter file."""


@dataclass
class Request:
    id: str
    question: str
    images: list[Image.Image] = field(default_factory=list)  # question images; a video request's first frame
    video: Path | None = None  # resolved inside the data root
    options: list[str] | None = None
    tools: list[str] | None = None  # the tools to offer (verl's per-row tool_selection); None: all configured
    position: Position = ("", 0)


class RequestSource(abc.ABC):
    """Raw lines with their positions, from a start position on."""

    @abc.abstractmethod
    def lines(self, start: Position | None) -> Iterator[tuple[Position, bytes]]:
        """Every complete line after `start` (None: from the beginning) that exists now, in order."""


def _complete_lines(path: Path, offset: int) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as file:
        file.seek(offset)
        for line in file:
            if not line.endswith(b"\n"):
                return  # still being written
            offset += len(line)
            yield offset, line


class JsonlFileSource(RequestSource):
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def lines(self, start: Position | None) -> Iterator[tuple[Position, bytes]]:
        if not self.path.exists():
            return
        for offset, line in _complete_lines(self.path, start[1] if start else 0):
            yield (self.path.name, offset), line


class JsonlDirSource(RequestSource):
    def __init__(self, path: str | Path, pattern: str = "*.jsonl"):
        self.path, self.pattern = Path(path), pattern

    def lines(self, start: Position | None) -> Iterator[tuple[Position, bytes]]:
        for file in sorted(self.path.glob(self.pattern)):
            if start and file.name < start[0]:
                continue
            offset = start[1] if start and file.name == start[0] else 0
            for end, line in _complete_lines(file, offset):
                yield (file.name, end), line


def _image(value: Any, data_root: str | None) -> Image.Image:
    """A question image from a `data:image/...;base64,...` URI or a path inside the data root."""
    if not isinstance(value, str) or not value:
        raise BadRequest("images must be a list of paths or data:image/...;base64 URIs")
    if value.startswith("data:"):
        try:
            raw: bytes | Path = base64.b64decode(value.split(",", 1)[-1], validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("an image's base64 payload does not decode") from None
    else:
        try:
            raw = resolve_path(value, data_root)
        except MediaError as exc:
            raise BadRequest(str(exc)) from None
    try:
        with Image.open(io.BytesIO(raw) if isinstance(raw, bytes) else raw) as image:
            image.load()
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise BadRequest(f"unreadable image ({type(exc).__name__})") from None


def parse_request(line: bytes, data_root: str | None) -> Request:
    """A request from one JSON line; BadRequest with the reason otherwise."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("not JSON") from None
    if not isinstance(record, dict):
        raise BadRequest("not a JSON object")
    request_id, question = record.get("id"), record.get("question")
    if not isinstance(request_id, str | int) or isinstance(request_id, bool) or str(request_id) == "":
        raise BadRequest("id must be a non-empty string or an integer")
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
    request = Request(str(request_id), question.strip(), options=options, tools=tools)
    if images is not None:
        if not isinstance(images, list) or not images:
            raise BadRequest("images must be a non-empty list")
        request.images = [_image(value, data_root) for value in images]
    else:
        try:
            request.video = resolve_path(str(video), data_root)
        except MediaError as exc:
            raise BadRequest(str(exc)) from None
        request.images = [_first_frame(request.video)]
    return request


def _first_frame(path: Path) -> Image.Image:
    """The frame a video request is shown with (its tools see the whole video); decoding it checks the file."""
    try:
        return Image.fromarray(VideoReader(path).frames([0])[0].image)
    except ValueError as exc:
        raise BadRequest(f"unreadable video ({exc})") from None


class RequestStream:
    """Parsed requests from a source; dead letters and the committed position live in `state_dir`."""

    def __init__(self, source: RequestSource, state_dir: str | Path, data_root: str | None):
        self.source, self.data_root = source, data_root
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.offsets_path = self.state_dir / "offsets.json"
        self.dead_letter_path = self.state_dir / "dead_letter.jsonl"
        self.committed: Position | None = self._load()
        self._read_to: Position | None = self.committed  # what has been handed out
        self._in_flight: list[Position] = []  # handed out, in stream order
        self._done: set[Position] = set()
        self.dead_letters = 0

    def _load(self) -> Position | None:
        if not self.offsets_path.exists():
            return None
        name, offset = json.loads(self.offsets_path.read_text())["position"]
        return str(name), int(offset)

    def next_batch(self, size: int) -> list[Request]:
        """Up to `size` valid requests after those already handed out; bad records are dead-lettered on the way."""
        batch: list[Request] = []
        for position, line in self.source.lines(self._read_to):
            self._read_to = position
            self._in_flight.append(position)
            if not line.strip():
                self._finish(position)
                continue
            try:
                request = parse_request(line, self.data_root)
            except BadRequest as exc:
                self._dead_letter(position, line, str(exc))
                continue
            request.position = position
            batch.append(request)
            if len(batch) == size:
                break
        return batch

    def commit(self, request: Request) -> None:
        """The request's answer is written: its position may be committed once all before it are too."""
        self._finish(request.position)

    def _dead_letter(self, position: Position, line: bytes, reason: str) -> None:
        record = {"source": position[0], "offset": position[1], "reason": reason,
                  "record": line.decode("utf-8", "replace")[:MAX_DEAD_RECORD_CHARS]}  # fmt: skip
        append_record(self.dead_letter_path, record)
        self.dead_letters += 1
        self._finish(position)

    def _finish(self, position: Position) -> None:
        self._done.add(position)
        advanced = False
        while self._in_flight and self._in_flight[0] in self._done:
            self.committed = self._in_flight.pop(0)
            self._done.discard(self.committed)
            advanced = True
        if advanced:
            replace_text(self.offsets_path, json.dumps({"position": list(self.committed)}))
