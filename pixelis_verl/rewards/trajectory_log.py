"""Trajectory records on disk: what a run's sampled (in evaluation: every) trajectory did, for reports and viewer.

verl's own dumps keep decoded text only (the v1 trainer's rollout dump has no reward info at all), so the
reward manager, which sees every trajectory of RFT, TTRL and evaluation runs, writes one JSON line per
logged trajectory to ``<dir>/<host>-<pid>.jsonl`` (one file per reward worker: no interleaved writes).
``pixelis.trajectories`` configures it: ``dir`` (null: off) and ``every`` (log every k-th trajectory a
worker scores; 1 in evaluation).

A record (`TrajectoryRecord`) holds the row's identity (``item``: its extra_info without the tools' media),
the answer and ground truth, every reward component, the parsed assistant turns (thought, tool calls as
written), the tools' step records (without the observation features), response tokens, wall seconds, and
``media``: how to find the question's source images and video again, so the viewer can replay the calls on
the same pixels. Source images a row carries as bytes are stored once, content-addressed, under
``<dir>/media/<sha1>.img``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from pixelis_verl.trajectory.parse import Trajectory
from pixelis_verl.trajectory.steps import GROUP_KEY, SECONDS_KEY, STEPS_KEY

MEDIA_DIR = "media"
# What the agent loop and tools added to the row's extra_info (kept elsewhere in the record, or not needed there).
_NOT_ITEM = {"tools_kwargs", STEPS_KEY, GROUP_KEY, SECONDS_KEY, "turn_scores", "tool_rewards"}
_STEP_FIELDS = (
    "tool",
    "args",
    "ok",
    "error",
    "error_kind",
    "latency_ms",
    "image_index",
    "box_source",
    "region",
    "span",
)


def _stored(source: dict[str, Any], root: Path) -> dict[str, Any]:
    """A source image entry as a path: bytes are written once under `root/media/` (named by their hash)."""
    data = source.get("bytes")
    if not isinstance(data, bytes):
        return {"path": source.get("path")}
    name = f"{MEDIA_DIR}/{hashlib.sha1(data).hexdigest()}.img"  # PNG or JPEG, as the row had it
    target = root / name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(data)
        os.replace(partial, target)
    return {"stored": name}


def media_record(extra_info: dict[str, Any], root: Path) -> dict[str, Any]:
    """Where the row's source images and video are: stored copies (``stored``, under `root`) or paths under the
    tools' data root (``path``)."""
    pixelis = ((extra_info.get("tools_kwargs") or {}).get("pixelis")) or {}
    return {
        "source_images": [_stored(s, root) for s in pixelis.get("source_images") or [] if isinstance(s, dict)],
        "video": pixelis.get("video"),
        "shown_max_pixels": extra_info.get("shown_max_pixels"),
    }


def trajectory_record(trajectory: Trajectory, info: dict[str, Any], root: Path, data_source: str) -> dict[str, Any]:
    """One JSON-able record of a scored trajectory; `info` is the reward manager's extra info for it."""
    extra = trajectory.extra_info
    item = {k: v for k, v in extra.items() if k not in _NOT_ITEM}
    item = json.loads(json.dumps(item, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
    seconds = extra.get(SECONDS_KEY)
    return {
        "data_source": data_source,
        "item": item,
        "ground_truth": trajectory.ground_truth,
        "pred": trajectory.pred,
        "info": {k: v for k, v in info.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
        "turns": [
            {
                "thought": turn.thought,
                "calls": [{"name": c.name, "arguments": c.arguments, "well_formed": c.well_formed} for c in turn.calls],
            }
            for turn in trajectory.turns
        ],  # fmt: skip
        "steps": [{k: step.get(k) for k in _STEP_FIELDS} for step in trajectory.steps],
        "response_tokens": trajectory.response_tokens,
        "seconds": float(seconds) if isinstance(seconds, (int, float)) else None,
        "media": media_record(extra, root),
        "time": time.time(),
    }


class TrajectoryLog:
    """Appends every `every`-th scored trajectory of this process to `<dir>/<host>-<pid>.jsonl`."""

    def __init__(self, directory: str | Path, every: int):
        if every < 1:
            raise ValueError(f"pixelis.trajectories.every must be >= 1; got {every}")
        self.root = Path(directory)
        self.every = every
        self.seen = 0

    def maybe_write(self, trajectory: Trajectory, info: dict[str, Any], data_source: str) -> None:
        self.seen += 1
        if (self.seen - 1) % self.every:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        record = trajectory_record(trajectory, info, self.root, data_source)
        with open(self.root / f"{socket.gethostname()}-{os.getpid()}.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_trajectories(directory: str | Path) -> list[dict[str, Any]]:
    """Every record under `directory`, oldest first; a torn last line (a killed worker) is skipped."""
    records = []
    for path in sorted(Path(directory).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return sorted(records, key=lambda r: r.get("time", 0.0))
