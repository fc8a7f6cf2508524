"""The answer log: one JSON line per served request, on disk before the request's stream offset is committed.

Each answer keeps the request's id as the record gave it (`1` and `"1"` are two ids) and the stream position it
was read at. Restarting reads the log back (cutting a torn last line: that answer was never acknowledged, so its
request is served again) and hands the stream every answered id with its position (`positions`): the stream
then skips a request it hands out again after a crash (answered, its offset not yet committed) and dead-letters
a record that reuses an answered id elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pixelis_verl.ttrl.durable import DurableFileError, append_lines, make_dirs, open_append, read_records
from pixelis_verl.ttrl.stream import Position, id_key


class AnswerLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        make_dirs(self.path.parent)
        self.positions: dict[str, Position | None] = {}  # id key -> stream position (None: logged without one)
        for number, record in enumerate(read_records(self.path), start=1):
            if "id" not in record:
                raise DurableFileError(f"{self.path}: answer {number} has no id")
            source, offset = record.get("source"), record.get("offset")
            self.positions[id_key(record["id"])] = (str(source), int(offset)) if source is not None else None
        self._file = open_append(self.path)

    def write(self, records: list[dict[str, Any]]) -> None:
        """Append answers (each with its request's `id`, `source` and `offset`); returns once they are on disk."""
        append_lines(self._file, [json.dumps(record, ensure_ascii=False) + "\n" for record in records])
        for record in records:
            self.positions[id_key(record["id"])] = (str(record["source"]), int(record["offset"]))

    def close(self) -> None:
        self._file.close()
