"""A power-loss simulator for the durable-file tests: only what fsync made durable survives.

Records, at every ``os.fsync``, the content of a file (by inode) or the entries of a directory (name -> inode);
``cut()`` then rebuilds the tree under ``root`` from those records alone, as a machine that lost power would find
it under POSIX's guarantees: a file holds what it held at its last fsync (nothing if never synced), and a name
exists only if its directory was fsynced after the name appeared (a rename included). Stricter than ext4's usual
behaviour on purpose: code that passes here does not lean on a file system's kindness.

Files named in ``transactional`` (the TTRL ledger's SQLite database) survive as they are at the cut: SQLite
fsyncs them itself (not through ``os.fsync``), and with ``synchronous=FULL`` every transaction that returned is
durable. The crash is raised inside ``os.fsync``, which SQLite never calls, so no transaction is ever half done
when it comes. (SQLite's own crash tests cover what happens inside a transaction.)
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

LEDGER = ("ledger.sqlite3", "ledger.sqlite3-wal")  # the database and its write-ahead log


class Crash(BaseException):
    """The power went: a BaseException, so no `except Exception` in the code under test can swallow it."""


class PowerLoss:
    def __init__(self, root: Path, monkeypatch, crash_at: int | None = None, transactional=LEDGER):
        self.root, self.crash_at, self.transactional = Path(root), crash_at, transactional
        self.fsyncs = self.points = 0
        self.files: dict[int, bytes] = {}
        self.dirs: dict[int, dict[str, tuple[int, bool]]] = {}
        for folder, _, names in os.walk(self.root):  # what exists now counts as durable
            self._record_dir(folder)
            for name in names:
                path = os.path.join(folder, name)
                self.files[os.lstat(path).st_ino] = Path(path).read_bytes()

        def fsync(fd: int) -> None:  # the simulation decides what is durable: the disk need not be asked
            self._point()  # the power goes before this fsync: what it would have synced is lost
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                self._record_dir(os.readlink(f"/proc/self/fd/{fd}"))
            else:
                with open(f"/proc/self/fd/{fd}", "rb") as file:  # works for write-only descriptors too
                    self.files[info.st_ino] = file.read()
            self.fsyncs += 1
            self._point()  # ... or right after it

        monkeypatch.setattr(os, "fsync", fsync)

    def _point(self) -> None:
        """A point where the power may go: two per fsync, before and after it (`points` counts them)."""
        self.points += 1
        if self.points == self.crash_at:
            raise Crash

    def _record_dir(self, folder: str) -> None:
        entries = {}
        with os.scandir(folder) as found:
            for entry in found:
                info = entry.stat(follow_symlinks=False)
                entries[entry.name] = (info.st_ino, stat.S_ISDIR(info.st_mode))
        self.dirs[os.stat(folder).st_ino] = entries

    def cut(self) -> None:
        """Replace the tree under `root` with what survives the power loss."""
        tree = self._tree(os.stat(self.root).st_ino)
        kept = {path: path.read_bytes() for name in self.transactional for path in self.root.rglob(name)}
        for child in self.root.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        self._write(self.root, tree)
        for path, content in kept.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)

    def _tree(self, inode: int) -> dict:
        return {name: self._tree(child) if is_dir else self.files.get(child, b"")
                for name, (child, is_dir) in self.dirs.get(inode, {}).items()}  # fmt: skip

    def _write(self, folder: Path, tree: dict) -> None:
        for name, content in tree.items():
            if isinstance(content, dict):
                (folder / name).mkdir()
                self._write(folder / name, content)
            else:
                (folder / name).write_bytes(content)
