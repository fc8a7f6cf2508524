"""Every private verl 0.9.1 name pixelis_verl uses, wrapped in one place (monkeypatches are in `patches.py`).

verl has no public API for these; each is the smallest reach into its internals that avoids copying its code.
A verl bump that renames or removes one breaks here, in one file, and `tests/runtime/test_upstream.py` checks
that every name in `PRIVATE_NAMES` still exists in the pinned verl before anything runs.

| name                                   | used for                                                        |
|----------------------------------------|-----------------------------------------------------------------|
| `EngineRegistry._engines`              | registering an engine for a device only once (no lookup API)    |
| `rollout.base._ROLLOUT_REGISTRY`       | the `hf` rollout class (the replica registry has `register`)    |
| `ToolAgentLoop._make_request_id`       | recording each turn's request id (a hook our agent loop wraps)  |
| `AgentLoopWorker._compute_position_ids`| verl's own M-RoPE position ids for a TTRL request's embedding   |
| `RayPPOTrainer._compute_old_log_prob`  | TTRL: log-probs of the update batch before and after the update |
| `RayPPOTrainer._compute_ref_log_prob`  | TTRL: the EMA reference's log-probs for the KL corridor         |
| `RayPPOTrainer._update_actor`          | TTRL: one actor update on a hand-built batch                    |
| `RLHFDataset`'s fields, no `__init__`  | TTRL: verl's row processing over rows in memory (`rl_rows`)     |
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

# (module, attribute path) of each private name above: the test imports and walks each.
PRIVATE_NAMES = (
    ("verl.workers.engine.base", "EngineRegistry._engines"),
    ("verl.workers.rollout.base", "_ROLLOUT_REGISTRY"),
    ("verl.experimental.agent_loop.tool_agent_loop", "ToolAgentLoop._make_request_id"),
    ("verl.experimental.agent_loop.agent_loop", "AgentLoopWorker._compute_position_ids"),
    ("verl.trainer.ppo.ray_trainer", "RayPPOTrainer._compute_old_log_prob"),
    ("verl.trainer.ppo.ray_trainer", "RayPPOTrainer._compute_ref_log_prob"),
    ("verl.trainer.ppo.ray_trainer", "RayPPOTrainer._update_actor"),
)


def registered_engines(model_type: str) -> dict[str, dict[str, type]]:
    """verl's engine registry for `model_type`: {backend: {device: engine class}}."""
    from verl.workers.engine.base import EngineRegistry

    return EngineRegistry._engines.get(model_type, {})


def register_rollout_class(name: str, mode: str, class_path: str) -> None:
    """Name the rollout class verl's workers build for `rollout.name=name` in `mode` ("async")."""
    from verl.workers.rollout import base as rollout_base

    rollout_base._ROLLOUT_REGISTRY[(name, mode)] = class_path


def make_request_id(priority: int, full_determinism: bool) -> str:
    """verl's tool agent loop's own request id for the next generation turn."""
    from verl.experimental.agent_loop.tool_agent_loop import ToolAgentLoop

    return ToolAgentLoop._make_request_id(priority, full_determinism)


def agent_loop_position_ids(processor: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """verl's agent-loop position ids for processor `inputs` (M-RoPE rows for Qwen-VL); it reads only the
    processor, and pops `mm_token_type_ids` from `inputs`."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    return AgentLoopWorker._compute_position_ids(
        SimpleNamespace(processor=processor), inputs["input_ids"], inputs["attention_mask"], inputs
    )


def compute_old_log_prob(trainer: Any, batch: Any) -> tuple[Any, Any]:
    """The actor's log-probs of `batch` (verl's trainer step, as the PPO loop calls it)."""
    return trainer._compute_old_log_prob(batch)


def compute_ref_log_prob(trainer: Any, batch: Any) -> Any:
    """The reference model's log-probs of `batch`."""
    return trainer._compute_ref_log_prob(batch)


def update_actor(trainer: Any, batch: Any) -> Any:
    """One actor update on `batch` (its advantages and log-probs already in it)."""
    return trainer._update_actor(batch)


def rl_rows(rows: list[dict[str, Any]], data_config: Any, processor: Any) -> Any:
    """verl's RL row processing (`RLHFDataset.__getitem__`: structured multi-modal messages, the processor,
    position ids) over `rows` in memory: an `RLHFDataset` built without its `__init__`, which reads a parquet
    file and filters by length, with the fields `__getitem__` reads set here (verl has no in-memory constructor).
    """
    from verl.utils.dataset.rl_dataset import RLHFDataset

    dataset = RLHFDataset.__new__(RLHFDataset)
    dataset.dataframe = rows
    dataset.processor = processor
    dataset.prompt_key = data_config.get("prompt_key", "prompt")
    dataset.image_key = data_config.get("image_key", "images")
    dataset.video_key = data_config.get("video_key", "videos")
    dataset.audio_key = data_config.get("audio_key", "audios")
    dataset.need_tools_kwargs = data_config.get("need_tools_kwargs", False)
    return dataset
