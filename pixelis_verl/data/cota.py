"""Chain-of-Thought-Action (CoTA) traces: the schema every data source is converted into.

A trace is one worked example: a question about images or a video, the steps an agent took (a thought,
one tool call, and the tool's real observation: text plus the images it returned), and the final answer.
Traces are stored as JSON lines next to a media folder (`TraceSet`); media paths are relative to the set's
directory, so a set can be moved or copied as a whole.

Coordinates in a trace's arguments are in the coordinate frame of the model the trace was made for
(`View`: the tool config's `coord_frame` and the image budget the model's processor resizes with), because
tools echo coordinates back in that frame: an observation is only true in the frame it was produced in.
Synthesise one set per model family (Qwen2.5-VL: absolute pixels of the shown image; Qwen3-VL: 0..1000).

Validation (`validate_trace`) finds what makes a trace unusable, each with its own `code` and a message
naming the step and argument: `schema`, `unknown_tool`, `bad_arguments`, `outside_image`, `missing_answer`,
`missing_media`; re-executing the steps (`pixelis_verl.data.replay`) adds `observation_mismatch`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from pixelis_verl.ops.sizes import fit_size
from pixelis_verl.tools.coords import get_coord_frame

KINDS = ("golden", "self_correction", "trap")
TRACES_FILE = "traces.jsonl"
MEDIA_DIR = "media"


class TraceError(ValueError):
    """What is wrong with a trace: `code` says which kind of problem, the message where and why."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass
class View:
    """How the model sees the question image and which coordinate frame its tool arguments are in."""

    coord_frame: str
    min_pixels: int
    max_pixels: int
    factor: int  # image sides are multiples of this (patch size x spatial merge)

    def shown_size(self, source: tuple[int, int]) -> tuple[int, int]:
        return fit_size(*source, min_pixels=self.min_pixels, max_pixels=self.max_pixels, factor=self.factor)

    def extent(self, shown: tuple[int, int], source: tuple[int, int]) -> tuple[float, float]:
        """The span of coordinates on an image shown at `shown` whose source is `source`."""
        return get_coord_frame(self.coord_frame).extent(shown, source)


@dataclass
class Observation:
    text: str
    images: list[str] = field(default_factory=list)  # paths relative to the set's directory


@dataclass
class Step:
    thought: str
    tool: str
    arguments: dict[str, Any]
    observation: Observation


@dataclass
class Video:
    path: str  # relative to the set's directory: a video file, or a folder of frame images
    question_frames: list[int] = field(default_factory=lambda: [0])  # the frame each question image shows
    fps: float | None = None  # frames per second of a frame folder (a video file knows its own)


@dataclass
class Trace:
    id: str
    kind: str  # one of KINDS
    task: str  # what the question tests, e.g. "text", "count", "chart"; free-form, used by stats and fuse
    question: str
    images: list[str]  # question images (full resolution), relative paths
    view: View
    steps: list[Step]
    answer: str
    answer_metric: str = "exact"  # a key of pixelis_verl.trajectory.answers.ANSWER_METRICS
    tools: list[str] = field(default_factory=list)  # the tools offered to the model; empty = every tool
    video: Video | None = None
    options: list[str] | None = None  # multiple-choice options, already written into the question
    final_thought: str = ""  # the reasoning before the answer, in the last assistant turn
    provenance: dict[str, Any] = field(default_factory=dict)  # source, source_id, generator, seed, ...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Any) -> Trace:
        """A trace from its JSON form; a missing or mistyped field is a `schema` TraceError naming it."""
        if not isinstance(record, dict):
            raise TraceError("schema", f"a trace must be a JSON object; got {type(record).__name__}")
        trace_id = record.get("id", "?")
        try:
            view = View(**_require(record, "view", dict))
            steps = [_step(s) for s in _require(record, "steps", list)]
            video = Video(**record["video"]) if record.get("video") else None
            known = {f for f in cls.__dataclass_fields__}
            unknown = sorted(set(record) - known)
            if unknown:
                raise TraceError("schema", f"unknown field(s) {unknown}")
            values = {k: v for k, v in record.items() if k not in ("view", "steps", "video")}
            trace = cls(**values, view=view, steps=steps, video=video)
        except TypeError as exc:  # a missing or unexpected constructor argument
            raise TraceError("schema", f"trace {trace_id}: {exc}") from None
        except TraceError as exc:
            raise TraceError(exc.code, f"trace {trace_id}: {str(exc).split(': ', 1)[1]}") from None
        for name, kind in (("id", str), ("question", str), ("answer", str), ("images", list), ("task", str)):
            _check_type(trace_id, name, getattr(trace, name), kind)
        if trace.kind not in KINDS:
            raise TraceError("schema", f"trace {trace_id}: kind must be one of {list(KINDS)}; got {trace.kind!r}")
        return trace


def _require(record: dict[str, Any], key: str, kind: type) -> Any:
    if key not in record:
        raise TraceError("schema", f"missing field '{key}'")
    _check_type(record.get("id", "?"), key, record[key], kind)
    return record[key]


def _check_type(trace_id: str, key: str, value: Any, kind: type) -> None:
    if not isinstance(value, kind):
        raise TraceError("schema", f"trace {trace_id}: '{key}' must be a {kind.__name__}; got {type(value).__name__}")


