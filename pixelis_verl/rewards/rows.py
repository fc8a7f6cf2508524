"""The one-row ``DataProto`` verl's agent-loop worker hands the reward loop, built outside a rollout.

verl 0.9.1 (``AgentLoopWorker._compute_score``) scores each trajectory from a row of token tensors
(``prompts``, ``responses``, ``attention_mask``, ``input_ids``, ``position_ids``) plus the dataset's
fields and ``tool_extra_fields`` (what the agent loop and tools recorded). `reward_row` builds the
same row, so a reward manager can be driven exactly as verl drives it: in tests, in benchmarks, and
to re-score dumped trajectories offline.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tensordict import TensorDict
from verl import DataProto


def reward_row(
    prompt_ids: list[int], response_ids: list[int], fields: dict[str, Any], extra_fields: dict[str, Any] | None
) -> DataProto:
    prompts, responses = torch.tensor(prompt_ids, dtype=torch.int64), torch.tensor(response_ids, dtype=torch.int64)
    input_ids = torch.cat([prompts, responses])
    batch = TensorDict(
        {
            "prompts": prompts[None],
            "responses": responses[None],
            "attention_mask": torch.ones_like(input_ids)[None],
            "input_ids": input_ids[None],
            "position_ids": torch.arange(len(input_ids))[None],
        },
        batch_size=1,
    )
    non_tensor = {key: np.array([value]) for key, value in fields.items()}
    if extra_fields is not None:
        non_tensor["tool_extra_fields"] = np.array([extra_fields], dtype=object)
    return DataProto(batch=batch, non_tensor_batch=non_tensor)
