"""``curiosity``: prediction-error curiosity over a trajectory's pixel operations.

A transition is one executed tool call that returned an image: from the feature of the image it
acted on (the question image, a crop, a frame; zeros for a whole video) and the action (which tool,
the region as fractions of the image, the video span as fractions of the video) to the feature of
what came back. The dynamics model (``pixelis_verl.rewards.dynamics``) predicts the latter from the
former; the step's curiosity is its squared error times ``scale``, clipped to ``clip``, and the
trajectory's is the mean over its transitions (the mean, not the sum: more calls do not earn more).
A trajectory with no such transition scores 0, so the drive rewards looking, the way the paper's
curiosity does, and fades for operations whose outcome the model has learned to predict, so it
cannot be farmed by repeating one zoom. Text-only results (read_text, get_properties) have no image
to predict and are not transitions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray
from omegaconf import DictConfig

from pixelis_verl.rewards.dynamics import actor_name, curiosity_actor, local_model
from pixelis_verl.rewards.registry import ComponentParams, RewardComponent, register_component
from pixelis_verl.trajectory.parse import Trajectory
from pixelis_verl.trajectory.steps import OBSERVATION_DIM, StepRecord

PIXEL_TOOLS = ["zoom_in", "segment_object_at", "get_properties", "read_text", "track_object", "select_frames"]
# Tools that are another name for a pixel tool's operation share its slot: the dynamics model predicts what the
# operation returns, whatever the model calls it (Qwen3-VL's own zoom is zoom_in's crop, tools/zoom.py; a name,
# not an import: reward workers load this module while the plugin is still importing the tools).
ALIASES = {"image_zoom_in_tool": "zoom_in"}


@dataclass
class CuriosityParams(ComponentParams):
    tools: list[str] = field(default_factory=lambda: list(PIXEL_TOOLS))  # the action one-hot; others share a slot
    scale: float = 20.0  # curiosity of a step = min(scale * MSE, clip); features lie in [0, 1]
    clip: float = 1.0
    hidden: int = 64  # dynamics model: hidden units
    lr: float = 1.0e-3  # dynamics model: Adam learning rate
    updates: int = 1  # dynamics model: gradient steps per scored trajectory
    seed: int = 0
    # actor: one named Ray actor per run, shared by all reward workers (per process when Ray is not running);
    # local: one model per process
    backend: str = "actor"

    def __post_init__(self) -> None:
        if self.backend not in ("actor", "local"):
            raise ValueError(f"curiosity.backend must be 'actor' or 'local'; got {self.backend!r}")
        if self.scale <= 0 or self.clip <= 0 or self.hidden < 1 or self.lr <= 0 or self.updates < 0:
            raise ValueError(f"curiosity: need scale, clip, hidden, lr > 0 and updates >= 0; got {self}")


def action_dim(tools: list[str]) -> int:
    return OBSERVATION_DIM + 1 + len(tools) + 1 + 4 + 1 + 2 + 1


def encode_transition(step: StepRecord, tools: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """(input, target) for one step, or None when the step returned no image."""
    observation = _floats(step.get("observation"), OBSERVATION_DIM)
    if not step.get("ok") or observation is None:
        return None
    state = _floats(step.get("input_observation"), OBSERVATION_DIM)
    region, span = _floats(step.get("region"), 4), _floats(step.get("span"), 2)
    tool = np.zeros(len(tools) + 1)
    name = ALIASES.get(step.get("tool"), step.get("tool"))
    tool[tools.index(name) if name in tools else len(tools)] = 1.0
    x = np.concatenate(
        [
            state or [0.0] * OBSERVATION_DIM,
            [float(state is not None)],
            tool,
            region or [0.0] * 4,
            [float(region is not None)],
            span or [0.0] * 2,
            [float(span is not None)],
        ]
    )
    return x, np.asarray(observation)


def _floats(value: Any, size: int) -> list[float] | None:
    """`value` as `size` finite floats, or None (a missing or malformed record field)."""
    try:
        values = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return values if len(values) == size and all(np.isfinite(values)) else None


class Batcher:
    """Concurrent requests, one model call: while a call runs requests queue, and the next call takes them all.

    A reward worker scores many trajectories concurrently (verl gathers them on one event loop), and a
    dynamics-model step costs about the same for one transition as for a hundred; batching makes the
    per-trajectory cost of curiosity a small fraction of a millisecond without adding latency when idle.
    """

    def __init__(self, call: Callable[[np.ndarray, np.ndarray], Awaitable[list[float]]]):
        self.call = call
        self.pending: list[tuple[np.ndarray, np.ndarray, asyncio.Future]] = []
        self.running = False

    async def __call__(self, inputs: np.ndarray, targets: np.ndarray) -> list[float]:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((inputs, targets, future))
        if not self.running:
            self.running = True
            try:
                while self.pending:
                    batch, self.pending = self.pending, []
                    await self._serve(batch)
            finally:
                self.running = False
        return await future

    async def _serve(self, batch: list[tuple[np.ndarray, np.ndarray, asyncio.Future]]) -> None:
        try:
            errors = await self.call(np.concatenate([x for x, _, _ in batch]), np.concatenate([y for _, y, _ in batch]))
        except Exception as e:  # every waiter learns of the failure; the manager logs it and scores 0
            for _, _, future in batch:
                future.set_exception(e)
            return
        start = 0
        for x, _, future in batch:
            future.set_result(errors[start : start + len(x)])
            start += len(x)


@register_component("curiosity")
class Curiosity(RewardComponent):
    params: CuriosityParams
    Params = CuriosityParams

    def __init__(self, params: CuriosityParams, config: DictConfig):
        super().__init__(params, config)
        self.config = config
        self.input_dim = action_dim(params.tools)
        self.model_name = actor_name(config)
        self._model: Any = None
        self._batcher = Batcher(self._score_and_learn)

    def model_kwargs(self) -> dict[str, Any]:
        p = self.params
        return {"hidden": p.hidden, "lr": p.lr, "updates": p.updates, "seed": p.seed}

    async def _score_and_learn(self, inputs: np.ndarray, targets: np.ndarray) -> list[float]:
        if self.params.backend == "local" or not ray.is_initialized():  # outside Ray (a script): no actor to share
            model = local_model(self.model_name, self.input_dim, **self.model_kwargs())
            return await asyncio.to_thread(model.score_and_learn, inputs, targets)
        if self._model is None:
            self._model = curiosity_actor(self.config, self.input_dim, **self.model_kwargs())
        return await self._model.score_and_learn.remote(inputs, targets)

    async def score(self, trajectory: Trajectory) -> float:
        pairs = [t for t in (encode_transition(step, self.params.tools) for step in trajectory.steps) if t is not None]
        if not pairs:
            return 0.0
        errors = await self._batcher(np.stack([x for x, _ in pairs]), np.stack([y for _, y in pairs]))
        return float(np.mean([min(self.params.scale * e, self.params.clip) for e in errors]))
