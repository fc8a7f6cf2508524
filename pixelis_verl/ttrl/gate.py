"""The gate and the update batch: which requests teach the policy, and which of their trajectories, how.

A request updates the policy only when its vote is confident (`gate.threshold` on the winning cluster's
weight share) and enough trajectories answered (`gate.min_answered`); otherwise it is answered and stored,
nothing more. A gated request's group contributes:

- positives: the `update.positives` shortest trajectories of the winning cluster among those without a bad
  call (then those with, if too few are clean), rewarded `label_weight` (the pseudo-label);
- negatives: every trajectory outside the winning cluster (a different answer or none), rewarded 0;
- nothing from the remaining winners: right answer, but long or sloppy chains the update should not pull
  towards; they are left out of the loss and of the group's advantage baseline.

The pixelis reward components (curiosity, coherence, efficiency, validity: everything but accuracy, which
needs a label) are added to every trajectory's pseudo-label reward by the driver.
"""

from __future__ import annotations

from dataclasses import dataclass

from pixelis_verl.trajectory.parse import Trajectory
from pixelis_verl.ttrl.config import GateConfig
from pixelis_verl.ttrl.vote import VoteResult, bad_calls


def gated(result: VoteResult, trajectories: list[Trajectory], gate: GateConfig) -> bool:
    answered = sum(t.pred is not None for t in trajectories)
    return result.answer is not None and answered >= gate.min_answered and result.confidence >= gate.threshold


@dataclass(frozen=True)
class Selection:
    labels: list[float]  # pseudo-label reward per trajectory of the group
    trained: list[bool]  # whether the trajectory enters the loss


def select_update(trajectories: list[Trajectory], result: VoteResult, positives: int, label_weight: float) -> Selection:
    winners = set(result.winners)
    ranked = sorted(winners, key=lambda i: (bad_calls(trajectories[i]) > 0, trajectories[i].response_tokens, i))
    chosen = set(ranked[:positives])
    return Selection(
        labels=[label_weight if i in chosen else 0.0 for i in range(len(trajectories))],
        trained=[i in chosen or i not in winners for i in range(len(trajectories))],
    )
