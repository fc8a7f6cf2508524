"""The request stream: bad records dead-lettered with reasons, tailing, and commits only over answered requests."""

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelis_verl.data.synth.moving_object import write_video
from pixelis_verl.ttrl.stream import JsonlDirSource, JsonlFileSource, RequestStream


def _png_uri() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def root(tmp_path) -> Path:
    media = tmp_path / "media"
    media.mkdir()
    Image.new("RGB", (16, 16)).save(media / "a.png")
    write_video([np.full((16, 24, 3), 40 * i, np.uint8) for i in range(3)], media / "clip.mp4", fps=5)
    (media / "broken.mp4").write_bytes(b"not a video")
    (tmp_path / "outside.png").write_bytes((media / "a.png").read_bytes())
    return media


GOOD = [
    {"id": "r1", "question": "What colour?", "images": ["a.png"]},
    {"id": 2, "question": "Which way?", "video": "clip.mp4", "options": ["left", "right"]},
    {"id": "r3", "question": "Inline?", "images": [_png_uri()]},
]
BAD = {
    "not JSON": "{oops",
    "not a JSON object": "[1, 2]",
    "id must be a non-empty string or an integer": json.dumps({"question": "q", "images": ["a.png"]}),
    "question must be a non-empty string": json.dumps({"id": "x", "question": " ", "images": ["a.png"]}),
    "give exactly one of images (a list) and video (a path)": json.dumps({"id": "x", "question": "q"}),
    "options must be a list of strings": json.dumps({"id": "x", "question": "q", "images": ["a.png"], "options": "A"}),
    "lies outside the data root": json.dumps({"id": "x", "question": "q", "images": ["../outside.png"]}),
    "does not exist under the data root": json.dumps({"id": "x", "question": "q", "images": ["nope.png"]}),
    "an image's base64 payload does not decode": json.dumps({"id": "x", "question": "q", "images": ["data:,%%"]}),
    "unreadable image (UnidentifiedImageError)": json.dumps(
        {"id": "x", "question": "q", "video": None, "images": ["clip.mp4"]}
    ),  # fmt: skip
    "unreadable video": json.dumps({"id": "x", "question": "q", "video": "broken.mp4"}),
    "tools must be a list of tool names": json.dumps(
        {"id": "x", "question": "q", "images": ["a.png"], "tools": "zoom_in"}
    ),
}


def _write(path: Path, lines: list[str], newline_last: bool = True) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + ("\n" if newline_last else ""))


def test_bad_records_go_to_the_dead_letter_file_and_the_stream_goes_on(root, tmp_path):
    path = tmp_path / "requests.jsonl"
    lines = [json.dumps(GOOD[0]), *BAD.values(), json.dumps(GOOD[1]), "", json.dumps(GOOD[2])]
    _write(path, lines)
    stream = RequestStream(JsonlFileSource(path), tmp_path / "state", str(root))
    requests = stream.next_batch(10)
    assert [r.id for r in requests] == ["r1", "2", "r3"]
    assert requests[0].images[0].size == (16, 16) and requests[1].video == root / "clip.mp4"
    assert requests[1].images[0].size == (24, 16)  # a video request is shown its first frame
    assert requests[1].options == ["left", "right"] and requests[2].images[0].getpixel((0, 0)) == (255, 0, 0)
    dead = [json.loads(line) for line in stream.dead_letter_path.read_text().splitlines()]
    assert len(dead) == len(BAD)
    for letter, reason in zip(dead, BAD, strict=True):
        assert reason in letter["reason"], letter
    assert all(letter["source"] == "requests.jsonl" for letter in dead)


def test_the_committed_position_moves_only_over_answered_requests(root, tmp_path):
    path = tmp_path / "requests.jsonl"
    _write(path, [json.dumps({**GOOD[0], "id": f"r{i}"}) for i in range(4)])
    stream = RequestStream(JsonlFileSource(path), tmp_path / "state", str(root))
    first, second, third, fourth = stream.next_batch(4)
    stream.commit(second)
    assert stream.committed is None  # r0 is not answered yet
    stream.commit(first)
    assert stream.committed == second.position
    stream.commit(fourth)
    # A restart (crash after r0, r1 and r3 were answered) resumes at r2: r3 is served again, r0 and r1 never.
    again = RequestStream(JsonlFileSource(path), tmp_path / "state", str(root))
    assert [r.id for r in again.next_batch(10)] == ["r2", "r3"]


def test_a_growing_file_is_tailed_and_a_half_written_line_waits(root, tmp_path):
    path = tmp_path / "requests.jsonl"
    stream = RequestStream(JsonlFileSource(path), tmp_path / "state", str(root))
    assert stream.next_batch(4) == []  # no file yet
    _write(path, [json.dumps(GOOD[0]), json.dumps({**GOOD[0], "id": "half"})], newline_last=False)
    assert [r.id for r in stream.next_batch(4)] == ["r1"]
    _write(path, ["", json.dumps({**GOOD[0], "id": "later"})])
    assert [r.id for r in stream.next_batch(4)] == ["half", "later"]


def test_a_directory_source_reads_files_in_name_order_and_picks_up_new_ones(root, tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    _write(folder / "001.jsonl", [json.dumps({**GOOD[0], "id": "a"})])
    _write(folder / "002.jsonl", [json.dumps({**GOOD[0], "id": "b"})])
    stream = RequestStream(JsonlDirSource(folder), tmp_path / "state", str(root))
    batch = stream.next_batch(10)
    assert [r.id for r in batch] == ["a", "b"]
    for request in batch:
        stream.commit(request)
    _write(folder / "003.jsonl", [json.dumps({**GOOD[0], "id": "c"})])
    restarted = RequestStream(JsonlDirSource(folder), tmp_path / "state", str(root))
    assert [r.id for r in restarted.next_batch(10)] == ["c"]
