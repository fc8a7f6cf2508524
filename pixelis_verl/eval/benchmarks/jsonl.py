"""`jsonl`: our own simple format, for custom sets and the CPU end-to-end run.

One JSON object per line: ``id``, ``question``, ``answer``; optional ``metric`` (one of
``pixelis_verl.eval.items.METRICS``; default ``choice`` when the record has ``options``, else ``exact``),
``options`` (a list of option texts; ``answer`` is then a letter or one of the texts), ``image`` or
``images`` or ``video`` (paths relative to the file's folder), ``category`` and ``answers`` (every
accepted answer, e.g. for ANLS). Other keys are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pixelis_verl.eval.items import (
    BenchmarkAdapter,
    BenchmarkFormatError,
    BenchmarkItem,
    letter_of,
    make_item,
    read_jsonl,
    register_benchmark,
    require_keys,
    require_media,
    require_unique_ids,
    write_json,
    write_media,
)


def _list(record: dict, key: str, path: Path, where: str) -> list[str] | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise BenchmarkFormatError(path, f"{where}: {key} must be a non-empty list; got {value!r}")
    return [str(v) for v in value]


@register_benchmark("jsonl")
class JsonlBenchmark(BenchmarkAdapter):
    @dataclass
    class Params:
        file: str = "benchmark.jsonl"

    def load(self, root: Path) -> list[BenchmarkItem]:
        path = root / self.params.file
        items = []
        for where, record in read_jsonl(path, "one JSON object per line with id, question, answer"):
            require_keys(record, ("id", "question", "answer"), path, where)
            options = _list(record, "options", path, where)
            names = [record["image"]] if "image" in record else (_list(record, "images", path, where) or [])
            video = record.get("video")
            items.append(
                make_item(
                    path, where,
                    id=str(record["id"]), question=str(record["question"]), options=options,
                    answer=letter_of(record["answer"], options, path, where) if options else str(record["answer"]),
                    metric=record.get("metric") or ("choice" if options else "exact"),
                    images=[require_media(path.parent / str(name), path, where) for name in names],
                    video=require_media(path.parent / str(video), path, where) if video else None,
                    answers=_list(record, "answers", path, where), category=str(record.get("category", "")),
                )
            )  # fmt: skip
        return require_unique_ids(items, path)

    def export(self, items: list[BenchmarkItem], root: Path) -> list[BenchmarkItem]:
        path = root / self.params.file
        held = [
            i for i in items if i.video_fps is None and i.video_window is None and i.categories in ([], [i.category])
        ]
        records = []
        for number, item in enumerate(held):
            media = path.parent / "media" / f"{number:05d}"
            record = {"id": item.id, "question": item.question, "answer": item.answer, "metric": item.metric,
                      "category": item.category, "options": item.options, "answers": item.answers}  # fmt: skip
            record = {k: v for k, v in record.items() if v is not None}
            if item.images:
                names = [write_media(m, media.with_name(f"{media.name}-{i}")) for i, m in enumerate(item.images)]
                record["images"] = [n.relative_to(path.parent).as_posix() for n in names]
            if item.video is not None:
                record["video"] = write_media(item.video, media).relative_to(path.parent).as_posix()
            records.append(record)
        write_json(path, records, lines=True)
        return held
