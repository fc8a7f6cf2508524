"""A small synthetic benchmark in the `jsonl` adapter's format, for the CPU end-to-end run and the demo.

The synthetic pixel tasks (tiny text, colours, shapes, signs, sizes, motion, events) as request records
(`data/synth/requests.py`, the generator TTRL's synthetic stream uses too), each with its answer merged in. And
the same tasks as items in the shapes the public benchmarks ask them (multiple choice, counts, numbers), which the
rehearsal writes in each public benchmark's layout.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from pixelis_verl.data.synth.requests import MEDIA_DIR, synth_requests
from pixelis_verl.data.synth.scenes import generate_scene
from pixelis_verl.data.synth.zoom_tasks import COLOURS, SHAPES
from pixelis_verl.eval.items import BenchmarkItem, write_json
from pixelis_verl.ops.track import DIRECTIONS

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
    write_json(path, records, lines=True)
    return path


PUBLIC_KINDS = ["text", "colour", "shape", "sign", "motion", "event"]  # one request each
CHOICES = {
    "colour": tuple(COLOURS),
    "shape": SHAPES,
    "motion": DIRECTIONS,
}  # kinds also asked as choices


def public_items(root: str | Path, seed: int, num_options: int = 4, num_counts: int = 2) -> list[BenchmarkItem]:
    """The synthetic tasks in each shape the public benchmarks' layouts hold, media under `root`, for rehearsing
    their recipes (each adapter's `export` writes the ones its layout holds): every kind of `PUBLIC_KINDS` as its
    open question (exact; ANLS for signs); colours, shapes and directions again as multiple choice among
    `num_options` words of their vocabulary; the event's frame number as a numerical answer (MRA, as VSI-Bench
    scores numbers); and counting questions (how many shapes a scene holds, as TallyQA asks)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    items = []
    for request in synth_requests(root, len(PUBLIC_KINDS), seed, PUBLIC_KINDS):
        record, kind = request.record, request.kind
        video = root / record["video"] if "video" in record else None
        item = BenchmarkItem(record["id"], record["question"], request.answer, request.answer_metric,
                             [root / p for p in record.get("images", [])], video, category=kind)  # fmt: skip
        items.append(item)
        if kind in CHOICES:
            wrong = rng.choice([w for w in CHOICES[kind] if w != request.answer], num_options - 1, replace=False)
            options = [request.answer, *(str(w) for w in wrong)]
            rng.shuffle(options)
            letter = chr(ord("A") + options.index(request.answer))
            items.append(replace(item, id=f"{item.id}-choice", answer=letter, metric="choice", options=options))
        if kind == "event":
            items.append(replace(item, id=f"{item.id}-number", metric="mra"))
    for index in range(num_counts):
        scene = generate_scene(seed, index)
        image = root / MEDIA_DIR / f"count-{index:05d}.png"
        scene.image.save(image)
        question = "How many shapes are in the image? Answer with a number."
        items.append(BenchmarkItem(f"count-{index:05d}", question, str(len(scene.objects)), "exact", [image],
                                   category="count"))  # fmt: skip
    return items
