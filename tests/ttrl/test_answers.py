"""The answer log: what was acknowledged is kept across a crash, a torn last line is not; ids keep their type."""

import pytest

from pixelis_verl.ttrl.answers import AnswerLog
from pixelis_verl.ttrl.durable import DurableFileError


def _answer(request_id, offset):
    return {"id": request_id, "answer": "cat", "source": "requests.jsonl", "offset": offset}


def test_a_torn_last_answer_is_dropped_and_its_request_served_again(tmp_path):
    path = tmp_path / "answers.jsonl"
    log = AnswerLog(path)
    log.write([_answer("a", 10), _answer("b", 20)])
    log.close()
    with path.open("a") as out:
        out.write('{"id": "c", "answ')  # the crash hit mid-write: never acknowledged
    reopened = AnswerLog(path)
    assert reopened.positions == {'"a"': ("requests.jsonl", 10), '"b"': ("requests.jsonl", 20)}
    reopened.write([_answer("c", 30)])
    reopened.close()
    assert set(AnswerLog(path).positions) == {'"a"', '"b"', '"c"'}
    assert path.read_text().count("\n") == 3  # the new record starts on a line of its own


def test_the_integer_1_and_the_string_1_are_two_ids(tmp_path):
    log = AnswerLog(tmp_path / "answers.jsonl")
    log.write([_answer(1, 10), _answer("1", 20)])
    log.close()
    assert AnswerLog(tmp_path / "answers.jsonl").positions == {
        "1": ("requests.jsonl", 10),
        '"1"': ("requests.jsonl", 20),
    }


def test_a_corrupt_middle_answer_fails_naming_its_line_instead_of_erasing_the_answers_after_it(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_bytes(b'{"id": "a", "answer": "x"}\n{"id": "b", "ans\xff\n{"id": "c", "answer": "y"}\n')
    with pytest.raises(DurableFileError, match="answers.jsonl: line 2 is not a JSON object"):
        AnswerLog(path)
    assert path.read_bytes().count(b"\n") == 3  # nothing was cut
    path.write_text('{"answer": "no id"}\n')
    with pytest.raises(DurableFileError, match="answer 1 has no id"):
        AnswerLog(path)
