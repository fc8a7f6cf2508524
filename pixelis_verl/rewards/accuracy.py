"""``accuracy``: is the trajectory's answer right (1.0), partly right (ANLS credit for read text) or not (0.0)."""

from __future__ import annotations

import logging

from pixelis_verl.rewards.registry import RewardComponent, register_component
from pixelis_verl.trajectory.answers import answer_accuracy
from pixelis_verl.trajectory.parse import Trajectory

logger = logging.getLogger(__name__)


def trajectory_accuracy(trajectory: Trajectory) -> float:
    """The last ``<answer>`` of the assistant's turns scored with the row's answer metric (see rewards.answers).

    No answer, no ground truth, or a row naming an unknown metric scores 0; the validity component
    penalises the missing answer.
    """
    if trajectory.pred is None or trajectory.ground_truth is None:
        return 0.0
    try:
        return answer_accuracy(trajectory.pred, trajectory.ground_truth, trajectory.extra_info)
    except ValueError as e:  # an unknown answer_metric in the row: the data's fault, not the model's
        logger.warning("accuracy: %s; the trajectory scores 0", e)
        return 0.0


@register_component("accuracy")
class Accuracy(RewardComponent):
    """Right (1.0), partly right (ANLS credit for read text) or not (0.0): `trajectory_accuracy`."""

    async def score(self, trajectory: Trajectory) -> float:
        return trajectory_accuracy(trajectory)
