"""`infovqa`: InfographicVQA (DocVQA challenge, task 3), questions on infographics, scored by ANLS.

``infographicsVQA_val_v1.0_withQT.json`` is ``{"dataset_name", "dataset_split", "data": [{"questionId",
"question", "image_local_name", "answers": [...], "answer_type": [...], ...}]}``; images are files in an
image folder (``infographicsvqa_images/``). Every accepted answer is kept (ANLS takes the best match);
the first is the reference shown. The categories are the answer types (single span, multi-span, number, ...): a
question listing several (``["Multi-span", "Non-span"]``) counts in each type's category, as in the challenge's
per-type scores, not in a joined one.
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

KEYS = ("questionId", "question", "image_local_name", "answers")


@register_benchmark("infovqa")
class InfoVQABenchmark(BenchmarkAdapter):
    @dataclass
    class Params:
        questions: str = "infographicsVQA_val_v1.0_withQT.json"
        images: str = "infographicsvqa_images"  # folder of the images named by image_local_name

    def load(self, root: Path) -> list[BenchmarkItem]:
        path = root / self.params.questions
        document = read_json(path, f'{{"data": [...]}} with questions holding keys {list(KEYS)}')
        if not isinstance(document, dict) or not isinstance(document.get("data"), list):
            raise BenchmarkFormatError(path, 'expected an object with a "data" list of questions')
        items = []
        for number, record in enumerate(document["data"]):
            where = f"data[{number}]"
            require_keys(record, KEYS, path, where)
            answers = record["answers"]
            if not isinstance(answers, list) or not answers:
                raise BenchmarkFormatError(path, f"{where}: answers must be a non-empty list of strings")
            answer_type = record.get("answer_type") or []
            types = [str(t) for t in answer_type] if isinstance(answer_type, list) else [str(answer_type)]
            items.append(
                make_item(
                    path, where,
                    id=str(record["questionId"]), question=str(record["question"]), metric="anls",
                    answer=str(answers[0]), answers=[str(a) for a in answers],
                    images=[require_media(root / self.params.images / str(record["image_local_name"]), path, where)],
                    category=", ".join(types), categories=types,  # counted in each of its answer types
                )
            )  # fmt: skip
        return require_unique_ids(items, path)

    def export(self, items: list[BenchmarkItem], root: Path) -> list[BenchmarkItem]:
        """ANLS questions on one image; the answer shown first, then the other accepted ones; the categories are
        the answer types."""
        held = [i for i in items if i.metric == "anls" and one_image(i)]
        records, loaded = [], []
        for number, item in enumerate(held):
            image = write_media(item.images[0], root / self.params.images / f"{number:05d}")
            answers = [item.answer, *[a for a in item.answers or [] if a != item.answer]]
            types = list(item.categories)
            records.append({"questionId": item.id, "question": item.question, "image_local_name": image.name,
                            "answers": answers, "answer_type": types})  # fmt: skip
            loaded.append(replace(item, answers=answers, category=", ".join(types), images=[image]))
        write_json(root / self.params.questions, {"dataset_name": "infographicVQA", "dataset_split": "val",
                                                  "data": records})  # fmt: skip
        return loaded
