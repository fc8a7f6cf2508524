"""Generic image question-answer JSON lines (V*-style): one record per line, no tool traces.

Keys (the first present wins): image `image` | `image_path` | `images` (a list: the first is the question
image); question `question` | `text` | `prompt`; answer `answer` | `label` | `gt_answer`; optional options
`options` | `choices` (written into the question as lettered lines, the answer kept as given); id `id` |
`question_id` (default: the line number). Image paths are relative to `--media-root` (default: the file's
folder). The traces have no steps: rendered for RL they are questions with ground truth; for SFT, direct answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pixelis_verl.data.convert import Converter, Dropped, register_converter
from pixelis_verl.data.cota import Trace

KEYS = {
    "image": ("image", "image_path", "images"),
    "question": ("question", "text", "prompt"),
    "answer": ("answer", "label", "gt_answer"),
    "options": ("options", "choices"),
    "id": ("id", "question_id"),
}
LETTERS = "ABCDEFGHIJ"


def first(record: dict[str, Any], field: str) -> Any:
    return next((record[k] for k in KEYS[field] if record.get(k) not in (None, "", [])), None)


def with_options(question: str, options: list[str]) -> str:
    if len(options) > len(LETTERS):
        raise Dropped(f"more than {len(LETTERS)} options")
    return question + "\n" + "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))


@register_converter("vqa_jsonl")
class VQAJsonl(Converter):
    source = "vqa_jsonl"

    def records(self, path: Path) -> Iterator[tuple[str, Any]]:
        self.media_root = self.media_root or path.parent
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    record = None  # convert() drops it with its reason
                yield str(first(record, "id") if isinstance(record, dict) and first(record, "id") else number), record

    def convert(self, source_id: str, record: Any) -> Trace:
        if not isinstance(record, dict):
            raise Dropped("not a JSON object")
        image, question, answer = first(record, "image"), first(record, "question"), first(record, "answer")
        for name, value in (("image", image), ("question", question), ("answer", answer)):
            if value is None:
                raise Dropped(f"no {name}")
        options = first(record, "options")
        if options is not None and not isinstance(options, list):
            raise Dropped("options is not a list")
        trace_id = self.trace_id(source_id)
        image = image[0] if isinstance(image, list) else image
        return Trace(
            id=trace_id,
            kind="golden",
            task=str(record.get("category") or record.get("task") or "vqa"),
            question=with_options(str(question), [str(o) for o in options]) if options else str(question),
            images=[self.save_image(image, trace_id, "question")],
            view=self.view,
            steps=[],
            answer=str(answer),
            options=[str(o) for o in options] if options else None,
            provenance=self.provenance(source_id),
        )
