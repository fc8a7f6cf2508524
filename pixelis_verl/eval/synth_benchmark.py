"""A small synthetic benchmark in the `jsonl` adapter's format, for the CPU end-to-end run and the demo.

The synthetic pixel tasks (tiny text, colours, shapes, signs, sizes, motion, events) as request records
(`data/synth/requests.py`, the generator TTRL's synthetic stream uses too), each with its answer merged in.
"""

from __future__ import annotations

import json
from pathlib import Path

from pixelis_verl.data.synth.requests import synth_requests

FILE = "benchmark.jsonl"


def write_benchmark(root: str | Path, num: int, seed: int, kinds: list[str]) -> Path:
    """Write `root/benchmark.jsonl` (media under `root/stream/`) unless it exists; returns its path."""
    root = Path(root)
    path = root / FILE
    if path.exists():
        return path
    records = [
        {**r.record, "answer": r.answer, "metric": r.answer_metric, "category": r.kind}
        for r in synth_requests(root, num, seed, kinds)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path
