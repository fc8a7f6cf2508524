"""``coherence``: adjacent steps should follow from each other, without repeating themselves.

Each executed step is embedded from its thought (the text of the assistant turn that made the call)
and its action (the tool, the argument names, where on the image and when in the video it acted,
coarsely binned) as a hashed bag of words and word pairs: deterministic, no model, microseconds.
Adjacent steps are compared by cosine similarity and each pair scores

    +1                                   inside the band [low, high]: the next step builds on the last;
    (1 - sim) / (1 - high)               above it: nearly the same step again, credit fading to 0;
    -(low - sim) / low                   below it: unrelated steps, down to -1;
    -repeat_penalty                      the same tool with the same arguments as the step before.

The trajectory's value is the mean over its adjacent pairs, 0 with fewer than two steps. The band is
wide on purpose: coherence should catch degenerate chains (loops, random hopping), not prescribe a
style of reasoning.
"""

from __future__ import annotations

import functools
import json
import re
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from pixelis_verl.rewards.registry import ComponentParams, RewardComponent, register_component
from pixelis_verl.trajectory.parse import Trajectory
from pixelis_verl.trajectory.steps import StepRecord

_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class CoherenceParams(ComponentParams):
    low: float = 0.15  # pairs less similar than this are unrelated
    high: float = 0.85  # pairs more similar than this are near-repeats
    repeat_penalty: float = 1.0  # an identical call right after itself
    dim: int = 512  # hashed embedding size
    grid: int = 3  # regions are binned on a grid x grid layout, spans into grid parts

    def __post_init__(self) -> None:
        if not 0 < self.low < self.high < 1 or self.dim < 16 or self.grid < 1:
            raise ValueError(f"coherence: need 0 < low < high < 1, dim >= 16, grid >= 1; got {self}")


def step_words(step: StepRecord, thought: str, grid: int) -> list[str]:
    """The words a step is embedded from: its thought, then tokens naming its action."""
    words = _WORD.findall(thought.lower())
    args = step.get("args")
    action = [f"tool:{step.get('tool')}"] + [f"arg:{key}" for key in sorted(args)] if isinstance(args, dict) else []
    region = step.get("region")
    if isinstance(region, list) and len(region) == 4:
        cx, cy = (region[0] + region[2]) / 2, (region[1] + region[3]) / 2
        cell = lambda v: min(int(v * grid), grid - 1)  # noqa: E731
        area = max(region[2] - region[0], 0) * max(region[3] - region[1], 0)
        action += [f"cell:{cell(cx)},{cell(cy)}", f"area:{min(int(area * grid), grid - 1)}"]
    span = step.get("span")
    if isinstance(span, list) and len(span) == 2:
        action += [f"span:{min(int(v * grid), grid - 1)}" for v in span]
    return words + action


@functools.lru_cache(maxsize=1 << 16)
def _hashed(token: str, dim: int) -> tuple[int, float]:
    h = zlib.crc32(token.encode())
    return h % dim, 1.0 if (h >> 31) & 1 else -1.0


def embed(words: list[str], dim: int) -> np.ndarray:
    """A unit vector: signed feature hashing of words and adjacent word pairs (crc32, stable across processes)."""
    vector = np.zeros(dim)
    for token in words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]:
        index, sign = _hashed(token, dim)
        vector[index] += sign
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else vector


def same_call(a: StepRecord, b: StepRecord) -> bool:
    return a.get("tool") == b.get("tool") and _canonical(a.get("args")) == _canonical(b.get("args"))


def _canonical(args: Any) -> str:
    try:
        return json.dumps(args, sort_keys=True)
    except (TypeError, ValueError):
        return repr(args)


@register_component("coherence")
class Coherence(RewardComponent):
    params: CoherenceParams
    Params = CoherenceParams

    def pair_score(self, a: StepRecord, b: StepRecord, similarity: float) -> float:
        p = self.params
        if same_call(a, b):
            return -p.repeat_penalty
        if similarity < p.low:
            return -(p.low - similarity) / p.low
        if similarity > p.high:
            return (1.0 - similarity) / (1.0 - p.high)
        return 1.0

    async def score(self, trajectory: Trajectory) -> float:
        steps = trajectory.steps
        if len(steps) < 2:
            return 0.0
        p = self.params
        thoughts = trajectory.step_thoughts()
        vectors = [embed(step_words(s, t, p.grid), p.dim) for s, t in zip(steps, thoughts, strict=True)]
        scores = [
            self.pair_score(steps[i], steps[i + 1], float(vectors[i] @ vectors[i + 1])) for i in range(len(steps) - 1)
        ]
        return float(np.mean(scores))
