"""Converters from local copies of public datasets into CoTA trace sets.

A converter reads one source format record by record and turns each record into a `Trace`, copying the
media into the output set. A record it cannot use raises `Dropped(reason)`: the record is skipped, written
to `dropped.jsonl` in the output set with its reason, and counted, so a conversion never stops on one bad
row and always reports kept and dropped counts by reason. Add a format with `@register_converter("name")`
on a subclass of `Converter` in its own module, imported below (docs/data.md, "Adding a converter").
"""

from __future__ import annotations

import abc
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image
from tqdm import tqdm

from pixelis_verl.data.cota import Trace, TraceSet, View
from pixelis_verl.registry import class_registry

CONVERTERS: dict[str, type[Converter]] = {}
DROPPED_FILE = "dropped.jsonl"
IMAGE_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif"}


class Dropped(ValueError):
    """A source record that cannot become a trace; the message is the reason, counted in the report."""


register_converter = class_registry(CONVERTERS, "converter")


class Converter(abc.ABC):
    """One source format. `records` yields (source id, raw record); `convert` makes a trace or raises Dropped."""

    name: ClassVar[str] = ""
    source: ClassVar[str] = ""  # provenance.source of the traces it makes

    def __init__(self, out: TraceSet, view: View, tools: dict[str, Any], media_root: Path | None = None):
        self.out, self.view, self.tools = out, view, tools
        self.media_root = media_root  # where relative media paths of the source resolve; default: the input's folder

    @abc.abstractmethod
    def records(self, path: Path) -> Iterator[tuple[str, Any]]:
        """(source id, record) for each record of the file or folder at `path`."""

    @abc.abstractmethod
    def convert(self, source_id: str, record: Any) -> Trace:
        """The trace of one record, its media saved under the output set; raises Dropped."""

    def trace_id(self, source_id: str) -> str:
        return f"{self.name}-{source_id}"

    def save_image(self, image: Any, trace_id: str, name: str) -> str:
        """Copy one source image (bytes, a path under the media root, or a PIL image) into the set.

        Encoded images keep their bytes (no re-encoding: that would cost most of a conversion's time) once
        they decode completely; a PIL image is written as PNG.
        """
        if isinstance(image, Image.Image):
            path = self.out.media_path(f"{trace_id}/{name}.png")
            image.convert("RGB").save(path, format="PNG")
            return self.out.relative(path)
        data = bytes(image) if isinstance(image, bytes | bytearray) else self.resolve(str(image)).read_bytes()
        try:
            with Image.open(io.BytesIO(data)) as loaded:
                loaded.load()  # a truncated or corrupt file fails here, not in training
                suffix = IMAGE_SUFFIXES.get(loaded.format or "")
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise Dropped(f"unreadable image ({type(exc).__name__})") from None
        if suffix is None:
            raise Dropped(f"unsupported image format {loaded.format}")
        path = self.out.media_path(f"{trace_id}/{name}{suffix}")
        path.write_bytes(data)
        return self.out.relative(path)

    def resolve(self, path: str) -> Path:
        root = (self.media_root or Path(".")).resolve()
        resolved = (root / path).resolve()
        if not resolved.is_relative_to(root):
            raise Dropped("media path outside the media root")
        if not resolved.is_file():
            raise Dropped("missing media file")
        return resolved

    def provenance(self, source_id: str) -> dict[str, Any]:
        return {"source": self.source, "source_id": source_id, "converter": self.name}


@dataclass
class Report:
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in self.dropped.most_common()) or "none"
        return f"kept {self.kept}, dropped {sum(self.dropped.values())} ({reasons})"


def convert_source(
    name: str, path: Path, out: TraceSet, converter_kwargs: dict[str, Any], limit: int | None = None,
    progress: bool = True,
) -> Report:  # fmt: skip
    """Convert the records at `path` with converter `name` into `out` (traces.jsonl + dropped.jsonl)."""
    if name not in CONVERTERS:
        raise ValueError(f"unknown converter {name!r}; known: {sorted(CONVERTERS)}")
    converter = CONVERTERS[name](out, **converter_kwargs)
    report, traces = Report(), []
    out.root.mkdir(parents=True, exist_ok=True)
    with (out.root / DROPPED_FILE).open("w", encoding="utf-8") as dropped:
        for number, (source_id, record) in enumerate(tqdm(converter.records(path), desc=name, disable=not progress)):
            if limit is not None and number >= limit:
                break
            try:
                traces.append(converter.convert(source_id, record))
                report.kept += 1
            except Dropped as exc:
                report.dropped[str(exc)] += 1
                dropped.write(json.dumps({"source_id": source_id, "reason": str(exc)}) + "\n")
    out.write(traces)
    return report


from pixelis_verl.data.convert import deepeyes, pixel_reasoner, vqa_jsonl  # noqa: E402,F401  (registers)
