"""The experience buffer: k-NN against brute force, priority eviction, and exact recovery from log and snapshot."""

import numpy as np
import pytest

from pixelis_verl.ttrl.buffer import WAL_FILE, ExperienceBuffer, normalise

DIM = 32


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def _brute_force(vectors: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    return list(np.argsort(-(normalise(vectors) @ normalise(query)[0]))[:k])


def _fill(buffer: ExperienceBuffer, vectors: np.ndarray, priorities=None) -> None:
    for i, vector in enumerate(vectors):
        buffer.add(vector, 1.0 if priorities is None else priorities[i], {"i": i})


@pytest.mark.parametrize("hnsw_above", [10_000, 100])  # exact flat index; HNSW graph past 100 entries
def test_knn_matches_brute_force(tmp_path, hnsw_above):
    vectors, queries = _vectors(400), _vectors(20, seed=1)
    buffer = ExperienceBuffer(tmp_path, DIM, capacity=1000, hnsw_above=hnsw_above)
    _fill(buffer, vectors)
    assert buffer.is_hnsw == (hnsw_above == 100)
    recall = []
    for query in queries:
        hits = buffer.search(query, 8)
        expected = _brute_force(vectors, query[None], 8)
        recall.append(len({e.payload["i"] for e, _ in hits} & set(expected)) / 8)
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True)
        if hnsw_above == 10_000:
            assert [e.payload["i"] for e, _ in hits] == expected
            best = float((normalise(vectors[expected[0]][None]) @ normalise(query[None])[0])[0])
            np.testing.assert_allclose(scores[0], best, rtol=1e-5)
    assert np.mean(recall) >= 0.95


@pytest.mark.parametrize("hnsw_above", [10_000, 20])
def test_capacity_evicts_the_lowest_priority_then_the_oldest(tmp_path, hnsw_above):
    buffer = ExperienceBuffer(tmp_path, DIM, capacity=30, hnsw_above=hnsw_above)
    priorities = [float(i % 3) for i in range(60)]  # 0, 1, 2, 0, 1, 2, ...
    _fill(buffer, _vectors(60), priorities)
    kept = sorted(e.payload["i"] for e in buffer.entries.values())
    assert len(buffer) == 30
    # 20 entries of each priority; 30 evicted: all 20 zeros, then the 10 oldest ones.
    assert kept == sorted([i for i in range(60) if i % 3 == 2] + [i for i in range(30, 60) if i % 3 == 1])
    found = {e.payload["i"] for e, _ in buffer.search(_vectors(1, seed=3)[0], 60)}
    assert found == set(kept)  # evicted entries never come back from search, in either index


def test_a_priority_change_protects_an_entry_from_eviction(tmp_path):
    buffer = ExperienceBuffer(tmp_path, DIM, capacity=3)
    keys = [buffer.add(v, 1.0, {"i": i}) for i, v in enumerate(_vectors(3))]
    buffer.set_priority(keys[0], 5.0)
    buffer.add(_vectors(1, seed=4)[0], 1.0, {"i": 3})
    assert sorted(e.payload["i"] for e in buffer.entries.values()) == [0, 2, 3]


def _state(buffer: ExperienceBuffer) -> dict:
    return {k: (e.priority, e.payload, buffer.vectors[k].tobytes()) for k, e in buffer.entries.items()}


def test_replaying_the_log_after_a_crash_restores_exactly_what_was_acknowledged(tmp_path):
    buffer = ExperienceBuffer(tmp_path, DIM, capacity=50, hnsw_above=40)
    _fill(buffer, _vectors(45), [float(i % 5) for i in range(45)])
    buffer.snapshot()
    _fill(buffer, _vectors(20, seed=2), [3.0] * 20)
    buffer.set_priority(next(iter(buffer.entries)), 9.0)
    acknowledged = _state(buffer)
    buffer._wal.write('{"seq": 99999, "op": "add", "key": 7, "prio')  # killed mid-write: never acknowledged
    buffer._wal.flush()
    # No close(): the process died. A new buffer on the same folder is the restart.
    restarted = ExperienceBuffer(tmp_path, DIM, capacity=50, hnsw_above=40)
    assert _state(restarted) == acknowledged
    query = _vectors(1, seed=5)[0]
    assert [e.key for e, _ in restarted.search(query, 5)] == [e.key for e, _ in buffer.search(query, 5)]
    key = restarted.add(_vectors(1, seed=6)[0], 4.0, {"after": "restart"})  # the torn line was cut off
    again = ExperienceBuffer(tmp_path, DIM, capacity=50, hnsw_above=40)
    assert again.entries[key].payload == {"after": "restart"} and len(again) == 50
    assert (tmp_path / WAL_FILE).read_bytes().count(b"\n") == 22  # 20 adds, 1 priority, 1 after the restart


def test_a_snapshot_of_another_dimension_is_refused(tmp_path):
    buffer = ExperienceBuffer(tmp_path, DIM, capacity=5)
    _fill(buffer, _vectors(3))
    buffer.snapshot()
    with pytest.raises(ValueError, match="holds 32-d embeddings, not 16-d"):
        ExperienceBuffer(tmp_path, 16, capacity=5)


def test_a_batch_is_one_log_write_and_replays_to_the_same_state(tmp_path):
    buffer = ExperienceBuffer(tmp_path, DIM, capacity=40, hnsw_above=30)
    buffer.add_many(_vectors(25), [1.0] * 25, [{"i": i} for i in range(25)])
    keys = buffer.add_many(_vectors(30, seed=7), [float(i % 4) for i in range(30)], [{"j": j} for j in range(30)])
    assert keys == list(range(25, 55)) and len(buffer) == 40 and buffer.is_hnsw
    restarted = ExperienceBuffer(tmp_path, DIM, capacity=40, hnsw_above=30)
    assert _state(restarted) == _state(buffer)
    with pytest.raises(ValueError, match="need n embeddings of 32 values"):
        buffer.add_many(_vectors(2), [1.0], [{}, {}])


class _Crash(Exception):
    pass


def _interrupt_at(monkeypatch, step: int) -> None:
    """Crash the process at the `step`-th file-system step of a snapshot (renames, directory fsyncs, removals)."""
    from pixelis_verl.ttrl import buffer as module

    calls = {"n": 0}

    def crashing(real):
        def call(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == step:
                raise _Crash
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(module.os, "replace", crashing(module.os.replace))
    monkeypatch.setattr(module, "fsync_dir", crashing(module.fsync_dir))
    monkeypatch.setattr(module.shutil, "rmtree", crashing(module.shutil.rmtree))


@pytest.mark.parametrize("steps", [(a, b) for a in range(1, 7) for b in range(1, 7)])
def test_snapshots_interrupted_at_any_step_twice_in_a_row_lose_nothing_acknowledged(tmp_path, monkeypatch, steps):
    buffer = ExperienceBuffer(tmp_path, DIM, capacity=100)
    _fill(buffer, _vectors(10))
    buffer.snapshot()
    for round_, step in enumerate(steps, start=1):
        _fill(buffer, _vectors(10, seed=round_))
        acknowledged = _state(buffer)
        with monkeypatch.context() as patch:
            _interrupt_at(patch, step)
            try:
                buffer.snapshot()
            except _Crash:
                pass
        buffer = ExperienceBuffer(tmp_path, DIM, capacity=100)  # the restart
        assert _state(buffer) == acknowledged, f"round {round_}, interrupted at step {step}"
    assert len(buffer) == 30
