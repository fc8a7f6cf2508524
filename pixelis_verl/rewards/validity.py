"""``validity``: penalties for what a well-behaved agent never does.

Each mistake has its own price, because they differ in what they say about the policy: an invalid
argument (a box off the image) is a near miss the tool explains; a malformed or truncated
``<tool_call>`` is lost without a word from verl (its parser drops it), so nothing else would
discourage it; a well-formed call no tool ran (an unknown name, past the per-turn limit); a video
tool on a still image is a modality confusion; and a trajectory that never gives an ``<answer>``
cannot be scored at all. The value is <= 0; the counts are logged next to it by the manager.
Per-call prices are capped (``max_penalty``) so one runaway trajectory cannot dominate its group's
advantage normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

from pixelis_verl.rewards.registry import ComponentParams, RewardComponent, register_component
from pixelis_verl.trajectory.parse import Trajectory


@dataclass
class ValidityParams(ComponentParams):
    invalid_call: float = 0.05  # per executed call with wrong arguments
    modality_call: float = 0.1  # per video tool called without a video
    malformed_call: float = 0.1  # per <tool_call> that is not {"name": ..., "arguments": {...}} or never closes
    unexecuted_call: float = 0.05  # per well-formed call no tool ran
    missing_answer: float = 0.2  # no <answer>...</answer> in the assistant's turns
    max_penalty: float = 1.0  # the value never goes below -max_penalty


@register_component("validity")
class Validity(RewardComponent):
    params: ValidityParams
    Params = ValidityParams

    async def score(self, trajectory: Trajectory) -> float:
        p = self.params
        modality = sum(step.get("error_kind") == "modality" for step in trajectory.steps)
        penalty = (
            p.invalid_call * (trajectory.invalid_calls - modality)
            + p.modality_call * modality
            + p.malformed_call * trajectory.malformed_calls
            + p.unexecuted_call * trajectory.unexecuted_calls
            + p.missing_answer * (trajectory.pred is None)
        )
        return -min(penalty, p.max_penalty)
