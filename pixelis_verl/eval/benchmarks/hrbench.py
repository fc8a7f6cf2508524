"""`hrbench`: HR-Bench (``DreamMr/HR-Bench``), 4-option questions on 4K or 8K images, one TSV per resolution.

Each row: ``index``, ``question``, ``answer`` (the correct letter), ``category`` (single-instance /
cross-instance perception), options ``A``-``D``, ``image`` (base64 JPEG) and, in some releases,
``cycle_category``. As in VLMEvalKit's TSVs, an ``image`` cell that holds another row's ``index``
instead of base64 reuses that row's image. One adapter serves both files (``hrbench_4k``, ``hrbench_8k``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from pixelis_verl.eval.items import (
    BenchmarkAdapter,
    BenchmarkFormatError,
    BenchmarkItem,
    decode_base64,
    letter_of,
    make_item,
    media_bytes,
    one_image,
    read_table,
    register_benchmark,
    require_unique_ids,
)

COLUMNS = ("index", "question", "answer", "category", "A", "B", "C", "D", "image")
_MAX_REFERENCE_LEN = 64  # an image cell this short is another row's index, not base64 (VLMEvalKit's convention)


@register_benchmark("hrbench")
class HRBenchBenchmark(BenchmarkAdapter):
    @dataclass
    class Params:
        file: str = "hr_bench_4k.tsv"  # or hr_bench_8k.tsv

    def load(self, root: Path) -> list[BenchmarkItem]:
        path = root / self.params.file
        rows = read_table(path, COLUMNS, f"the HR-Bench TSV with columns {list(COLUMNS)}")
        by_index = {str(row["index"]): row for row in rows}
        decoded: dict[str, bytes] = {}  # by the index of the row holding the base64: shared images decode once
        items = []
        for number, row in enumerate(rows, start=1):
            where = f"row {number} (index {row['index']})"
            source = str(row["image"]) if len(str(row["image"])) <= _MAX_REFERENCE_LEN else str(row["index"])
            if source not in decoded:
                decoded[source] = decode_base64(by_index.get(source, row)["image"], path, where)
            options = [str(row[letter]).strip() for letter in "ABCD"]
            while options and not options[-1]:
                options.pop()  # a question with fewer options leaves the last columns empty
            if not all(options):
                raise BenchmarkFormatError(path, f"{where}: an option column before the last one is empty")
            items.append(
                make_item(
                    path, where,
                    id=str(row["index"]), question=str(row["question"]), options=options,
                    answer=letter_of(row["answer"], options, path, where), metric="choice",
                    images=[decoded[source]], category=str(row["category"]),
                )
            )  # fmt: skip
        return require_unique_ids(items, path)

    def export(self, items: list[BenchmarkItem], root: Path) -> list[BenchmarkItem]:
        held = [i for i in items if i.metric == "choice" and len(i.options or []) <= 4 and one_image(i)]
        held = [i for i in held if all(o.strip() == o and o for o in i.options or [])]
        loaded = [replace(i, images=[media_bytes(i.images[0])]) for i in held]  # the TSV holds the bytes
        rows = [
            {"index": item.id, "question": item.question, "answer": item.answer, "category": item.category,
             **dict(zip("ABCD", [*(item.options or []), "", "", ""], strict=False)),
             "image": base64.b64encode(item.images[0]).decode()}
            for item in loaded
        ]  # fmt: skip
        (root / self.params.file).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(root / self.params.file, sep="\t", index=False)
        return loaded
