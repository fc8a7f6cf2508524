"""The experience buffer: past trajectories found by embedding similarity, bounded, and crash-safe.

Entries are (embedding, priority, payload): the embedding of a request (the policy's pooled hidden states for
question + image, or a configured encoder's), a priority (how much the entry is worth keeping) and what the
vote and the exemplars need (answer, action sequence, success, length). Search is cosine similarity by
FAISS inner product over L2-normalised embeddings: an exact flat index while the buffer is small, an HNSW
graph above `hnsw_above` entries (approximate, ~log n per query). HNSW cannot delete, so evicted entries are
filtered out of its results and the graph is rebuilt once they are a quarter of it.

At capacity the entry with the lowest priority (the oldest among equals) is evicted. Durability: every
change is appended to a write-ahead log and fsynced before the call returns, so what a call acknowledged
survives a crash; `snapshot()` writes the whole state into a new folder named by the log's sequence number
(files and folder fsynced, then renamed into place and the parent fsynced), and only then drops older snapshots
and starts a new log. At every step a complete snapshot and a log covering everything after it are on disk, so
interruptions at any point, repeated, lose nothing acknowledged. A restart loads the newest complete snapshot
and replays the log after it; a torn last line (the crash hit mid-write, the call never returned) is cut.
Eviction is a function of the state, so replay re-derives it and the log records only additions and priority
changes.
"""

from __future__ import annotations

import base64
import contextlib
import heapq
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from pixelis_verl.ttrl.durable import append_lines, fsync_dir, make_dirs, open_append, read_records, sync_file

WAL_FILE = "wal.jsonl"
SNAPSHOT_DIR = "snapshot"  # snapshots are SNAPSHOT_DIR-<seq>; a plain SNAPSHOT_DIR (and .old) is an older layout
REBUILD_DELETED_FRACTION = 0.25  # rebuild the HNSW graph once this share of it is evicted entries


