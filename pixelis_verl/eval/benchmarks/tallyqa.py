"""`tallyqa`: TallyQA (Acharya et al., AAAI 2019), counting questions on COCO and Visual Genome images.

``test.json`` is a JSON list of ``{"image": "VG_100K/...jpg", "question", "answer": <int>, "data_source",
"image_id", "question_id", "issimple": <bool>}``; images are paths under the root (the COCO and Visual
Genome folders as named in ``image``). The category is ``simple`` or ``complex`` (``issimple``); answers
are integers, matched numerically.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pixelis_verl.eval.items import (
    BenchmarkAdapter,
    BenchmarkFormatError,
    BenchmarkItem,
    make_item,
    one_image,
    read_json,
    register_benchmark,
    require_keys,
    require_media,
    require_unique_ids,
    write_json,
    write_media,
)

KEYS = ("image", "question", "answer", "question_id", "issimple")


@register_benchmark("tallyqa")
class TallyQABenchmark(BenchmarkAdapter):
    @dataclass
    class Params:
        questions: str = "test.json"

    def load(self, root: Path) -> list[BenchmarkItem]:
        path = root / self.params.questions
        records = read_json(path, f"a JSON list of questions with keys {list(KEYS)}")
        if not isinstance(records, list):
            raise BenchmarkFormatError(path, f"expected a JSON list of questions; got {type(records).__name__}")
        items = []
        for number, record in enumerate(records):
            where = f"question {number}"
            require_keys(record, KEYS, path, where)
            if isinstance(record["answer"], bool) or not isinstance(record["answer"], int):
                raise BenchmarkFormatError(path, f"{where}: answer must be an integer count; got {record['answer']!r}")
            items.append(
                make_item(
                    path, where,
                    id=str(record["question_id"]), question=str(record["question"]), answer=str(record["answer"]),
                    metric="exact", images=[require_media(root / str(record["image"]), path, where)],
                    category="simple" if record["issimple"] else "complex",
                )
            )  # fmt: skip
        return require_unique_ids(items, path)

    def export(self, items: list[BenchmarkItem], root: Path) -> list[BenchmarkItem]:
        """Counting questions on one image (an answer of digits); ``complex`` stays complex, any other category is
        read back as ``simple``."""
        held = [i for i in items if i.metric == "exact" and one_image(i) and i.answer.strip().isdigit()]
        records, loaded = [], []
        for number, item in enumerate(held):
            image = write_media(item.images[0], root / "images" / f"{number:05d}")
            simple = item.category != "complex"
            records.append({"image": image.relative_to(root).as_posix(), "question": item.question,
                            "answer": int(item.answer), "data_source": "export", "image_id": number,
                            "question_id": item.id, "issimple": simple})  # fmt: skip
            category = "simple" if simple else "complex"
            loaded.append(replace(item, answer=str(int(item.answer)), category=category, categories=[category],
                                  images=[image]))  # fmt: skip
        write_json(root / self.params.questions, records)
        return loaded
