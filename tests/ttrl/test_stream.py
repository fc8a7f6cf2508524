"""The request stream: bad records dead-lettered with reasons, tailing, and commits only over answered requests."""

import base64
import contextlib
import dataclasses
import io
import json
import os
import resource
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pixelis_verl.data.synth.moving_object import write_video
from pixelis_verl.ttrl.stream import JsonlDirSource, JsonlFileSource, RequestStream, StreamError


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
    "image 0 could not be decoded (UnidentifiedImageError)": json.dumps(
        {"id": "x", "question": "q", "video": None, "images": ["clip.mp4"]}
    ),  # fmt: skip
    "the video could not be used": json.dumps({"id": "x", "question": "q", "video": "broken.mp4"}),
    "tools must be a list of tool names": json.dumps(
        {"id": "x", "question": "q", "images": ["a.png"], "tools": "zoom_in"}
    ),
}


def _write(path: Path, lines: list[str], newline_last: bool = True) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + ("\n" if newline_last else ""))


def test_bad_records_go_to_the_dead_letter_file_and_the_stream_goes_on(root, tmp_path, limits_for):
    path = tmp_path / "requests.jsonl"
    lines = [json.dumps(GOOD[0]), *BAD.values(), json.dumps(GOOD[1]), "", json.dumps(GOOD[2])]
    _write(path, lines)
    stream = RequestStream(JsonlFileSource(path), tmp_path / "state", limits_for(root))
    requests = stream.next_batch(10)
    assert [r.id for r in requests] == ["r1", 2, "r3"]  # ids as given: 2 and "2" are two ids
    assert requests[0].images[0].size == (16, 16) and requests[1].video == root / "clip.mp4"
    assert requests[1].images[0].size == (24, 16)  # a video request is shown its first frame
    assert requests[1].options == ["left", "right"] and requests[2].images[0].getpixel((0, 0)) == (255, 0, 0)
    dead = list(stream.ledger.dead_letters())
    assert len(dead) == len(BAD)
    for letter, reason in zip(dead, BAD, strict=True):
        assert reason in letter["reason"], letter
    assert all(letter["source"] == "requests.jsonl" for letter in dead)


def test_the_committed_position_moves_only_over_answered_requests(root, tmp_path, limits_for):
    path = tmp_path / "requests.jsonl"
    _write(path, [json.dumps({**GOOD[0], "id": f"r{i}"}) for i in range(4)])
    stream = RequestStream(JsonlFileSource(path), tmp_path / "state", limits_for(root))
    first, second, third, fourth = stream.next_batch(4)
    stream.answer([second], [{}])
    assert stream.committed is None and stream.ledger.committed() is None  # r0 is not answered yet
    stream.answer([first], [{}])
    assert stream.committed == stream.ledger.committed() == second.position
    stream.answer([fourth], [{}])
    stream.close()  # the process died, and its run-directory lock with it
    # A restart (crash after r0, r1 and r3 were answered) resumes at r2: r3 is read again and skipped, answered.
    again = RequestStream(JsonlFileSource(path), tmp_path / "state", limits_for(root))
    assert [r.id for r in again.next_batch(10)] == ["r2"]
    assert again.committed == second.position  # r2 holds it back


def test_a_growing_file_is_tailed_and_a_half_written_line_waits(root, tmp_path, limits_for):
    path = tmp_path / "requests.jsonl"
    stream = RequestStream(JsonlFileSource(path), tmp_path / "state", limits_for(root))
    assert stream.next_batch(4) == []  # no file yet
    _write(path, [json.dumps(GOOD[0]), json.dumps({**GOOD[0], "id": "half"})], newline_last=False)
    assert [r.id for r in stream.next_batch(4)] == ["r1"]
    _write(path, ["", json.dumps({**GOOD[0], "id": "later"})])
    assert [r.id for r in stream.next_batch(4)] == ["half", "later"]


def test_a_directory_source_reads_files_in_name_order_and_picks_up_new_ones(root, tmp_path, limits_for):
    folder = tmp_path / "incoming"
    folder.mkdir()
    _write(folder / "001.jsonl", [json.dumps({**GOOD[0], "id": "a"})])
    _write(folder / "002.jsonl", [json.dumps({**GOOD[0], "id": "b"})])
    stream = RequestStream(JsonlDirSource(folder), tmp_path / "state", limits_for(root))
    batch = stream.next_batch(10)
    assert [r.id for r in batch] == ["a", "b"]
    stream.answer(batch, [{}, {}])
    _write(folder / "003.jsonl", [json.dumps({**GOOD[0], "id": "c"})])
    stream.close()
    restarted = RequestStream(JsonlDirSource(folder), tmp_path / "state", limits_for(root))
    assert [r.id for r in restarted.next_batch(10)] == ["c"]


