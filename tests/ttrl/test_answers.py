"""The answer log: what was acknowledged is kept across a crash, a torn last line is not."""

from pixelis_verl.ttrl.answers import AnswerLog


def test_a_torn_last_answer_is_dropped_and_its_request_served_again(tmp_path):
    path = tmp_path / "answers.jsonl"
    log = AnswerLog(path)
    log.write([{"id": "a", "answer": "cat"}, {"id": "b", "answer": "dog"}])
    log.close()
    with path.open("a") as out:
        out.write('{"id": "c", "answ')  # the crash hit mid-write: never acknowledged
    reopened = AnswerLog(path)
    assert reopened.ids == {"a", "b"}
    reopened.write([{"id": "c", "answer": "cow"}])
    reopened.close()
    assert AnswerLog(path).ids == {"a", "b", "c"}
    assert path.read_text().count("\n") == 3  # the new record starts on a line of its own
