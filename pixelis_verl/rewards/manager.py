"""``PixelisRewardManager``: the CC-RFT dual reward as a verl 0.9.1 reward-loop manager (registered as ``pixelis``).

Selected with ``reward.reward_manager.name=pixelis`` (``conf/reward/pixelis.yaml``). verl's reward
workers call `run_single` on each trajectory as it finishes, with a one-row ``DataProto`` holding the
response tokens and the row's non-tensor fields; ``tool_extra_fields`` carries what our agent loop
and tools recorded (step records, group figures). The manager decodes the response, parses it into a
`Trajectory`, asks every configured component (``pixelis.reward.components``, see
``pixelis_verl.rewards.registry``) for its value and returns

    reward_score = sum(weight * value)  (each value optionally normalised by its running mean and std)

with ``reward_extra_info`` holding every component's raw value, the tool-call, pixel-op, invalid,
malformed and unexecuted call counts, ``acc`` and ``pred`` (so verl's validation logs ``maj@N``).
With ``pixelis.trajectories.dir`` set, every ``every``-th trajectory is also written to disk
(``pixelis_verl.rewards.trajectory_log``) for evaluation reports and the trajectory viewer.
Nothing a model can write makes it raise: a component that fails is logged with its traceback,
scores 0 and is counted in ``component_errors``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

# Importing a component module registers it.
from pixelis_verl.rewards import (  # noqa: F401
    accuracy,
    coherence,
    curiosity,
    efficiency,
    pixel_reasoner,
    tool_bonus,
    validity,
)
from pixelis_verl.rewards.registry import REWARD_COMPONENTS, RewardComponent
from pixelis_verl.rewards.trajectory_log import TrajectoryLog
from pixelis_verl.trajectory.parse import Trajectory, item_trajectory
from pixelis_verl.typed_config import from_dict

logger = logging.getLogger(__name__)

COMPONENTS_KEY = "pixelis.reward.components"
_MANAGER_KEYS = {"weight", "normalize"}


class RunningNorm:
    """Welford mean and variance; `__call__` adds a value and returns it standardised (0 until two are seen)."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def __call__(self, value: float) -> float:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)
        if self.count < 2:
            return 0.0
        return (value - self.mean) / max(math.sqrt(self.m2 / (self.count - 1)), 1e-6)


@dataclass
class WeightedComponent:
    component: RewardComponent
    weight: float
    norm: RunningNorm | None


def build_components(config: DictConfig) -> list[WeightedComponent]:
    """The components ``pixelis.reward.components`` names, in order; a bad entry raises naming its key."""
    entries = OmegaConf.select(config, COMPONENTS_KEY, default=None)
    if entries is None:
        raise ValueError(f"{COMPONENTS_KEY} is not set; compose conf/reward/pixelis.yaml (reward: pixelis)")
    built = []
    for name, entry in OmegaConf.to_container(entries, resolve=True).items():
        if entry is None:  # `pixelis.reward.components.curiosity=null` removes a component
            continue
        where = f"{COMPONENTS_KEY}.{name}"
        if name not in REWARD_COMPONENTS:
            raise ValueError(f"{where}: no such reward component; registered: {sorted(REWARD_COMPONENTS)}")
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a mapping with weight and parameters; got {entry!r}")
        weight = entry.get("weight", 1.0)
        if not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise ValueError(f"{where}.weight: expected a number; got {weight!r}")
        cls = REWARD_COMPONENTS[name]
        params = from_dict(cls.Params, {k: v for k, v in entry.items() if k not in _MANAGER_KEYS}, where)
        norm = RunningNorm() if entry.get("normalize", False) else None
        built.append(WeightedComponent(cls(params, config), float(weight), norm))
    return built


def trajectory_counts(trajectory: Trajectory) -> dict[str, float]:
    """What the trajectory did, logged next to the components."""
    return {
        "tool_calls": float(len(trajectory.calls)),
        "pixel_ops": float(trajectory.pixel_ops),
        "uses_pixel_ops": float(trajectory.uses_pixel_ops),
        "invalid_calls": float(trajectory.invalid_calls),
        "malformed_calls": float(trajectory.malformed_calls),
        "truncated_calls": float(trajectory.truncated_calls),
        "unexecuted_calls": float(trajectory.unexecuted_calls),
        "has_answer": float(trajectory.pred is not None),
        "group_pixel_op_rate": trajectory.group_pixel_op_rate,
    }


@register("pixelis")
class PixelisRewardManager(RewardManagerBase):
    def __init__(
        self,
        config: DictConfig,
        tokenizer: Any,
        compute_score: Any = None,
        reward_router_address: str | None = None,
        reward_model_tokenizer: Any = None,
    ):
        super().__init__(config, tokenizer, compute_score)
        if OmegaConf.select(config, "reward.custom_reward_function.path", default=None):
            raise ValueError(
                "reward.custom_reward_function.path is set, but the pixelis reward manager scores answers with its "
                f"accuracy component ({COMPONENTS_KEY}.accuracy); unset it"
            )
        self.components = build_components(config)
        self.max_response_tokens = int(OmegaConf.select(config, "data.max_response_length", default=0) or 0)
        log = OmegaConf.select(config, "pixelis.trajectories", default=None)
        self.log = TrajectoryLog(log.dir, int(log.every)) if log is not None and log.get("dir") else None

    async def score_trajectory(self, trajectory: Trajectory) -> dict[str, Any]:
        """The reward and its extra info for a parsed trajectory."""
        info: dict[str, Any] = {}
        total, errors = 0.0, 0
        for entry in self.components:
            name = entry.component.name
            try:
                value = float(await entry.component.score(trajectory))
                if not math.isfinite(value):
                    raise ValueError(f"non-finite value {value}")
            except Exception:
                logger.exception("reward component %s failed; it scores 0 for this trajectory", name)
                value, errors = 0.0, errors + 1
            info[name] = value
            total += entry.weight * (entry.norm(value) if entry.norm else value)
        info.update(trajectory_counts(trajectory))
        info.update(score=total, acc=info.get("accuracy", 0.0), pred=trajectory.pred or "", component_errors=errors)
        return {"reward_score": total, "reward_extra_info": info}

    async def run_single(self, data: DataProto) -> dict[str, Any]:
        item = data[-1:][0]  # multi-output agent loops: the reward is the last output's
        trajectory = await self.loop.run_in_executor(
            None, item_trajectory, item, self.tokenizer, self.max_response_tokens
        )
        result = await self.score_trajectory(trajectory)
        if self.log is not None:
            source = str(item.non_tensor_batch.get("data_source", ""))
            await self.loop.run_in_executor(None, self.log.maybe_write, trajectory, result["reward_extra_info"], source)
        return result
