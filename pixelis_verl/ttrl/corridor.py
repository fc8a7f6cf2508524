"""The KL-to-EMA corridor: online updates may move the policy, but only so far from its recent self.

The reference is an exponential moving average of the policy's weights (`EMAReference`), not the frozen
starting point: the policy may drift over a long stream, but no single update may jump. After each
update, KL(policy ‖ EMA) is measured on the update batch (`token_kl`, verl's `kl_penalty` estimators on
the two models' log-probs of the batch's tokens) and `KLCorridor.decide` answers:

- above `upper`: **roll back** the update (the caller restores the pre-update weights) and multiply the step
  size by `shrink`, never below `min_scale`;
- below `lower`: accept, and let the step size grow by `grow`, never above `max_scale`;
- in between: accept, step size unchanged.

The EMA then absorbs accepted updates only. Every decision is returned with its KL and scale so the
driver can log it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn
from verl.trainer.ppo.core_algos import kl_penalty

ACTIONS = ("accept", "grow", "rollback")


@dataclass(frozen=True)
class CorridorConfig:
    lower: float = 0.002  # below: the step size may grow
    upper: float = 0.02  # above: the update is rolled back and the step size shrinks
    shrink: float = 0.5
    grow: float = 1.25
    min_scale: float = 1e-3  # of the configured learning rate
    max_scale: float = 1.0
    ema_decay: float = 0.99  # reference <- decay * reference + (1 - decay) * policy, after each accepted update
    estimator: str = "low_var_kl"  # verl's kl_penalty on sampled tokens: kl (k1), abs, mse (k2), low_var_kl (k3)

    def __post_init__(self) -> None:
        if not 0 <= self.lower < self.upper:
            raise ValueError(f"ttrl.corridor: need 0 <= lower < upper; got {self.lower}, {self.upper}")
        if not (0 < self.shrink < 1 <= self.grow and 0 < self.min_scale <= self.max_scale):
            raise ValueError("ttrl.corridor: need 0 < shrink < 1 <= grow and 0 < min_scale <= max_scale")
        if not 0 < self.ema_decay < 1:
            raise ValueError(f"ttrl.corridor.ema_decay must be in (0, 1); got {self.ema_decay}")


@dataclass(frozen=True)
class Decision:
    action: str  # one of ACTIONS
    kl: float
    scale: float  # the step-size multiplier for the next update


class KLCorridor:
    def __init__(self, config: CorridorConfig, scale: float = 1.0):
        self.config, self.scale = config, scale
        self.counts = dict.fromkeys(ACTIONS, 0)

    def decide(self, kl: float) -> Decision:
        config = self.config
        if kl > config.upper:
            action, self.scale = "rollback", max(self.scale * config.shrink, config.min_scale)
        elif kl < config.lower:
            action, self.scale = "grow", min(self.scale * config.grow, config.max_scale)
        else:
            action = "accept"
        self.counts[action] += 1
        return Decision(action, kl, self.scale)


def token_kl(logprob: torch.Tensor, ref_logprob: torch.Tensor, mask: torch.Tensor, estimator: str) -> float:
    """Mean over the masked tokens of verl's KL estimator between policy and reference log-probs."""
    kl = kl_penalty(logprob, ref_logprob, estimator)
    return float((kl * mask).sum() / mask.sum().clamp(min=1))


@torch.no_grad()
def ema_(targets: Iterable[torch.Tensor], sources: Iterable[torch.Tensor], decay: float) -> None:
    """target <- decay * target + (1 - decay) * source, in place, pairwise."""
    for target, source in zip(targets, sources, strict=True):
        target.mul_(decay).add_(source.detach().to(target.device, target.dtype), alpha=1 - decay)


class EMAReference:
    """An exponential moving average of a module's floating-point parameters and buffers."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}

    def update(self, module: nn.Module) -> None:
        current = module.state_dict()
        ema_(self.state.values(), (current[name] for name in self.state), self.decay)

    def load_into(self, module: nn.Module) -> None:
        """Put the reference's weights into `module` (e.g. the reference worker's copy of the model)."""
        module.load_state_dict(self.state, strict=False)
