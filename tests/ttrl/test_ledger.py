"""The TTRL ledger: answers and the position past them commit together, start-up reads no history, SIGKILL at any
moment loses nothing acknowledged, a corrupt file fails in one line."""

import json
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc

import pytest

from pixelis_verl.ttrl.ledger import Ledger, LedgerError, main
from pixelis_verl.ttrl.stream import id_key


def test_an_answer_and_the_position_past_it_commit_together_or_not_at_all(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.add_answers([(id_key("a"), ("r.jsonl", 10), {"id": "a"})], ("r.jsonl", 10))
    with pytest.raises(LedgerError, match="UNIQUE constraint failed"):  # "b" then "a" again: the batch fails whole
        ledger.add_answers([(id_key("b"), ("r.jsonl", 20), {}), (id_key("a"), ("r.jsonl", 30), {})], ("r.jsonl", 30))
    assert ledger.answered_at(id_key("b")) is None and ledger.committed() == ("r.jsonl", 10)
    assert ledger.answered_at(id_key("a")) == ("r.jsonl", 10) and ledger.answered_at(id_key(1)) is None
    ledger.close()


def test_opening_a_long_history_reads_none_of_it(tmp_path):
    ledger = Ledger(tmp_path)
    rows = [(id_key(f"r{i}"), ("r.jsonl", i), {"id": f"r{i}", "trajectory": "x" * 200}) for i in range(20_000)]
    ledger.add_answers(rows, ("r.jsonl", 19_999))
    ledger.close()
    tracemalloc.start()
    reopened = Ledger(tmp_path)
    assert reopened.answered_at(id_key("r12345")) == ("r.jsonl", 12345) and reopened.committed() == ("r.jsonl", 19_999)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    reopened.close()
    assert peak < 200_000, f"opening held {peak} bytes of Python objects: the history (~5 MB) was read"


def test_a_corrupt_ledger_fails_in_one_line_naming_the_file(tmp_path):
    (tmp_path / "ledger.sqlite3").write_bytes(b"not a database, " * 100)
    with pytest.raises(LedgerError, match=r"ledger\.sqlite3: file is not a database; move it aside") as caught:
        Ledger(tmp_path)
    assert "\n" not in str(caught.value)


def test_the_printer_refuses_a_missing_or_corrupt_ledger_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as missing:
        main([str(tmp_path)])
    (tmp_path / "ledger.sqlite3").write_bytes(b"not a database, " * 100)
    with pytest.raises(SystemExit) as corrupt:
        main([str(tmp_path)])
    errors = capsys.readouterr().err.strip().splitlines()
    assert missing.value.code == corrupt.value.code == 2 and len(errors) == 3  # usage + missing, then corrupt
    assert "no ledger.sqlite3 in" in errors[1] and "file is not a database" in errors[2]


def test_the_answers_print_as_json_lines_beside_the_process_serving_them(tmp_path, capsys):
    ledger = Ledger(tmp_path)
    ledger.add_answers([(id_key(1), ("r.jsonl", 5), {"id": 1, "answer": "red"})], ("r.jsonl", 5))
    ledger.add_dead_letter(("r.jsonl", 9), "not JSON", "{oops", ("r.jsonl", 9))
    main([str(tmp_path)])
    main([str(tmp_path), "--dead-letters"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [{"id": 1, "answer": "red"}, {"source": "r.jsonl", "offset": 9, "reason": "not JSON",
                                                  "record": "{oops"}]  # fmt: skip
    ledger.close()


WRITER = textwrap.dedent("""
    import sys
    from pixelis_verl.ttrl.ledger import Ledger
    ledger = Ledger(sys.argv[1])
    for i in range(100_000):
        key = f'"r{i}"'
        ledger.add_answers([(key, ("r.jsonl", i), {"id": f"r{i}"})], ("r.jsonl", i))
        print(i, flush=True)  # acknowledged: the write returned
""")


@pytest.mark.parametrize("after", [0.3, 0.6, 1.2])
def test_sigkill_at_any_moment_loses_no_acknowledged_answer_and_leaves_answers_and_position_agreeing(tmp_path, after):
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    acknowledged = -1
    deadline = time.monotonic() + 60
    while acknowledged < 5 and time.monotonic() < deadline:  # started writing
        acknowledged = int(writer.stdout.readline())
    time.sleep(after)
    writer.send_signal(signal.SIGKILL)
    acknowledged = max([acknowledged, *(int(line) for line in writer.stdout.read().split())])
    writer.wait()
    ledger = Ledger(tmp_path)
    answered = [record["id"] for record in ledger.answers()]
    assert answered == [f"r{i}" for i in range(len(answered))] and len(answered) > acknowledged
    assert ledger.committed() == ("r.jsonl", len(answered) - 1)  # the position went with its answer
    ledger.close()