@dataclass
class Experience:
    key: int
    priority: float
    payload: dict[str, Any]


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """FAISS on one OpenMP thread: a single query gains nothing from more, and waiting for them made the p99
    several times the median (benchmarks/ttrl.py); bulk adds keep every thread."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, vectors.shape[-1])
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class ExperienceBuffer:
    def __init__(
        self,
        root: str | Path,
        dim: int,
        capacity: int,
        hnsw_above: int = 50_000,
        hnsw_m: int = 32,
        ef_search: int = 256,
    ):
        if capacity < 1 or dim < 1:
            raise ValueError(f"ttrl.buffer: capacity and dim must be >= 1; got {capacity}, {dim}")
        self.root, self.dim, self.capacity = Path(root), dim, capacity
        self.hnsw_above, self.hnsw_m, self.ef_search = hnsw_above, hnsw_m, ef_search
        make_dirs(self.root)
        self.entries: dict[int, Experience] = {}
        self.vectors: dict[int, np.ndarray] = {}
        self._heap: list[tuple[float, int]] = []  # (priority, key); stale after a priority change, skipped
        self._deleted: set[int] = set()  # evicted but still in the HNSW graph
        self.next_key, self.seq = 0, 0
        self._hnsw = False
        self._index = self._new_index(hnsw=False)
        self._restore()
        self._wal = open_append(self.root / WAL_FILE)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def is_hnsw(self) -> bool:
        return self._hnsw

    # -- changes (logged) ---------------------------------------------------------------------------------
    def add(self, embedding: np.ndarray, priority: float, payload: dict[str, Any]) -> int:
        """Store an experience; returns its key once the change is durable."""
        return self.add_many(np.asarray(embedding)[None], [priority], [payload])[0]

    def add_many(self, embeddings: np.ndarray, priorities: list[float], payloads: list[dict[str, Any]]) -> list[int]:
        """Store a batch (one log write and one fsync for all); returns the keys once the batch is durable."""
        vectors = normalise(np.asarray(embeddings))
        if vectors.shape[1] != self.dim or not len(vectors) == len(priorities) == len(payloads):
            raise ValueError(
                f"ttrl.buffer: need n embeddings of {self.dim} values and n priorities and payloads; got "
                f"{vectors.shape}, {len(priorities)}, {len(payloads)}"
            )
        keys = list(range(self.next_key, self.next_key + len(vectors)))
        batch = list(zip(keys, vectors, priorities, payloads, strict=True))
        self._log([
            {"op": "add", "batch": keys[0], "key": key, "priority": float(priority), "payload": payload,
             "embedding": base64.b64encode(vector.tobytes()).decode()}
            for key, vector, priority, payload in batch
        ])  # fmt: skip
        self._apply_adds([(key, vector, float(priority), payload) for key, vector, priority, payload in batch])
        return keys

    def set_priority(self, key: int, priority: float) -> None:
        if key not in self.entries:
            return
        self._log([{"op": "priority", "key": key, "priority": float(priority)}])
        self._apply_priority(key, float(priority))

    def _log(self, records: list[dict[str, Any]]) -> None:
        lines = []
        for record in records:
            self.seq += 1
            lines.append(json.dumps({"seq": self.seq, **record}) + "\n")
        append_lines(self._wal, lines)

    def _apply_adds(self, items: list[tuple[int, np.ndarray, float, dict[str, Any]]]) -> None:
        """Add a batch; the index takes it in one call (FAISS builds HNSW in parallel), then evict to capacity.

        Evicting after the batch keeps the same entries as evicting after each item: either way the buffer
        ends with the `capacity` best entries by (priority, then newer) of all it has seen.
        """
        for key, vector, priority, payload in items:
            self.next_key = max(self.next_key, key + 1)
            self.entries[key] = Experience(key, priority, payload)
            self.vectors[key] = vector
            heapq.heappush(self._heap, (priority, key))
        if not self._hnsw and len(self.entries) > self.hnsw_above:
            self._rebuild(hnsw=True)
        elif items:
            keys = np.array([item[0] for item in items], dtype=np.int64)
            self._index.add_with_ids(np.stack([item[1] for item in items]), keys)
        while len(self.entries) > self.capacity:
            self._evict_one()

    def _apply_priority(self, key: int, priority: float) -> None:
        self.entries[key].priority = priority
        heapq.heappush(self._heap, (priority, key))

    def _evict_one(self) -> None:
        while True:
            priority, key = heapq.heappop(self._heap)
            entry = self.entries.get(key)
            if entry is not None and entry.priority == priority:
                break
        del self.entries[key], self.vectors[key]
        if self.is_hnsw:
            self._deleted.add(key)
            if len(self._deleted) > REBUILD_DELETED_FRACTION * self._index.ntotal:
                self._rebuild(hnsw=True)
        else:
            self._index.remove_ids(np.array([key], dtype=np.int64))

    # -- search ---------------------------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int) -> list[tuple[Experience, float]]:
        """The `k` most similar experiences to `query` (cosine similarity), best first."""
        if not self.entries:
            return []
        found = min(self._index.ntotal, k + len(self._deleted))
        with _one_thread():
            scores, keys = self._index.search(normalise(np.asarray(query)), found)
        hits = [(self.entries[int(key)], float(s)) for s, key in zip(scores[0], keys[0], strict=True)
                if int(key) in self.entries]  # fmt: skip
        return hits[:k]

    # -- index ----------------------------------------------------------------------------------------------
    def _new_index(self, hnsw: bool) -> faiss.IndexIDMap2:
        if hnsw:
            graph = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efSearch = self.ef_search
            return faiss.IndexIDMap2(graph)
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _rebuild(self, hnsw: bool) -> None:
        self._hnsw = hnsw
        self._index = self._new_index(hnsw)
        self._deleted.clear()
        if self.vectors:
            keys = np.fromiter(self.vectors, dtype=np.int64, count=len(self.vectors))
            self._index.add_with_ids(np.stack([self.vectors[int(k)] for k in keys]), keys)

    # -- durability -----------------------------------------------------------------------------------------
    def snapshot(self) -> None:
        """Write the whole state durably into a new snapshot, then drop older ones and start a new log."""
        final = self.root / f"{SNAPSHOT_DIR}-{self.seq:012d}"
        if not final.exists():  # the same sequence number is the same state
            tmp = final.with_name(final.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            keys = list(self.entries)
            vectors = np.stack([self.vectors[k] for k in keys]) if keys else np.zeros((0, self.dim))
            with (tmp / "embeddings.npy").open("wb") as out:
                np.save(out, vectors)
                sync_file(out)
            with (tmp / "entries.jsonl").open("w", encoding="utf-8") as out:
                for key in keys:
                    entry = self.entries[key]
                    out.write(json.dumps({"key": key, "priority": entry.priority, "payload": entry.payload}) + "\n")
                sync_file(out)
            with (tmp / "state.json").open("w", encoding="utf-8") as out:
                out.write(json.dumps({"seq": self.seq, "next_key": self.next_key, "dim": self.dim}))
                sync_file(out)
            fsync_dir(tmp)
            os.replace(tmp, final)
            fsync_dir(self.root)
        for older in self._snapshots():
            if older != final:
                shutil.rmtree(older, ignore_errors=True)
        self._wal.close()
        self._wal = (self.root / WAL_FILE).open("w", encoding="utf-8")  # everything up to seq is in the snapshot

    def _snapshots(self) -> list[Path]:
        """Complete snapshot folders, newest first (the older layout's folders last)."""
        found = sorted(p for p in self.root.glob(f"{SNAPSHOT_DIR}-*") if p.is_dir() and not p.name.endswith(".tmp"))
        legacy = [self.root / SNAPSHOT_DIR, self.root / (SNAPSHOT_DIR + ".old")]
        return found[::-1] + [p for p in legacy if p.is_dir()]

    def _restore(self) -> None:
        for tmp in self.root.glob(f"{SNAPSHOT_DIR}-*.tmp"):  # interrupted before its rename: never complete
            shutil.rmtree(tmp, ignore_errors=True)
        snapshots = self._snapshots()
        if snapshots:
            snapshot = snapshots[0]
            state = json.loads((snapshot / "state.json").read_text())
            if state["dim"] != self.dim:
                raise ValueError(f"ttrl.buffer: {snapshot} holds {state['dim']}-d embeddings, not {self.dim}-d")
            vectors = np.load(snapshot / "embeddings.npy").astype(np.float32)
            records = [json.loads(line) for line in (snapshot / "entries.jsonl").read_text().splitlines()]
            self._apply_adds(
                [(r["key"], v, r["priority"], r["payload"]) for v, r in zip(vectors, records, strict=True)]
            )
            self.seq, self.next_key = state["seq"], state["next_key"]
        pending: list[tuple[int, np.ndarray, float, dict[str, Any]]] = []  # the current batch of adds
        batch = None
        for record in read_records(self.root / WAL_FILE):
            if record["seq"] <= self.seq:
                continue
            self.seq = record["seq"]
            if record["op"] != "add" or record["batch"] != batch:
                self._apply_adds(pending)
                pending, batch = [], record.get("batch")
            if record["op"] == "add":
                vector = np.frombuffer(base64.b64decode(record["embedding"]), dtype=np.float32).copy()
                pending.append((record["key"], vector, record["priority"], record["payload"]))
            elif record["key"] in self.entries:
                self._apply_priority(record["key"], record["priority"])
        self._apply_adds(pending)

    def close(self) -> None:
        self._wal.close()
