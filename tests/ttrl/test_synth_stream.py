"""The synthetic stream: requests the stream parser accepts, bad records it dead-letters, answers kept apart."""

import json

from pixelis_verl.ttrl.stream import JsonlFileSource, RequestStream
from pixelis_verl.ttrl.synth_stream import BAD_RECORDS, write_stream


def test_the_synthetic_stream_parses_and_its_bad_records_are_dead_lettered(tmp_path, limits_for):
    root, path = tmp_path / "data", tmp_path / "data" / "stream.jsonl"
    key = write_stream(path, root, num=12, seed=0, kinds=["colour", "motion"], bad_every=2, select_tools=True)
    stream = RequestStream(JsonlFileSource(path), tmp_path / "state", limits_for(root))
    requests = stream.next_batch(100)
    assert [r.id for r in requests] == [f"req-{i:05d}" for i in range(12)]
    assert requests[0].video is None and requests[1].video is not None  # colour is an image task, motion a video
    assert requests[0].tools == ["zoom_in", "read_text"] and requests[1].tools == ["select_frames", "track_object"]
    assert stream.dead_letters == len(BAD_RECORDS)
    answers = [json.loads(line) for line in key.read_text().splitlines()]
    assert [a["id"] for a in answers] == [r.id for r in requests] and all(a["answer"] for a in answers)
    assert "answer" not in path.read_text()  # no labels in the stream
