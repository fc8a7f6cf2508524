"""`mme_realworld` and `mme_realworld_lite`: MME-RealWorld (``yifanzhang114/MME-RealWorld``), 5-option
questions on high-resolution real-world images, and its Lite subset (at most 50 questions per task).

The full release is ``MME_RealWorld.json``, a list of ``{"Question_id", "Image", "Text", "Answer choices":
["(A) ...", ...], "Ground truth": "A", "Task", "Subtask", "Category"}`` with images as files under an image
folder (the release's tarballs unpack to ``AutonomousDriving/``, ``remote_sensing/``, ...; ``Image`` already
names that first folder). The Lite release used by lmms-eval (``yifanzhang114/MME-RealWorld-lite-lmms-eval``)
is Parquet shards with the images inline: ``index``, ``question``, ``multi-choice options``, ``answer``,
``category`` (e.g. ``Perception/Monitoring``), ``l2-category`` and ``bytes`` (base64). The category
reported is Task/Subtask, the level the papers report.
"""

from __future__ import annotations

import base64
import glob
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from pixelis_verl.eval.items import (
    BenchmarkAdapter,
    BenchmarkFormatError,
    BenchmarkItem,
    decode_base64,
    letter_of,
    lettered,
    make_item,
    media_bytes,
    one_image,
    read_json,
    read_table,
    register_benchmark,
    require_keys,
    require_media,
    require_unique_ids,
    strip_letter,
    write_json,
    write_media,
)

KEYS = ("Question_id", "Image", "Text", "Answer choices", "Ground truth")
LITE_COLUMNS = ("index", "question", "multi-choice options", "answer", "category", "bytes")


def _options(choices: object, path: Path, where: str) -> list[str]:
    """ "(A) text" choices -> option texts, checking the letters run A, B, C, ..."""
    if isinstance(choices, str) or not hasattr(choices, "__iter__"):
        raise BenchmarkFormatError(path, f"{where}: answer choices must be a list of '(A) ...' strings")
    return [strip_letter(choice, chr(ord("A") + i), path, where) for i, choice in enumerate(choices)]


@register_benchmark("mme_realworld")
class MMERealWorldBenchmark(BenchmarkAdapter):
    @dataclass
    class Params:
        questions: str = "MME_RealWorld.json"
        images: str = "."  # the folder the image tarballs were unpacked into; `Image` paths are relative to it

    def load(self, root: Path) -> list[BenchmarkItem]:
        path = root / self.params.questions
        records = read_json(path, f"a JSON list of questions with keys {list(KEYS)}")
        if not isinstance(records, list):
            raise BenchmarkFormatError(path, f"expected a JSON list of questions; got {type(records).__name__}")
        image_root = root / self.params.images
        items = []
        for number, record in enumerate(records):
            where = f"question {number}"
            require_keys(record, KEYS, path, where)
            options = _options(record["Answer choices"], path, where)
            category = "/".join(str(record[k]) for k in ("Task", "Subtask") if record.get(k))
            items.append(
                make_item(
                    path, where,
                    id=str(record["Question_id"]), question=str(record["Text"]), options=options,
                    answer=letter_of(record["Ground truth"], options, path, where), metric="choice",
                    images=[require_media(image_root / str(record["Image"]), path, where)],
                    category=category or str(record.get("Category", "")),
                )
            )  # fmt: skip
        return require_unique_ids(items, path)

    def export(self, items: list[BenchmarkItem], root: Path) -> list[BenchmarkItem]:
        held = [i for i in items if i.metric == "choice" and one_image(i)]
        image_root = root / self.params.images
        records = []
        for number, item in enumerate(held):
            image = write_media(item.images[0], image_root / "images" / f"{number:05d}")
            task, _, subtask = item.category.partition("/")  # the category read back is Task/Subtask
            records.append({
                "Question_id": item.id, "Question Type": "Multiple Choice",
                "Image": image.relative_to(image_root).as_posix(), "Text": item.question,
                "Answer choices": lettered(item.options or []), "Ground truth": item.answer,
                "Task": task, "Subtask": subtask, "Category": item.category,
            })  # fmt: skip
        write_json(root / self.params.questions, records)
        return held


@register_benchmark("mme_realworld_lite")
class MMERealWorldLiteBenchmark(BenchmarkAdapter):
    @dataclass
    class Params:
        files: str = "data/*.parquet"  # glob under the root: the release's Parquet shards, read in name order

    def load(self, root: Path) -> list[BenchmarkItem]:
        shards = sorted(root.glob(self.params.files))
        if not shards:
            raise BenchmarkFormatError(root / self.params.files, "no file matches; expected the Lite Parquet shards")
        items = []
        for path in shards:
            rows = read_table(path, LITE_COLUMNS, f"MME-RealWorld-Lite Parquet with columns {list(LITE_COLUMNS)}")
            for number, row in enumerate(rows, start=1):
                where = f"row {number} (index {row['index']})"
                options = _options(row["multi-choice options"], path, where)
                items.append(
                    make_item(
                        path, where,
                        id=str(row["index"]), question=str(row["question"]), options=options,
                        answer=letter_of(row["answer"], options, path, where), metric="choice",
                        images=[decode_base64(row["bytes"], path, where)], category=str(row["category"]),
                    )
                )  # fmt: skip
        return require_unique_ids(items, root / self.params.files)

    def export(self, items: list[BenchmarkItem], root: Path) -> list[BenchmarkItem]:
        name = self.params.files.replace("*", "train-00000-of-00001")  # the one shard, named as the glob asks
        if glob.has_magic(name):
            raise ValueError(f"mme_realworld_lite: cannot name a shard matching files={self.params.files!r}")
        shard = root / name
        held = [i for i in items if i.metric == "choice" and one_image(i)]
        loaded = [replace(i, images=[media_bytes(i.images[0])]) for i in held]  # the shard holds the bytes
        rows = [
            {"index": item.id, "question": item.question, "multi-choice options": lettered(item.options or []),
             "answer": item.answer, "category": item.category, "l2-category": "",
             "bytes": base64.b64encode(item.images[0]).decode()}
            for item in loaded
        ]  # fmt: skip
        shard.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=[*LITE_COLUMNS, "l2-category"]).to_parquet(shard)
        return loaded
