"""TTRL's durable state under simulated power loss at every fsync, once and twice in a row.

The scenario is the driver's own order of durable steps (`ttrl/driver.py` `_answer`): read a batch from the
stream (bad records dead-lettered on the way), store the experiences, write the answers with the offsets (one
ledger transaction), snapshot the buffer now and then. The power goes right before or right after the k-th fsync
of a run (what that fsync syncs is lost, or kept), for every k; the ledger keeps every transaction that returned
(`power_loss.py` says why); the restart then runs to the end, possibly losing power once more. Whatever the
points: every valid request is answered exactly once, every bad record is dead-lettered exactly once, nothing
an earlier call acknowledged is gone, and every answered request's experience is in the buffer (storing the
experience after the answer fails here).
"""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from pixelis_verl.ttrl.buffer import ExperienceBuffer
from pixelis_verl.ttrl.ledger import Ledger
from pixelis_verl.ttrl.stream import JsonlFileSource, RequestStream
from tests.ttrl.power_loss import Crash, PowerLoss

DIM, BATCH, SNAPSHOT_EVERY = 8, 3, 2
GOOD = [f"r{i}" for i in range(10)]
LINES = [json.dumps({"id": i, "question": "q", "images": ["a.png"]}) for i in GOOD[:4]] + ["{bad"]
LINES += [json.dumps({"id": i, "question": "q", "images": ["a.png"]}) for i in GOOD[4:]] + ["[1]"]
LINES += [json.dumps({"id": "r0", "question": "again", "images": ["a.png"]})]  # a duplicate id
BAD = 3


@pytest.fixture
def setup(tmp_path, limits_for):
    media = tmp_path / "media"
    media.mkdir()
    Image.new("RGB", (8, 8)).save(media / "a.png")
    requests = tmp_path / "requests.jsonl"
    requests.write_text("\n".join(LINES) + "\n")
    run = tmp_path / "run"
    run.mkdir()
    return run, requests, limits_for(media)


def _serve(run, requests, limits, acknowledged: list[str]) -> None:
    """Serve the stream to its end as the driver does, adding to `acknowledged` each id whose answer write returned
    (kept when the power goes mid-run)."""
    stream = RequestStream(JsonlFileSource(requests), run, limits, follow=False)
    buffer = ExperienceBuffer(run / "buffer", DIM, capacity=100)
    batches = 0
    try:
        while batch := stream.next_batch(BATCH):
            vectors = np.random.default_rng(len(acknowledged)).standard_normal((len(batch), DIM)).astype(np.float32)
            buffer.add_many(vectors, [1.0] * len(batch), [{"request_id": r.id} for r in batch])
            stream.answer(batch, [{"id": r.id} for r in batch])
            acknowledged += [r.id for r in batch]
            batches += 1
            if batches % SNAPSHOT_EVERY == 0:
                buffer.snapshot()
        buffer.snapshot()
    finally:  # the process is gone either way: its descriptors and lock go with it
        stream.close()
        buffer.close()


def _run_with_power_loss(run, requests, limits, monkeypatch, crash_at, acknowledged) -> bool:
    """One process life with power lost at point `crash_at` (`PowerLoss`); True when it crashed."""
    with monkeypatch.context() as patch:
        power = PowerLoss(run, patch, crash_at)
        try:
            _serve(run, requests, limits, acknowledged)
        except Crash:
            power.cut()
            return True
    return False


def _check(run, acknowledged: list[str]) -> None:
    ledger = Ledger(run, read_only=True)
    ids, letters = [a["id"] for a in ledger.answers()], list(ledger.dead_letters())
    ledger.close()
    assert sorted(ids) == sorted(GOOD), "each valid request answered exactly once"
    assert set(acknowledged) <= set(ids), "an acknowledged answer was lost"
    assert len(letters) == len({(x["source"], x["offset"]) for x in letters}) == BAD, "each bad record once"
    buffer = ExperienceBuffer(run / "buffer", DIM, capacity=100)
    assert {e.payload["request_id"] for e in buffer.entries.values()} == set(GOOD), "an experience was lost"
    buffer.close()


def _empty(run) -> None:
    for child in run.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def _points(run, requests, limits, monkeypatch) -> int:
    """How many points the power can go at in an uninterrupted run, two per fsync (the run directory is emptied
    again)."""
    with monkeypatch.context() as patch:
        power = PowerLoss(run, patch)
        _serve(run, requests, limits, [])
    _empty(run)
    return power.points


SECOND = (1, 2, 3, 5, 8, 13, 21)  # where the restart loses power too (a sample: the pairs grow quadratically)


def test_power_lost_around_any_fsync_once_or_twice_in_a_row_loses_nothing_acknowledged(setup, monkeypatch):
    run, requests, limits = setup
    total = _points(run, requests, limits, monkeypatch)
    assert total > 20  # the buffer's fsyncs: the ledger's are SQLite's own
    for first in range(1, total + 1):
        for second in (None, *SECOND):
            acknowledged: list[str] = []
            assert _run_with_power_loss(run, requests, limits, monkeypatch, first, acknowledged)
            if second is not None:
                _run_with_power_loss(run, requests, limits, monkeypatch, second, acknowledged)
            _serve(run, requests, limits, acknowledged)  # the last restart runs to the end
            try:
                _check(run, acknowledged)
            except AssertionError as e:
                raise AssertionError(f"power lost at point {first} of {total}, then {second}: {e}") from e
            _empty(run)
