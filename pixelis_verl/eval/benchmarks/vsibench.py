"""`vsibench`: VSI-Bench (``nyu-visionx/VSI-Bench``), ~5k questions on 288 indoor-scene videos (ScanNet,
ScanNet++, ARKitScenes): multiple-choice (relative direction and distance, route plan, appearance order)
and numerical (counts, sizes, distances) questions.

The questions are one table (the release's ``test-00000-of-00001.parquet``; a ``.jsonl`` with the same
fields is read too): ``id``, ``dataset``, ``scene_name``, ``question_type``, ``question``, ``options``
(``["A. text", ...]`` or null) and ``ground_truth`` (the letter, or a number). Videos are
``<dataset>/<scene_name>.mp4`` under the root (the release's zips unpacked). Multiple-choice questions
are matched by letter (``choice``); numerical ones by mean relative accuracy (``mra``).
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
    read_table,
    register_benchmark,
    require_media,
    require_unique_ids,
    strip_letter,
)
from pixelis_verl.trajectory.answers import single_number

COLUMNS = ("id", "dataset", "scene_name", "question_type", "question", "options", "ground_truth")


def _option_list(value: object) -> list[str]:
    """The options cell as a list: Parquet gives an array, JSONL a list, and numerical questions None/NaN."""
    if value is None or isinstance(value, float | str):
        return []
    return [str(v) for v in value]


@register_benchmark("vsibench")
class VSIBenchBenchmark(BenchmarkAdapter):
    @dataclass
    class Params:
        questions: str = "test-00000-of-00001.parquet"  # or a .jsonl with the same fields

    def load(self, root: Path) -> list[BenchmarkItem]:
        path = root / self.params.questions
        rows = read_table(path, COLUMNS, f"VSI-Bench questions with columns {list(COLUMNS)}")
        items = []
        for number, row in enumerate(rows, start=1):
            where = f"row {number} (id {row['id']})"
            video = require_media(root / str(row["dataset"]) / f"{row['scene_name']}.mp4", path, where)
            raw = _option_list(row["options"])
            options = [strip_letter(o, chr(ord("A") + i), path, where) for i, o in enumerate(raw)] or None
            truth = str(row["ground_truth"])
            if options is None and single_number(truth) is None:
                raise BenchmarkFormatError(path, f"{where}: numerical ground_truth {truth!r} is not a number")
            items.append(
                make_item(
                    path, where,
                    id=str(row["id"]), question=str(row["question"]), options=options, video=video,
                    answer=letter_of(truth, options, path, where) if options else truth,
                    metric="choice" if options else "mra", category=str(row["question_type"]),
                )
            )  # fmt: skip
        return require_unique_ids(items, path)
