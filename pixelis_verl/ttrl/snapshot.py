"""A host-memory copy of an actor's trainable state, taken before a TTRL update and put back when the KL corridor
rejects it: the weights, the optimizer's per-parameter state (Adam's moments and step) and hyperparameters, and
the scheduler.

Everything is copied to host memory and restored in place into the tensors that already exist. A deep copy of the
optimizer's `state_dict()` would keep a second set of Adam moments on the GPU (two fp32 tensors per parameter:
~7.6 GB per GPU for a 7B actor sharded over 8) for as long as the snapshot lives, through the next rollout.
With FSDP2 the tensors are DTensors; the copy holds each rank's local shard, which is what it restores into.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch


def local(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a tensor (FSDP2 holds DTensors), as a plain tensor sharing its storage."""
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor


def _host(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return local(value).detach().to("cpu", copy=True)
    return copy.deepcopy(value)


def copy_into(targets: Iterable[torch.Tensor], sources: Iterable[torch.Tensor]) -> None:
    """Copy each source into its target's local shard, in place; shapes must agree."""
    for target, source in zip(targets, sources, strict=True):
        shard = local(target)
        if shard.shape != source.shape:
            raise ValueError(f"saved shard {tuple(source.shape)} does not fit the model's {tuple(shard.shape)}")
        shard.copy_(source.to(shard.device, shard.dtype))


def trained(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters an update can change: all of them in full fine-tuning, the adapters alone with LoRA (the base
    is frozen), which is what makes a snapshot cheap enough to take before every TTRL update at 7B."""
    return [p for p in module.parameters() if p.requires_grad]


@dataclass
class Snapshot:
    weights: list[torch.Tensor]  # local shards of the trained parameters, host memory
    states: list[dict[str, Any]]  # the optimizer's state of each parameter ({} before its first step), host memory
    groups: list[dict[str, Any]]  # each parameter group's hyperparameters (lr, betas, ...), without its params
    scheduler: dict[str, Any]

    @classmethod
    def take(cls, module: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> Snapshot:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        return cls(
            weights=[_host(p.data) for p in trained(module)],
            states=[{key: _host(value) for key, value in optimizer.state.get(p, {}).items()} for p in params],
            groups=[
                {k: copy.deepcopy(v) for k, v in group.items() if k != "params"} for group in optimizer.param_groups
            ],
            scheduler=copy.deepcopy(scheduler.state_dict()),
        )

    @torch.no_grad()
    def restore(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
        """Put everything back as it was when taken; the snapshot stays valid for another restore."""
        copy_into([p.data for p in trained(module)], self.weights)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for param, saved in zip(params, self.states, strict=True):
            if not saved:  # no step had touched it: the update created its state, which goes
                optimizer.state.pop(param, None)
                continue
            current = optimizer.state[param]
            for key, value in saved.items():
                if isinstance(value, torch.Tensor):
                    copy_into([current[key]], [value])
                else:
                    current[key] = copy.deepcopy(value)
        for group, saved in zip(optimizer.param_groups, self.groups, strict=True):
            group.update(copy.deepcopy(saved))
        scheduler.load_state_dict(copy.deepcopy(self.scheduler))
