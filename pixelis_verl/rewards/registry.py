"""The reward-component registry: a new term is one class here and one entry in ``conf/reward/*.yaml``.

A component scores one aspect of a `Trajectory` as a float. Its parameters are the fields of its
``Params`` dataclass, read from ``pixelis.reward.components.<name>`` (unknown keys fail at startup,
naming the key: ``pixelis_verl.typed_config.from_dict``); ``weight`` and ``normalize`` are the manager's,
shared by all components. The manager logs every component's raw value, weight zero included, so a
term can be watched without being trained on (Pixel-Reasoner's rate-based curiosity next to ours, in the same run).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

from omegaconf import DictConfig

from pixelis_verl.registry import class_registry
from pixelis_verl.trajectory.parse import Trajectory

REWARD_COMPONENTS: dict[str, type[RewardComponent]] = {}


@dataclass
class ComponentParams:
    """Parameters every component has; subclasses add their own fields."""


class RewardComponent(abc.ABC):
    name: ClassVar[str]
    Params: ClassVar[type[ComponentParams]] = ComponentParams

    def __init__(self, params: ComponentParams, config: DictConfig):
        """`config` is the run's full config, for components that need more than their own parameters."""
        self.params = params

    @abc.abstractmethod
    async def score(self, trajectory: Trajectory) -> float:
        """The component's raw value for one trajectory. Must not raise on any trajectory a model can produce."""


register_component = class_registry(REWARD_COMPONENTS, "reward component")
"""Class decorator: make a component selectable as ``pixelis.reward.components.<name>``."""
