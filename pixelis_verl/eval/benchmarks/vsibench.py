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

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from pixelis_verl.eval.items import (
    BenchmarkAdapter,
    BenchmarkFormatError,
    BenchmarkItem,
    letter_of,
    lettered,
    make_item,
    read_table,
    register_benchmark,
    require_media,
    require_unique_ids,
    strip_letter,
    write_media,
)
from pixelis_verl.trajectory.answers import single_number

DATASET = "export"  # the dataset folder exported videos go in (the release's: arkitscenes, scannet, scannetpp)
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

    def export(self, items: list[BenchmarkItem], root: Path) -> list[BenchmarkItem]:
        """Questions on one ``.mp4`` video, multiple choice (options written ``A. text``) or numerical (MRA), in a
        Parquet or JSONL table as `questions` names; the category is the question type."""
        rows, loaded = [], []
        for number, item in enumerate(i for i in items if _holds(i)):
            scene = f"{number:05d}"
            video = write_media(Path(item.video), root / DATASET / scene)
            options = lettered(item.options, "{letter}. {text}") if item.options else None
            rows.append({"id": item.id, "dataset": DATASET, "scene_name": scene, "question_type": item.category,
                         "question": item.question, "options": options, "ground_truth": item.answer})  # fmt: skip
            loaded.append(replace(item, video=video, categories=[item.category] if item.category else []))
        path = root / self.params.questions
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(rows, columns=list(COLUMNS))
        if path.suffix == ".jsonl":
            frame.to_json(path, orient="records", lines=True)
        else:
            frame.to_parquet(path)
        return loaded


def _holds(item: BenchmarkItem) -> bool:
    """One ``.mp4`` and no window or frame rate (a row names neither), choice options a row's ``A. text`` keeps
    intact, or a numerical answer."""
    if item.images or item.video is None or Path(item.video).suffix != ".mp4" or item.video_window or item.video_fps:
        return False
    if item.metric == "choice":
        return all(o and o.strip() == o for o in item.options or [])
    return item.metric == "mra" and single_number(item.answer) is not None
