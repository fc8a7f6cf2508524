"""`vstar`: V* Bench (HF ``craigwu/vstar_bench``), 191 multiple-choice questions on high-resolution images.

``test_questions.jsonl`` holds one question per line: ``image`` (a path under the root, e.g.
``direct_attributes/sa_4690.jpg``), ``text`` (the question, its options as ``(A) ...`` lines and a final
"Answer with the option's letter..." instruction), ``category`` (direct_attributes / relative_position),
``question_id`` and ``label`` (the correct letter). The options are parsed out of ``text``; the
instruction is dropped, since the protocol adds its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pixelis_verl.eval.items import (
    BenchmarkAdapter,
    BenchmarkFormatError,
    BenchmarkItem,
    letter_of,
    lettered,
    make_item,
    one_image,
    read_jsonl,
    register_benchmark,
    require_keys,
    require_media,
    require_unique_ids,
    write_json,
    write_media,
)

_OPTION = re.compile(r"\(([A-Z])\)\s*")
INSTRUCTION = "Answer with the option's letter from the given choices directly."  # the release's last line


def split_options(text: str) -> tuple[str, list[str]] | None:
    """``"Q?\\n(A) red\\n(B) blue\\nAnswer with..."`` -> ``("Q?", ["red", "blue"])``; None when the text has no
    (A), (B), ... options in order. Lines after the last option line (the answer instruction) are dropped."""
    start = text.find("(A)")
    if start < 0:
        return None
    option_lines = []
    for line in text[start:].splitlines():
        if not line.strip():
            continue
        if not _OPTION.match(line.strip()):
            break
        option_lines.append(line.strip())
    parts = _OPTION.split(" ".join(option_lines))  # ["", "A", "red ", "B", "blue"]
    letters, options = parts[1::2], [p.strip() for p in parts[2::2]]
    if len(letters) < 2 or letters != [chr(ord("A") + i) for i in range(len(letters))] or not all(options):
        return None
    return text[:start].strip(), options


@register_benchmark("vstar")
class VStarBenchmark(BenchmarkAdapter):
    @dataclass
    class Params:
        questions: str = "test_questions.jsonl"  # one question per line; images are paths under the root

    def load(self, root: Path) -> list[BenchmarkItem]:
        path = root / self.params.questions
        expected = "V* questions, one JSON object per line with image, text, label"
        items = []
        for where, record in read_jsonl(path, expected):
            require_keys(record, ("image", "text", "label"), path, where)
            parsed = split_options(str(record["text"]))
            if parsed is None:
                raise BenchmarkFormatError(path, f"{where}: no '(A) ...', '(B) ...' options in {record['text']!r}")
            question, options = parsed
            items.append(
                make_item(
                    path, where,
                    id=str(record.get("question_id", where)), question=question, options=options,
                    answer=letter_of(record["label"], options, path, where), metric="choice",
                    images=[require_media(root / str(record["image"]), path, where)],
                    category=str(record.get("category", "")),
                )
            )  # fmt: skip
        return require_unique_ids(items, path)

    def export(self, items: list[BenchmarkItem], root: Path) -> list[BenchmarkItem]:
        held = [i for i in items if i.metric == "choice" and one_image(i) and "(A)" not in i.question]
        records = [
            {"image": write_media(item.images[0], root / "images" / f"{number:05d}").relative_to(root).as_posix(),
             "text": "\n".join([item.question, *lettered(item.options or []), INSTRUCTION]),
             "category": item.category, "question_id": item.id, "label": item.answer}
            for number, item in enumerate(held)
        ]  # fmt: skip
        write_json(root / self.params.questions, records, lines=True)
        return held
