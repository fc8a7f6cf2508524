"""Mixing trace sets by weight into deduplicated train/val splits.

Each source gets a share `weight / sum(weights)` of the fused set. Without a total, the fused set is the
largest one that keeps the shares without repeating a trace (the scarcest source, relative to its share,
is used whole); with `total`, each source contributes `round(total * share)` traces, at most all it has.
Traces are drawn at random (seeded). Duplicates, the same question image (by content hash) asked the same
question (case and spacing ignored), are dropped before drawing, across sources too: the first source
listed keeps its copy. A trace goes to val by a hash of that same key, so a question never sits in both
splits, and adding sources does not move existing traces between splits.

The training split is divided once more, by another part of the same hash: a share `rl_fraction` of its
questions become RL prompts and the rest SFT traces, never both. RL on the questions the policy was just
imitated on finds most GRPO groups uniformly right, and a group whose rollouts all score the same has zero
advantage: the step learns nothing from it (DeepEyes and Pixel-Reasoner train RL on data of its own).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pixelis_verl.data.cota import Trace, TraceSet


@dataclass
class FuseReport:
    taken: dict[str, int] = field(default_factory=dict)  # source -> traces drawn
    duplicates: dict[str, int] = field(default_factory=dict)  # source -> traces dropped as duplicates
    train: int = 0  # SFT training traces
    rl_train: int = 0  # RL training prompts (questions not among the SFT traces)
    val: int = 0

    def summary(self) -> str:
        parts = [f"{s}: {n} (duplicates dropped {self.duplicates.get(s, 0)})" for s, n in self.taken.items()]
        return f"train {self.train}, rl_train {self.rl_train}, val {self.val}; " + "; ".join(parts)


@dataclass
class Fused:
    """The fused set's splits; each item is (trace, the root of the set it came from)."""

    train: list[tuple[Trace, Path]]  # SFT
    rl_train: list[tuple[Trace, Path]]  # RL prompts: other questions than `train`
    val: list[tuple[Trace, Path]]  # held out from both
    report: FuseReport


def dedup_key(trace: Trace, root: Path) -> str:
    digest = hashlib.sha1()
    for path in trace.images:
        digest.update((root / path).read_bytes())
    digest.update(re.sub(r"\s+", " ", trace.question.strip().lower()).encode())
    return digest.hexdigest()


def _share(key: str, part: int) -> float:
    """Where `key` falls in [0, 1], from its `part`-th 8 hex digits (independent parts for independent splits)."""
    return int(key[8 * part : 8 * part + 8], 16) / 0xFFFFFFFF


def fuse(
    sources: list[tuple[TraceSet, float]],
    val_fraction: float,
    seed: int = 0,
    total: int | None = None,
    rl_fraction: float = 0.0,
) -> Fused:
    if not sources or any(weight <= 0 for _, weight in sources):
        raise ValueError("fuse needs at least one source, each with a weight > 0")
    if not 0 <= val_fraction < 1 or not 0 <= rl_fraction < 1:
        raise ValueError(f"val and RL fractions must be in [0, 1); got {val_fraction} and {rl_fraction}")
    seen: set[str] = set()
    pools: list[list[tuple[Trace, Path, str]]] = []
    report = FuseReport()
    for traces, _ in sources:
        pool = []
        for trace in traces.traces():
            key = dedup_key(trace, traces.root)
            if key in seen:
                report.duplicates[str(traces.root)] = report.duplicates.get(str(traces.root), 0) + 1
                continue
            seen.add(key)
            pool.append((trace, traces.root, key))
        pools.append(pool)
    shares = np.array([weight for _, weight in sources], dtype=float)
    shares /= shares.sum()
    if total is None:
        total = int(min(len(pool) / share for pool, share in zip(pools, shares, strict=True)))
    rng = np.random.default_rng(seed)
    train, rl_train, val = [], [], []
    for (traces, _), pool, share in zip(sources, pools, shares, strict=True):
        count = min(len(pool), round(total * share))
        for i in sorted(rng.choice(len(pool), size=count, replace=False)):
            trace, root, key = pool[i]
            split = val if _share(key, 0) < val_fraction else rl_train if _share(key, 1) < rl_fraction else train
            split.append((trace, root))
        report.taken[str(traces.root)] = count
    report.train, report.rl_train, report.val = len(train), len(rl_train), len(val)
    return Fused(train, rl_train, val, report)
