"""``tool_bonus``: 1 for a trajectory that made a well-formed call of the named tools, else 0.

Two uses, one term:
- DeepEyes' tool-use bonus (``require_correct: true``): the bonus is paid only when the answer is also right,
  so a tool call that did not help earns nothing (Zheng et al. 2025, R = R_acc + R_format + 1[R_acc > 0] R_tool).
- A directly rewarded, reachable behaviour (``require_correct: false``): the CI learning test pays a
  well-formed ``zoom_in`` call and checks that GRPO raises its rate, so a sign, mask or weight-sync bug that
  stops learning fails CI (tests/test_sft_e2e_on_cpu.py).

"Well-formed" is what verl's hermes parser accepts: a JSON object with a name and an object of arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pixelis_verl.rewards.accuracy import trajectory_accuracy
from pixelis_verl.rewards.registry import ComponentParams, RewardComponent, register_component
from pixelis_verl.trajectory.parse import Trajectory


@dataclass
class ToolBonusParams(ComponentParams):
    tools: list[str] = field(default_factory=list)  # tool names that count; empty: any tool
    require_correct: bool = True  # DeepEyes: pay only when the answer is right too

    def __post_init__(self) -> None:
        if not isinstance(self.tools, list) or not all(isinstance(t, str) and t for t in self.tools):
            raise ValueError(f"tool_bonus: tools must be a list of tool names; got {self.tools!r}")


@register_component("tool_bonus")
class ToolBonus(RewardComponent):
    params: ToolBonusParams
    Params = ToolBonusParams

    async def score(self, trajectory: Trajectory) -> float:
        wanted = set(self.params.tools)
        called = any(call.well_formed and (not wanted or call.name in wanted) for call in trajectory.calls)
        if not called:
            return 0.0
        if self.params.require_correct:
            return 1.0 if trajectory_accuracy(trajectory) > 0 else 0.0
        return 1.0
