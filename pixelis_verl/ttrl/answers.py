"""The answer log: one JSON line per served request, on disk before the request's stream offset is committed.

Restarting reads it back (cutting a torn last line: that answer was never acknowledged, so its request is
served again) and skips every request whose id it already holds, so a request the stream hands out twice
after a crash (answered, but its offset not yet committed) is answered once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pixelis_verl.ttrl.durable import append_lines, read_records


class AnswerLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ids = {str(record["id"]) for record in read_records(self.path)}
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, records: list[dict[str, Any]]) -> None:
        """Append answers (each with its request's `id`); returns once they are on disk."""
        append_lines(self._file, [json.dumps(record, ensure_ascii=False) + "\n" for record in records])
        self.ids.update(str(record["id"]) for record in records)

    def close(self) -> None:
        self._file.close()
