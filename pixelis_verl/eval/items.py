"""What a benchmark adapter produces, and the registry adapters join.

An adapter reads a local copy of a public benchmark in its *published* layout and returns
`BenchmarkItem`s: the question, its media, the answer and how to match it. Protocols (option
shuffling, circular rotations, Avg@k) and the tool / tool-free arms are applied later, the same way
for every benchmark (``pixelis_verl.eval.protocols``, ``pixelis_verl.eval.rows``).

A new benchmark is one module in ``pixelis_verl/eval/benchmarks/`` (a class registered with
`register_benchmark`) and one YAML in ``conf/eval/benchmark/`` naming it and its files.
"""

from __future__ import annotations

import abc
import base64
import binascii
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from pixelis_verl.registry import class_registry

# How an item's answer is matched (``pixelis_verl.trajectory.answers.ANSWER_METRICS``):
# choice: an option letter or the option's text; exact: normalised text, numbers within 1%;
# anls: Average Normalised Levenshtein Similarity (max over `answers`); mra: VSI-Bench's mean relative accuracy.
METRICS = ("choice", "exact", "anls", "mra")
_LETTERED = re.compile(r"^\(?([A-Z])[).:]\s*(.*)$", re.DOTALL)  # "(B) a dog", "B. a dog", "B: a dog"
_IMAGE_SUFFIX = {b"\xff\xd8": ".jpg", b"\x89PNG": ".png", b"GIF8": ".gif", b"RIFF": ".webp", b"BM": ".bmp"}  # by magic


class BenchmarkFormatError(ValueError):
    """A benchmark file is missing or not in its published format; the message names the path and what was expected."""

    def __init__(self, path: str | Path, expected: str):
        super().__init__(f"{path}: {expected}")
        self.path = str(path)


@dataclass
class BenchmarkItem:
    id: str  # unique within the benchmark (the published question id where there is one)
    question: str  # the question text without its options
    answer: str  # the correct option's letter in `options` order (choice), else the reference answer
    metric: str  # one of METRICS
    images: list[Path | bytes] = field(default_factory=list)  # question images: files, or encoded bytes
    video: Path | None = None  # a video question (frames spread over it are shown; the tools read the video)
    video_fps: float | None = None  # frames per second of a video that is a folder of frames (a file knows its own)
    video_window: tuple[float, float] | None = None  # (start, end) seconds the question is about; shown frames in it
    options: list[str] | None = None  # option texts without letters, in published order (choice)
    answers: list[str] | None = None  # every accepted answer, when there are several (InfoVQA)
    category: str = ""  # sub-task, reported separately (its label)
    categories: list[str] = field(default_factory=list)  # every category it counts in; [category] unless given

    def __post_init__(self) -> None:
        if not self.categories and self.category:
            self.categories = [self.category]  # one category for most benchmarks; InfoVQA's answer types are several
        if self.metric not in METRICS:
            raise ValueError(f"item {self.id}: metric must be one of {METRICS}; got {self.metric!r}")
        if self.metric == "choice":
            if not self.options or len(self.options) < 2:
                raise ValueError(f"item {self.id}: a choice question needs at least two options")
            if not (len(self.answer) == 1 and 0 <= ord(self.answer) - ord("A") < len(self.options)):
                raise ValueError(
                    f"item {self.id}: answer {self.answer!r} is not a letter of its {len(self.options)} options"
                )
        if not self.images and self.video is None:
            raise ValueError(f"item {self.id}: no image and no video")

    @property
    def correct_index(self) -> int:
        return ord(self.answer) - ord("A")


class BenchmarkAdapter(abc.ABC):
    """Reads one benchmark's published files under a root folder (``data.path``)."""

    name: ClassVar[str]

    @dataclass
    class Params:
        """The adapter's YAML `params` (file names relative to the root); subclasses extend it."""

    def __init__(self, params: Any):
        self.params = params

    @abc.abstractmethod
    def load(self, root: Path) -> list[BenchmarkItem]:
        """Every item of the benchmark; raises BenchmarkFormatError naming the file and what was expected."""

    @abc.abstractmethod
    def export(self, items: list[BenchmarkItem], root: Path) -> list[BenchmarkItem]:
        """Write the `items` this benchmark's layout can hold under the empty or missing folder `root`, as the
        benchmark publishes its files, and return them as `load(root)` gives them back, media aside (the same
        bytes, which `load` may give as a file where the item held bytes, or the other way round).

        The inverse of `load`: the rehearsal runs each public benchmark's recipe on synthetic items written this way
        (`pixelis_verl.rehearse`), and the tests round-trip through it. Items the layout cannot hold (a video for an
        image benchmark, an open question for a multiple-choice one) are left out; a field the layout spells its
        own way (an id, a category from a fixed list) comes back as the layout spells it."""


BENCHMARKS: dict[str, type[BenchmarkAdapter]] = {}


register_benchmark = class_registry(BENCHMARKS, "benchmark adapter")


def require_file(path: Path, expected: str) -> Path:
    """`path` if it is a file; else a BenchmarkFormatError saying what should be there."""
    if not path.is_file():
        raise BenchmarkFormatError(path, f"missing; expected {expected}")
    return path


def require_keys(record: Any, keys: tuple[str, ...], path: Path, where: str) -> dict[str, Any]:
    """`record` if it is a mapping holding `keys`; else a BenchmarkFormatError naming the record and the keys."""
    if not isinstance(record, dict):
        raise BenchmarkFormatError(
            path, f"{where}: expected an object with keys {list(keys)}; got {type(record).__name__}"
        )
    missing = [k for k in keys if k not in record]
    if missing:
        raise BenchmarkFormatError(path, f"{where}: missing key(s) {missing}; expected keys {list(keys)}")
    return record


