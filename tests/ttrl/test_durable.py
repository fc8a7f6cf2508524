"""Durable files: fsync of file and directory around a rename; only a torn final record may be cut."""

import os

import pytest

from pixelis_verl.ttrl import durable


def test_replace_text_syncs_the_new_file_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(durable.os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
                        or real_fsync(fd))  # fmt: skip
    monkeypatch.setattr(durable.os, "replace", lambda a, b: events.append(("replace",)) or real_replace(a, b))
    durable.replace_text(tmp_path / "marker.txt", '{"position": ["a", 1]}')
    assert events == [("fsync", str(tmp_path / "marker.txt.tmp")), ("replace",), ("fsync", str(tmp_path))]
    assert (tmp_path / "marker.txt").read_text() == '{"position": ["a", 1]}'


def test_a_crash_before_the_rename_leaves_the_old_content(tmp_path, monkeypatch):
    path = tmp_path / "marker.txt"
    durable.replace_text(path, "4")

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(durable.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        durable.replace_text(path, "8")
    assert path.read_text() == "4"


def test_only_a_torn_final_record_is_cut(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": ')
    assert durable.read_records(path) == [{"a": 1}, {"b": 2}]
    assert path.read_bytes() == b'{"a": 1}\n{"b": 2}\n'
    path.write_bytes(b'{"a": 1}\nnot json\n{"c": 3}\n')
    with pytest.raises(durable.DurableFileError, match="log.jsonl: line 2 is not a JSON object"):
        durable.read_records(path)
    assert path.read_bytes() == b'{"a": 1}\nnot json\n{"c": 3}\n'  # nothing after the bad line was lost
