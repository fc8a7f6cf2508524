"""Pixel-Reasoner's rate-based curiosity, the peer baseline (Wang et al. 2025; verl-tool's port, App. A.4).

    r' = r + alpha * max(H - RaPR, 0) * 1[uses pixel ops] + beta * min(N - n_ops, 0)

RaPR is the rate of pixel-space reasoning in the trajectory's GRPO group: the fraction of the
group's trajectories with at least one successful pixel operation (``extra_info["pixelis_group"]``,
measured by ``pixelis_verl.agent_loop``). The bonus pays a tool-using trajectory while fewer than H
of its group use tools; the penalty charges operations beyond N. As two components, alpha and beta
are their weights: ``rate_curiosity`` (weight alpha = 0.5, H = 0.3) and ``operation_penalty``
(weight beta = 0.05, N = 1). Outside a group (no group figures) the rate is the trajectory's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from pixelis_verl.rewards.registry import ComponentParams, RewardComponent, register_component
from pixelis_verl.trajectory.parse import Trajectory


@dataclass
class RateCuriosityParams(ComponentParams):
    target_rate: float = 0.3  # H: groups using tools less often than this pay their tool users


@dataclass
class OperationPenaltyParams(ComponentParams):
    free_ops: int = 1  # N: operations that cost nothing


@register_component("rate_curiosity")
class RateCuriosity(RewardComponent):
    params: RateCuriosityParams
    Params = RateCuriosityParams

    async def score(self, trajectory: Trajectory) -> float:
        if not trajectory.uses_pixel_ops:
            return 0.0
        return max(self.params.target_rate - trajectory.group_pixel_op_rate, 0.0)


@register_component("operation_penalty")
class OperationPenalty(RewardComponent):
    params: OperationPenaltyParams
    Params = OperationPenaltyParams

    async def score(self, trajectory: Trajectory) -> float:
        return float(min(self.params.free_ops - trajectory.pixel_ops, 0))
