"""Files that survive a crash or a power loss: what a write acknowledged is on disk, a torn tail is not.

Append-only JSON lines: an append is flushed and fsynced before it returns. A crash can still cut the last
line short (the write never returned, so nothing was acknowledged): `read_records` cuts that torn final
record off the file, so the next append starts on a line of its own. Any other bad line (a corrupt middle
record, bytes that are not UTF-8, a record that is not an object) is not something a crash makes: it fails
with `DurableFileError` naming the file and line, instead of silently dropping every record after it.

Whole-file replacement (`replace_text`: the checkpoint marker): the new content is written to a temporary file
and fsynced, renamed over the old one, then the directory is fsynced, so after a power loss the file holds the
old content or the new one, never a mix or nothing. (The stream's answers, dead letters and position are in
SQLite instead: `ttrl/ledger.py`.)

A new file or folder is a new name in its parent, and a name is durable only once the parent is fsynced: an
fsynced append to a file whose name was lost is lost with it. `make_dirs` and `open_append` fsync the parent of
whatever they create. (ext4 usually persists the name with the file's own fsync; POSIX does not promise it, and
`tests/ttrl/test_power_loss.py` holds the code to POSIX.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any


class DurableFileError(RuntimeError):
    """A durable file is corrupt in a way no crash produces; the message names the file and the line."""


def sync_file(file: IO[Any]) -> None:
    """Return only once what was written to the open `file` is on disk."""
    file.flush()
    os.fsync(file.fileno())


def append_lines(file: IO[str], lines: list[str]) -> None:
    """Write whole lines (each ending in a newline) and return only once they are on disk."""
    file.write("".join(lines))
    sync_file(file)


def make_dirs(path: Path) -> None:
    """`mkdir -p` whose new folders survive a power loss (each one's parent fsynced)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        fsync_dir(folder.parent)


def open_append(path: Path, mode: str = "a") -> IO[str]:
    """Open a text file for appending (`mode` "a" or "a+"); a file it creates has its name made durable."""
    make_dirs(path.parent)
    existed = path.exists()
    file = path.open(mode, encoding="utf-8")
    if not existed:
        fsync_dir(path.parent)
    return file


def fsync_dir(path: Path) -> None:
    """Make the directory entries of `path` (a directory) durable: a rename or a new file inside it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_dir(staging: Path, target: Path) -> None:
    """Move a folder written in full at `staging` to `target` durably: every file and folder under it fsynced,
    then the rename, then the parent's entry, so after a crash `target` is either absent or complete."""
    for item in sorted(staging.rglob("*")):
        if item.is_file():
            with item.open("rb") as file:
                os.fsync(file.fileno())
    for folder in sorted({item.parent for item in staging.rglob("*")} | {staging}, reverse=True):
        fsync_dir(folder)
    staging.rename(target)
    fsync_dir(target.parent)


def replace_text(path: Path, text: str) -> None:
    """Write `path` atomically and durably: after a crash or power loss it holds the old content or the new."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as file:
        file.write(text)
        sync_file(file)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The file's records (JSON objects), in order; a torn final record is cut off the file. Any other bad line
    raises `DurableFileError`."""
    if not path.exists():
        return []
    data, records = path.read_bytes(), []
    lines = data.split(b"\n")  # the last piece is b"" after a final newline, or a record cut short by a crash
    for number, line in enumerate(lines[:-1], start=1):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # ValueError covers bad JSON and bytes that are not UTF-8
            record = None
        if not isinstance(record, dict):
            raise DurableFileError(f"{path}: line {number} is not a JSON object and not the torn last record")
        records.append(record)
    if lines[-1]:  # torn: the append that wrote it never returned, so nothing it held was acknowledged
        with path.open("r+b") as file:
            file.truncate(len(data) - len(lines[-1]))
            sync_file(file)
    return records
