"""The TTRL run's ledger: its answers, its dead letters and the stream's committed position, in one SQLite file.

Why a database and not JSON-lines files: an online learner serves for weeks, and what it must know at every
record (was this id answered, and where? was this line dead-lettered before a crash?) is a keyed lookup. The
append-only files it replaces were read whole into memory at every start, so start-up time and memory grew with
the run's history; here they are an index lookup each, whatever the history. And an answer and the stream
position that passes it now commit in one transaction, where two files needed a careful order and a repair step.

Durability is SQLite's: WAL journal, `synchronous=FULL`, so a transaction that returned has its WAL frames fsynced
and survives a power loss, and one that did not return is rolled back on the next open (SQLite's own crash tests
cover this; `tests/ttrl/test_power_loss.py` checks our order of writes across the ledger and the experience
buffer). A corrupt database is not something a crash makes: opening it fails with `LedgerError`, one line.

Tables (read them with `python -m pixelis_verl.ttrl.ledger <state dir>` or the `sqlite3` shell):
- `answers(key, source, offset, record)`: one row per served request; `key` is the id's JSON form (so `1` and
  `"1"` are two ids), `record` the answer as JSON (`ttrl/driver.py` writes it).
- `dead_letters(source, offset, reason, record)`: one row per refused line, keyed by its position.
- `position(source, offset)`: the committed stream position, one row.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Position = tuple[str, int]  # (file name, byte offset just after the record's line)
LEDGER_FILE = "ledger.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, source TEXT NOT NULL, offset INTEGER NOT NULL,
                                    record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (source TEXT NOT NULL, offset INTEGER NOT NULL, reason TEXT NOT NULL,
                                         record TEXT NOT NULL, PRIMARY KEY (source, offset));
CREATE TABLE IF NOT EXISTS position (one INTEGER PRIMARY KEY CHECK (one = 1), source TEXT NOT NULL,
                                     offset INTEGER NOT NULL);
"""


class LedgerError(RuntimeError):
    """The ledger cannot be opened or written (corrupt, not a database, disk full); one line says which."""


def _text(value: str) -> str:
    """`value` as SQLite can store it: a lone surrogate (never in a parsed record, maybe in a reason) replaced."""
    return value.encode("utf-8", "replace").decode("utf-8")


class Ledger:
    """One run's answers, dead letters and committed position; every write is one durable transaction."""

    def __init__(self, state_dir: str | Path, read_only: bool = False):
        """Open (creating it) the ledger in `state_dir`; `read_only` reads an existing one beside the process
        serving it (WAL lets readers and the writer work at once)."""
        self.path = Path(state_dir) / LEDGER_FILE
        try:
            if read_only:
                self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
                return
            # isolation_level=None: no implicit transactions; each write below is one explicit transaction.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{self.path}: {exc}; move it aside to start a new run") from None

    # -- reads: one index lookup each ------------------------------------------------------------------------
    def answered_at(self, key: str) -> Position | None:
        """Where the request with id `key` (`stream.id_key`) was read, if it was answered; else None."""
        row = self._db.execute("SELECT source, offset FROM answers WHERE key = ?", (key,)).fetchone()
        return (row[0], row[1]) if row else None

    def is_dead(self, position: Position) -> bool:
        row = self._db.execute("SELECT 1 FROM dead_letters WHERE source = ? AND offset = ?", position).fetchone()
        return row is not None

    def committed(self) -> Position | None:
        row = self._db.execute("SELECT source, offset FROM position").fetchone()
        return (row[0], row[1]) if row else None

    def answers(self) -> Iterator[dict[str, Any]]:
        """Every answer record, in the order written."""
        for (record,) in self._db.execute("SELECT record FROM answers ORDER BY rowid"):
            yield json.loads(record)

    def dead_letters(self) -> Iterator[dict[str, Any]]:
        """Every dead letter (`source`, `offset`, `reason`, `record`: the line's start), in the order written."""
        rows = self._db.execute("SELECT source, offset, reason, record FROM dead_letters ORDER BY rowid")
        for source, offset, reason, record in rows:
            yield {"source": source, "offset": offset, "reason": reason, "record": record}

    # -- writes: each one transaction, durable when it returns --------------------------------------------------
    def add_answers(self, answers: list[tuple[str, Position, dict[str, Any]]], position: Position | None) -> None:
        """Record answers (`(key, position, record)`) and, in the same transaction, the committed `position`."""
        rows = [(key, *where, _text(json.dumps(record, ensure_ascii=False))) for key, where, record in answers]
        self._write("INSERT INTO answers VALUES (?, ?, ?, ?)", rows, position)

    def add_dead_letter(self, position: Position, reason: str, record: str, committed: Position | None) -> None:
        """Record a refused line and, in the same transaction, the committed position."""
        row = (position[0], position[1], _text(reason), _text(record))
        self._write("INSERT OR IGNORE INTO dead_letters VALUES (?, ?, ?, ?)", [row], committed)

    def _write(self, sql: str, rows: list[tuple[Any, ...]], position: Position | None) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, rows)
                if position is not None:
                    self._db.execute("INSERT OR REPLACE INTO position VALUES (1, ?, ?)", position)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{self.path}: {exc}") from None

    def close(self) -> None:
        self._db.close()


def main(argv: list[str] | None = None) -> None:
    """Print a run's answers (or dead letters) as JSON lines: `python -m pixelis_verl.ttrl.ledger <run>/ttrl`."""
    parser = argparse.ArgumentParser(prog="python -m pixelis_verl.ttrl.ledger", description=main.__doc__)
    parser.add_argument("state_dir", help="the TTRL state directory: <run_dir>/ttrl")
    parser.add_argument("--dead-letters", action="store_true", help="print the dead letters instead")
    args = parser.parse_args(argv)
    if not (Path(args.state_dir) / LEDGER_FILE).is_file():
        parser.error(f"no {LEDGER_FILE} in {args.state_dir}")
    try:
        ledger = Ledger(args.state_dir, read_only=True)
        try:
            for record in ledger.dead_letters() if args.dead_letters else ledger.answers():
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        finally:
            ledger.close()
    except (LedgerError, sqlite3.DatabaseError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


if __name__ == "__main__":
    main()
