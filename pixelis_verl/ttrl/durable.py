"""Append-only JSON-lines files that survive a crash: what a write acknowledged is on disk, a torn tail is not.

An append is flushed and fsynced before it returns. A crash can still cut the last line short (the write
never returned, so nothing was acknowledged): `read_records` stops at the first line that is not whole JSON
and truncates the file there, so the next append starts on a line of its own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any


def append_lines(file: IO[str], lines: list[str]) -> None:
    """Write whole lines (each ending in a newline) and return only once they are on disk."""
    file.write("".join(lines))
    file.flush()
    os.fsync(file.fileno())


def append_record(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as out:
        append_lines(out, [json.dumps(record) + "\n"])


def replace_text(path: Path, text: str) -> None:
    """Write `path` atomically: a crash leaves the old content or the new one, never a mix."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The file's whole records, in order; a torn last line is cut off the file."""
    if not path.exists():
        return []
    data, good, records = path.read_bytes(), 0, []
    for line in data.split(b"\n")[:-1]:  # the last piece is "" or a line cut off by a crash
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
        good += len(line) + 1
    if good < len(data):
        with path.open("r+b") as file:
            file.truncate(good)
    return records
