"""Reward components in verl's step metrics: a replay buffer that reports what it hands the trainer.

verl 0.9.1's v1 trainer logs ``reward_extra_info`` only in validation and rollout dumps, so a run's
metrics would show the total reward but not its curiosity, coherence or tool-call rate. Its sampler
is pluggable (``trainer.v1.sampler.custom_sampler``) and returns metrics with every batch it
samples, which the trainer logs with the step; `RewardMetricsReplayBuffer` is verl's sync
``ReplayBuffer`` that adds, for each numeric key of the batch's ``reward_extra_info``, its mean over
the batch as ``pixelis_reward/<key>/mean``. Sync mode only (our recipes); verl passes custom
samplers no DAPO group-filter settings, so ``algorithm.filter_groups`` does not combine with it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import transfer_queue as tq
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

METRIC_PREFIX = "pixelis_reward"


def reward_metrics(infos: list[dict[str, Any]]) -> dict[str, float]:
    """Mean over trajectories of every numeric (or boolean) reward_extra_info key."""
    values: dict[str, list[float]] = defaultdict(list)
    for info in infos:
        for key, value in info.items():
            if isinstance(value, (bool, int, float, np.number)) and np.isfinite(value):
                values[key].append(float(value))
    return {f"{METRIC_PREFIX}/{key}/mean": float(np.mean(v)) for key, v in sorted(values.items())}


class RewardMetricsReplayBuffer(ReplayBuffer):
    def __init__(self, **kwargs: Any):
        if kwargs.get("trainer_mode") != "sync":
            raise ValueError(
                f"RewardMetricsReplayBuffer extends the sync replay buffer; trainer.v1.trainer_mode is "
                f"{kwargs.get('trainer_mode')!r}. Unset trainer.v1.sampler.custom_sampler for other modes."
            )
        super().__init__(**kwargs)

    def sample(self, global_steps: int, partition_id: str, batch_size: int) -> tuple[Any, dict]:
        batch, metrics = super().sample(global_steps, partition_id, batch_size)
        if partition_id == "train" and batch.keys:
            data = tq.kv_batch_get(keys=batch.keys, partition_id=partition_id, select_fields=["extra_fields"])
            fields = [getattr(value, "data", value) for value in data["extra_fields"]]
            infos = [f.get("reward_extra_info", {}) if isinstance(f, dict) else {} for f in fields]
            metrics.update(reward_metrics(infos))
        return batch, metrics