def _step(record: Any) -> Step:
    if not isinstance(record, dict):
        raise TraceError("schema", f"a step must be an object; got {type(record).__name__}")
    observation = record.get("observation")
    if not isinstance(observation, dict):
        raise TraceError("schema", "a step needs an 'observation' object with 'text' (and 'images')")
    if not isinstance(record.get("arguments"), dict):
        raise TraceError("schema", f"step of tool {record.get('tool')!r}: 'arguments' must be an object")
    return Step(record.get("thought", ""), record.get("tool"), record["arguments"], Observation(**observation))


def validate_trace(trace: Trace, root: Path, schemas: dict[str, dict[str, Any]]) -> list[TraceError]:
    """Every problem of a parsed trace that can be found without running tools; empty when it is usable.

    `schemas` maps tool name -> its OpenAI function schema (the tool config's). Coordinates are checked
    against the image each call addresses: the question images at their shown size, then every image an
    earlier step returned, in order (the `image_index` numbering the tools use).
    """
    errors: list[TraceError] = []
    if not trace.answer.strip():
        errors.append(TraceError("missing_answer", f"trace {trace.id}: the answer is empty"))
    media = [*trace.images, *(p for s in trace.steps for p in s.observation.images)]
    missing = [p for p in media if not (root / p).is_file()]
    missing += [trace.video.path] if trace.video and not (root / trace.video.path).exists() else []
    if missing:
        errors.append(TraceError("missing_media", f"trace {trace.id}: no file {missing[0]} under {root}"))
        return errors
    sizes = _question_sizes(trace, root)  # (shown, source) of every image the model can address
    for number, step in enumerate(trace.steps, start=1):
        where = f"trace {trace.id} step {number} ({step.tool})"
        schema = schemas.get(step.tool)
        if schema is None:
            errors.append(TraceError("unknown_tool", f"{where}: no tool named {step.tool!r}; known: {sorted(schemas)}"))
            continue
        problem = argument_problem(schema["function"]["parameters"], step.arguments)
        if problem:
            errors.append(TraceError("bad_arguments", f"{where}: {problem}"))
            continue
        outside = _outside_image(trace.view, step.arguments, sizes)
        if outside:
            errors.append(TraceError("outside_image", f"{where}: {outside}"))
        for path in step.observation.images:
            with Image.open(root / path) as image:
                sizes.append((image.size, image.size))
    return errors


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "array": (list,),
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "boolean": (bool,),
    "object": (dict,),
}


def argument_problem(parameters: dict[str, Any], arguments: dict[str, Any]) -> str | None:
    """What is wrong with `arguments` against a function schema's `parameters`: missing, unknown or mistyped."""
    properties = parameters.get("properties", {})
    missing = [name for name in parameters.get("required", []) if arguments.get(name) is None]
    if missing:
        return f"missing required argument(s) {missing}"
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        return f"unknown argument(s) {unknown}; the tool takes {sorted(properties)}"
    for name, value in arguments.items():
        expected = _JSON_TYPES.get(properties[name].get("type", ""), (object,))
        if value is not None and (isinstance(value, bool) and bool not in expected or not isinstance(value, expected)):
            return f"argument {name} must be of type {properties[name]['type']}; got {json.dumps(value)}"
    return None


def _question_sizes(trace: Trace, root: Path) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    sizes = []
    for path in trace.images:
        with Image.open(root / path) as image:
            sizes.append((trace.view.shown_size(image.size), image.size))
    return sizes


def _outside_image(view: View, arguments: dict[str, Any], sizes: list) -> str | None:
    index = arguments.get("image_index") or 0
    if not 0 <= index < len(sizes):
        return f"image_index {index} refers to no image; {len(sizes)} exist at this step"
    width, height = view.extent(*sizes[index])
    for name in ("bbox_2d", "point_2d"):
        values = arguments.get(name)
        if values is None:
            continue
        xs, ys = values[0::2], values[1::2]
        if not all(0 <= x <= width for x in xs) or not all(0 <= y <= height for y in ys):
            return f"{name} {values} lies outside image {index}, which spans [0, 0, {width:g}, {height:g}]"
    return None


class TraceSet:
    """A folder holding `traces.jsonl` and the `media/` files its traces name."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def path(self) -> Path:
        return self.root / TRACES_FILE

    def media_path(self, name: str) -> Path:
        """Where a new media file `name` goes; returns the path (its parent created)."""
        path = self.root / MEDIA_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def records(self) -> Iterator[tuple[int, Any]]:
        """(line number, parsed JSON or the exception) for every non-empty line."""
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    try:
                        yield number, json.loads(line)
                    except json.JSONDecodeError as exc:
                        yield number, TraceError("schema", f"line {number} is not JSON: {exc.msg}")

    def traces(self) -> Iterator[Trace]:
        """Every trace; the first record that does not parse raises its TraceError with the line number."""
        for number, record in self.records():
            if isinstance(record, Exception):
                raise record
            try:
                yield Trace.from_dict(record)
            except TraceError as exc:
                raise TraceError(exc.code, f"{self.path}:{number}: {str(exc).split(': ', 1)[1]}") from None

    def write(self, traces: list[Trace]) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", encoding="utf-8") as out:
            for trace in traces:
                out.write(json.dumps(trace.to_dict(), ensure_ascii=False) + "\n")
        return self.path
