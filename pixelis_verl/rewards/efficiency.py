"""``efficiency``: a mild prior against tool calls beyond a budget and responses near the length limit.

Both terms are penalties (the value is <= 0) and both start only past a free allowance, so a
trajectory that needs a few calls is never pushed towards answering blind; what they discourage is
the failure mode of agentic RL where call counts and lengths creep up because nothing pays for them.
The length term is DAPO's overlong shaping: zero up to ``soft_length`` of the response budget, then
linear to ``-length_cost`` at the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from pixelis_verl.rewards.registry import ComponentParams, RewardComponent, register_component
from pixelis_verl.trajectory.parse import Trajectory


@dataclass
class EfficiencyParams(ComponentParams):
    call_budget: int = 3  # tool calls that cost nothing
    call_cost: float = 0.1  # penalty per call beyond the budget
    soft_length: float = 0.75  # fraction of data.max_response_length where the length penalty starts
    length_cost: float = 0.5  # penalty at the length limit

    def __post_init__(self) -> None:
        if self.call_budget < 0 or self.call_cost < 0 or self.length_cost < 0 or not 0 < self.soft_length <= 1:
            raise ValueError(
                "efficiency: need call_budget >= 0, call_cost >= 0, length_cost >= 0 and 0 < soft_length <= 1; got "
                f"{self}"
            )


@register_component("efficiency")
class Efficiency(RewardComponent):
    params: EfficiencyParams
    Params = EfficiencyParams

    async def score(self, trajectory: Trajectory) -> float:
        p = self.params
        extra_calls = max(0, len(trajectory.calls) - p.call_budget)
        limit = max(trajectory.max_response_tokens, 1)
        soft = p.soft_length * limit
        overlong = 0.0 if limit <= soft else max(0.0, trajectory.response_tokens - soft) / (limit - soft)
        return -p.call_cost * extra_calls - p.length_cost * min(overlong, 1.0)