def _png_bytes(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (0, 0, 255)).save(buffer, format="PNG")
    return buffer.getvalue()


def _uri(raw: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(raw).decode()


def test_poison_records_each_become_one_dead_letter_and_the_good_ones_around_them_are_served(
    root, tmp_path, limits_for
):
    """The records an adversarial review used to crash the loop (and crash it again on every restart)."""
    os.mkfifo(root / "pipe.png")
    (root / "loop.png").symlink_to(root / "loop.png")
    q = "What colour?"
    poison = {
        "JSON nested too deeply": "[" * 100_000 + "]" * 100_000,
        "a number too long": '{"id": ' + "7" * 5000 + ', "question": "q", "images": ["a.png"]}',
        "cannot be opened (ValueError)": json.dumps({"id": "nul", "question": q, "images": ["a\x00.png"]}),
        "cannot be opened (OSError)": json.dumps({"id": "long", "question": q, "images": ["x" * 300 + ".png"]}),
        "cannot be opened (RuntimeError)": json.dumps({"id": "loop", "question": q, "images": ["loop.png"]}),
        "not a regular file": json.dumps({"id": "fifo", "question": q, "images": ["pipe.png"]}),
        "more than 2 images": json.dumps({"id": "many", "question": q, "images": ["a.png"] * 3}),
        "exceed its pixel budget": json.dumps({"id": "big", "question": q, "images": [_uri(_png_bytes((120, 100)))]}),
        "above the limit": json.dumps({"id": "bomb", "question": q, "images": [_uri(_png_bytes((400, 300)))]}),
        "not valid UTF-8 (a lone surrogate)": '{"id": "s", "question": "What \\ud800?", "images": ["a.png"]}',
        "not valid UTF-8 (a lone surrogate) ": '{"id": "\\udfff", "question": "q", "images": ["a.png"]}',
        "not UTF-8": b'{"id": "b", "question": "\xff", "images": ["a.png"]}'.decode("latin-1"),
        "line longer than 400000 bytes": json.dumps({"id": "huge", "question": "x" * 500_000, "images": ["a.png"]}),
    }
    limits = limits_for(root, max_images=2, max_record_pixels=10_000, max_line_bytes=400_000)
    limits = dataclasses.replace(limits, media=dataclasses.replace(limits.media, max_decode_pixels=100_000))
    path = tmp_path / "requests.jsonl"
    lines = [json.dumps({"id": "first", "question": q, "images": ["a.png"]}), *poison.values()]
    lines.append(json.dumps({"id": "last", "question": q, "images": ["a.png"]}))
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape").replace(b"\xc3\xbf", b"\xff"))
    stream = RequestStream(JsonlFileSource(path), tmp_path / "state", limits)
    assert [r.id for r in stream.next_batch(100)] == ["first", "last"]
    dead = list(stream.ledger.dead_letters())
    assert len(dead) == len(poison) == stream.dead_letters
    for letter, reason in zip(dead, poison, strict=True):
        assert reason.strip() in letter["reason"] and "\n" not in letter["reason"], (reason, letter["reason"])
    assert all(len(letter["record"]) <= 2000 for letter in dead)


def test_ids_are_unique_per_run_and_keep_their_type(root, tmp_path, limits_for):
    path = tmp_path / "requests.jsonl"
    record = {"question": "q", "images": ["a.png"]}
    _write(path, [json.dumps({**record, "id": i}) for i in (1, "1", 1, "2")])
    stream = RequestStream(JsonlFileSource(path), tmp_path / "state", limits_for(root))
    batch = stream.next_batch(10)
    assert [r.id for r in batch] == [1, "1", "2"]  # the integer 1 and the string "1" are two ids
    (letter,) = stream.ledger.dead_letters()
    assert letter["reason"].startswith("duplicate id 1 (first read at requests.jsonl:")


def test_a_restart_skips_answered_requests_dead_letters_once_and_refuses_an_answered_id_elsewhere(
    root, tmp_path, limits_for
):
    path, state = tmp_path / "requests.jsonl", tmp_path / "state"
    record = {"question": "q", "images": ["a.png"]}
    _write(path, [json.dumps({**record, "id": "p"}), json.dumps({**record, "id": "a"}), "{bad", "[1]"])
    stream = RequestStream(JsonlFileSource(path), state, limits_for(root))
    p, a = stream.next_batch(10)
    assert stream.dead_letters == 2
    stream.answer([a], [{"answer": "A"}])
    assert stream.ledger.committed() is None  # "p" is still in flight: nothing after it is committed
    stream.close()  # crash: "a" answered and both letters written, none of it behind the committed position
    _write(path, [json.dumps({**record, "id": "a", "question": "again"})])
    again = RequestStream(JsonlFileSource(path), state, limits_for(root))
    assert [r.id for r in again.next_batch(10)] == ["p"]  # "a" answered, both letters written: skipped
    reasons = [letter["reason"] for letter in again.ledger.dead_letters()]
    assert reasons[:2] == ["not JSON", "not a JSON object"] and reasons[2].startswith('duplicate id "a"')
    assert len(reasons) == 3
    again.answer([p], [{"answer": "P"}])
    assert again.committed == again.ledger.committed() == ("requests.jsonl", path.stat().st_size)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
_RECORDS = st.fixed_dictionaries(
    {"id": _JSON, "question": _JSON}, optional={"images": _JSON, "video": _JSON, "options": _JSON, "tools": _JSON}
)
_POISON = st.one_of(
    st.integers(1_000, 200_000).map(lambda depth: "[" * depth + "]" * depth),  # nesting
    st.integers(100, 20_000).map(lambda digits: '{"id": ' + "9" * digits + ', "question": "q", "images": ["a.png"]}'),
    st.sampled_from(["\\ud800", "\\udfff", "\\u0000"]).map(
        lambda escape: '{"id": "' + escape + '", "question": "q' + escape + '", "images": ["a' + escape + '.png"]}'
    ),  # lone surrogates and NULs, escaped as JSON carries them
    st.integers(200, 5_000).map(lambda n: json.dumps({"id": "p", "question": "q", "images": ["x" * n + ".png"]})),
    st.integers(9, 50_000).map(lambda n: json.dumps({"id": "m", "question": "q", "images": ["a.png"] * n})),
).map(str.encode)
_LINES = st.lists(
    st.binary(max_size=64) | (_JSON | _RECORDS).map(lambda v: json.dumps(v).encode()) | _POISON,
    max_size=12,
)


CAP_VARIABLE = "PIXELIS_TEST_MEMORY_CAP"  # set: the fuzz test runs under the cap (only in its own child process)


@contextlib.contextmanager
def _address_space_capped(extra: int):
    """Cap this process's address space at its current size plus `extra` bytes, the hard limit untouched; only
    when `CAP_VARIABLE` is set, i.e. in the child process `test_the_fuzzing_runs_under_a_256_mib_cap` starts (a
    cap in the shared test process could starve other libraries' threads)."""
    if not os.environ.get(CAP_VARIABLE):
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    used = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@settings(max_examples=150, deadline=timedelta(seconds=20), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=_LINES)
def test_whatever_the_lines_hold_each_is_a_request_a_dead_letter_or_blank_and_nothing_escapes(
    root, tmp_path_factory, limits_for, lines
):
    """Arbitrary bytes, JSON, records and poison, each example within 20 s (and 256 MiB more memory: below)."""
    lines = [line.replace(b"\n", b" ") for line in lines]
    lines += [json.dumps({"id": f"ok{i}", "question": "q", "images": ["a.png"]}).encode() for i in range(2)]
    work = tmp_path_factory.mktemp("fuzz")
    (work / "requests.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    stream = RequestStream(JsonlFileSource(work / "requests.jsonl"), work / "state", limits_for(root))
    with _address_space_capped(256 << 20):
        served = stream.next_batch(1000)
    blank = sum(1 for line in lines if not line.strip())
    assert len(served) + stream.dead_letters + blank == len(lines)
    assert [r.id for r in served][-2:] == ["ok0", "ok1"]
    memory = [letter for letter in stream.ledger.dead_letters() if "MemoryError" in letter["reason"]]
    assert not memory, "a record was refused by the memory cap, not by a limit"
    stream.close()


def test_the_fuzzing_runs_under_a_256_mib_cap():
    """The fuzz test again, in a child process whose address space is capped around each example."""
    test = f"{__file__}::test_whatever_the_lines_hold_each_is_a_request_a_dead_letter_or_blank_and_nothing_escapes"
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        env={**os.environ, CAP_VARIABLE: "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-2000:]


def test_without_follow_a_last_line_lacking_its_newline_is_served(root, tmp_path, limits_for):
    path = tmp_path / "requests.jsonl"
    _write(path, [json.dumps({**GOOD[0], "id": "a"}), json.dumps({**GOOD[0], "id": "b"})], newline_last=False)
    stream = RequestStream(JsonlFileSource(path), tmp_path / "state", limits_for(root), follow=False)
    assert [r.id for r in stream.next_batch(10)] == ["a", "b"]


def test_a_stream_file_replaced_by_a_shorter_one_stops_with_a_clear_error(root, tmp_path, limits_for):
    path = tmp_path / "requests.jsonl"
    _write(path, [json.dumps({**GOOD[0], "id": f"r{i}"}) for i in range(3)])
    stream = RequestStream(JsonlFileSource(path), tmp_path / "state", limits_for(root))
    batch = stream.next_batch(10)
    stream.answer(batch, [{}] * len(batch))
    stream.close()
    path.write_text(json.dumps(GOOD[0]) + "\n")
    again = RequestStream(JsonlFileSource(path), tmp_path / "state", limits_for(root))
    with pytest.raises(StreamError, match="shorter .* than the position already committed .* it was replaced"):
        again.next_batch(10)


def test_a_second_process_on_the_same_run_directory_is_refused(root, tmp_path, limits_for):
    first = RequestStream(JsonlFileSource(tmp_path / "r.jsonl"), tmp_path / "state", limits_for(root))
    with pytest.raises(StreamError, match=r"is being served by pid \d+ on .*; one TTRL process per run directory"):
        RequestStream(JsonlFileSource(tmp_path / "r.jsonl"), tmp_path / "state", limits_for(root))
    first.close()
    RequestStream(JsonlFileSource(tmp_path / "r.jsonl"), tmp_path / "state", limits_for(root)).close()


MEMORY_BUDGET = textwrap.dedent("""
    import base64, json, resource, struct, sys, zlib
    from pathlib import Path
    from pixelis_verl.tools.media import tool_media_limits
    from pixelis_verl.ttrl.stream import JsonlFileSource, RecordLimits, RequestStream

    root, tool_config, work = (Path(p) for p in sys.argv[1:4])
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    # A PNG whose header claims 20000 x 20000 (1.2 GB decoded) in 70 bytes: a decompression bomb's signature.
    bomb = b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
    bomb += chunk(b"IDAT", zlib.compress(b"\\0" * 64)) + chunk(b"IEND", b"")
    uri = "data:image/png;base64," + base64.b64encode(bomb).decode()
    lines = [
        json.dumps({"id": "bomb", "question": "q", "images": [uri]}),
        json.dumps({"id": "long", "question": "x" * 50_000_000, "images": ["a.png"]}),
        json.dumps({"id": "many", "question": "q", "images": ["a.png"] * 40_000}),
        json.dumps({"id": "ok", "question": "q", "images": ["a.png"]}),
    ]
    (work / "requests.jsonl").write_text("\\n".join(lines) + "\\n")
    del lines
    stream = RequestStream(JsonlFileSource(work / "requests.jsonl"), work / "state",
                           RecordLimits(tool_media_limits(tool_config, str(root))), follow=False)
    used = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + (256 << 20), resource.RLIM_INFINITY))
    print(json.dumps({"served": [r.id for r in stream.next_batch(10)],
                      "reasons": [letter["reason"] for letter in stream.ledger.dead_letters()]}))
""")


def test_hostile_records_at_the_shipped_limits_fit_in_256_mib(root, tmp_path):
    """A decompression bomb, a 50 MB line and 40,000 image entries, with the address space capped at what the
    process holds plus 256 MiB: each is refused by its limit (not by a MemoryError) and the next request served."""
    from tests.ttrl.conftest import TOOL_CONFIG

    done = subprocess.run([sys.executable, "-c", MEMORY_BUDGET, str(root), str(TOOL_CONFIG), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["served"] == ["ok"]
    assert len(result["reasons"]) == 3 and not any("MemoryError" in r for r in result["reasons"]), result["reasons"]
    assert "above the limit" in result["reasons"][0] and "line longer than" in result["reasons"][1]
    assert "more than 8 images" in result["reasons"][2]
