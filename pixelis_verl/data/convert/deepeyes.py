"""DeepEyes-Datasets-47k parquet rows (ChenShawn/DeepEyes-Datasets-47k): RL prompts with ground truth.

A row is a verl RL row: `prompt` (system, then a user turn whose text holds `<image>` and the question,
followed by DeepEyes' "Think first, call image_zoom_in_tool ..." instruction), `images` (`{bytes, path}`),
`reward_model.ground_truth`, `data_source` (`vstar`, `chart`, `thinklite_eureka`) and `extra_info.question`.
The rows carry no trajectories, so the traces have no steps: they are RL questions (and, for SFT, direct
answers). The question is `extra_info.question` when present, else the user text without the placeholder
and DeepEyes' instruction; our own system prompt and tools replace theirs. DeepEyes grades `vstar`/`chart`
answers (sentences) with an LLM judge; ours are graded by ANLS, `thinklite_eureka` (math) by exact/number match.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pixelis_verl.data.convert import Converter, Dropped, register_converter
from pixelis_verl.data.cota import Trace

INSTRUCTION = re.compile(r"\s*Think first, call \*\*image_zoom_in_tool\*\*.*$", re.DOTALL)
EXACT_SOURCES = ("thinklite_eureka",)  # math answers: exact / numeric; the others are sentences: ANLS
BATCH_ROWS = 256  # rows decoded at a time: the files hold images inline


def user_question(record: dict[str, Any]) -> str | None:
    question = (record.get("extra_info") or {}).get("question")
    if question:
        return str(question).strip()
    turns = [t for t in record.get("prompt") or [] if isinstance(t, dict) and t.get("role") == "user"]
    if not turns or not isinstance(turns[0].get("content"), str):
        return None
    return INSTRUCTION.sub("", turns[0]["content"].replace("<image>", "")).strip() or None


@register_converter("deepeyes")
class DeepEyes(Converter):
    source = "deepeyes47k"

    def records(self, path: Path) -> Iterator[tuple[str, Any]]:
        files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
        for file in files:
            row = 0
            for batch in pq.ParquetFile(file).iter_batches(batch_size=BATCH_ROWS):
                for record in batch.to_pylist():
                    yield f"{file.stem}-{row}", record
                    row += 1

    def convert(self, source_id: str, record: Any) -> Trace:
        question = user_question(record)
        answer = (record.get("reward_model") or {}).get("ground_truth")
        images = [i for i in record.get("images") or [] if i]
        if not question:
            raise Dropped("no question")
        if answer is None or not str(answer).strip():
            raise Dropped("no ground truth")
        if not images:
            raise Dropped("no image")
        trace_id = self.trace_id(source_id)
        saved = [
            self.save_image(image.get("bytes") or image.get("path"), trace_id, f"question{i}")
            for i, image in enumerate(images)
        ]
        source = str(record.get("data_source") or "deepeyes")
        return Trace(
            id=trace_id,
            kind="golden",
            task=source,
            question=question,
            images=saved,
            view=self.view,
            steps=[],
            answer=str(answer).strip(),
            answer_metric="exact" if source in EXACT_SOURCES else "anls",
            tools=["zoom_in"],
            provenance=self.provenance(source_id),
        )