# -- shared readers and checks: every failure names the file, the record and what was expected --------------------


def read_json(path: Path, expected: str) -> Any:
    """The parsed JSON file at `path`."""
    require_file(path, expected)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BenchmarkFormatError(path, f"not JSON ({exc}); expected {expected}") from None


def read_jsonl(path: Path, expected: str) -> Iterator[tuple[str, Any]]:
    """("line N", record) for every non-blank line of the JSONL file at `path`."""
    require_file(path, expected)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"line {number}", json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchmarkFormatError(path, f"line {number}: not JSON ({exc.msg}); expected {expected}") from None


def read_table(path: Path, columns: tuple[str, ...], expected: str) -> list[dict[str, Any]]:
    """The rows of a TSV, Parquet or JSONL table (by suffix) as dicts; every name in `columns` must be a column."""
    require_file(path, expected)
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif path.suffix == ".jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        else:
            # pandas' default quoting, as the TSVs were written (VLMEvalKit's `to_csv`): a cell holding quotes or
            # tabs is quoted, its quotes doubled
            frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas and pyarrow raise many types; all mean "not this format"
        raise BenchmarkFormatError(path, f"unreadable ({type(exc).__name__}: {exc}); expected {expected}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BenchmarkFormatError(path, f"missing column(s) {missing}; expected {expected}")
    return frame.to_dict("records")


def decode_base64(value: Any, path: Path, where: str) -> bytes:
    """The bytes of a base64 image cell."""
    try:
        data = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if not data:
        raise BenchmarkFormatError(path, f"{where}: image is not valid base64")
    return data


def letter_of(value: Any, options: list[str], path: Path, where: str) -> str:
    """The letter of the correct option, given as a letter ("B", "(B)", "B.") or as the option's text."""
    text = str(value).strip()
    match = _LETTERED.match(text) if len(text) > 1 else None
    letter = text.upper() if len(text) == 1 else (match.group(1) if match and not match.group(2) else None)
    if letter is not None and 0 <= ord(letter) - ord("A") < len(options):
        return letter
    if text in options:
        return chr(ord("A") + options.index(text))
    raise BenchmarkFormatError(path, f"{where}: answer {text!r} is neither a letter of the {len(options)} options nor "
                               "one of their texts")  # fmt: skip


def strip_letter(choice: Any, letter: str, path: Path, where: str) -> str:
    """ "(A) red" / "A. red" / "A) red" -> "red", checking the letter is the expected one."""
    match = _LETTERED.match(str(choice).strip())
    if not match or match.group(1) != letter:
        raise BenchmarkFormatError(path, f"{where}: option {choice!r} should start with '({letter})' or '{letter}.'")
    return match.group(2).strip()


def make_item(path: Path, where: str, **fields: Any) -> BenchmarkItem:
    """A BenchmarkItem; an inconsistent record (answer not among the options, no media) names its place."""
    try:
        return BenchmarkItem(**fields)
    except ValueError as exc:
        raise BenchmarkFormatError(path, f"{where}: {exc}") from None


def require_media(file: Path, path: Path, where: str) -> Path:
    """`file` if it exists; else an error naming the record of `path` that refers to it."""
    if not file.exists():
        raise BenchmarkFormatError(path, f"{where}: media file '{file}' does not exist")
    return file


def under(folder: Path, name: Any, path: Path, where: str) -> Path:
    """`folder / name` for a record's relative media path; an absolute path or a `..` part is refused (a record
    never reaches outside the benchmark's folder)."""
    relative = Path(str(name))
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise BenchmarkFormatError(path, f"{where}: media path {str(name)!r} must be relative, without '..'")
    return folder / relative


# -- shared writers, for `export` ----------------------------------------------------------------------------------


def write_media(media: Path | bytes, stem: Path) -> Path:
    """An item's image or video written to `stem` plus its suffix (a file's own; bytes: by their magic number); a
    folder of frames is copied whole. Returns the path written."""
    if isinstance(media, bytes):
        suffix = next((s for magic, s in _IMAGE_SUFFIX.items() if media.startswith(magic)), ".bin")
    else:
        suffix = media.suffix
    target = stem.with_name(stem.name + suffix)
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(media, bytes):
        target.write_bytes(media)
    elif media.is_dir():
        shutil.copytree(media, target)
    else:
        shutil.copyfile(media, target)
    return target


def media_bytes(media: Path | bytes) -> bytes:
    """The encoded bytes of an item's image, read from its file where it has one."""
    return media if isinstance(media, bytes) else Path(media).read_bytes()


def write_json(path: Path, document: Any, lines: bool = False) -> None:
    """`document` as JSON at `path` (a list as JSON lines with `lines`), its folder made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in document) if lines else json.dumps(document, indent=1)
    path.write_text(text, encoding="utf-8")


def lettered(options: list[str], form: str = "({letter}) {text}") -> list[str]:
    """Option texts with their letters, as a layout writes them: ["(A) red", "(B) blue"]."""
    return [form.format(letter=chr(ord("A") + i), text=text) for i, text in enumerate(options)]


def one_image(item: BenchmarkItem) -> bool:
    """Whether `item` asks about exactly one image and no video: what most image benchmarks' records hold."""
    return item.video is None and len(item.images) == 1


def require_unique_ids(items: list[BenchmarkItem], path: Path) -> list[BenchmarkItem]:
    """`items` if no id repeats: reports, shuffles and the tool-free pairing key on it."""
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise BenchmarkFormatError(path, f"question id {item.id!r} appears more than once")
        seen.add(item.id)
    return items
