"""TTRL's EMA reference when the actor trains LoRA adapters: an EMA of the adapters alone, swapped into the actor
for the reference's log-probs.

In full fine-tuning the reference is a second model that TTRL moves towards the actor after each accepted update
(`TTRLWorker.ttrl_ema_update`). verl's LoRA mode builds no second model: its reference is the actor with the
adapters switched off, the base model, which would pin the KL corridor to the base for ever instead of to the
recent policy. The base is frozen, so the EMA of the actor is the base plus the EMA of the adapters: this keeps
one copy of the adapters' local shards (rank 64 at 7B: 161M parameters, 80 MB per GPU of 8 in fp32, against a
second 7B model), moves it after each accepted update, and swaps it into the actor's adapters while verl computes
the reference log-probs. It starts as the adapters' state when TTRL starts, so before the first update the
reference is the policy TTRL started from. The average is of the factors A and B, not of their product: the
reference's weight change EMA(B) EMA(A) differs from the full-model EMA's EMA(B A) by a second-order term in the
adapters' movement between updates, which the corridor's small steps keep small.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from pixelis_verl.ttrl.corridor import ema_
from pixelis_verl.ttrl.snapshot import copy_into, local, trained


class AdapterReference:
    """The EMA of a module's trained parameters (its adapters), kept beside them in their device and dtype."""

    def __init__(self, module: torch.nn.Module):
        self.ema = [local(p.data).detach().clone() for p in trained(module)]
        if not self.ema:
            raise ValueError("a LoRA reference needs trained parameters (adapters); the module has none")

    @torch.no_grad()
    def update(self, module: torch.nn.Module, decay: float) -> None:
        """ema <- decay * ema + (1 - decay) * adapters, shard by shard."""
        ema_(self.ema, [local(p.data) for p in trained(module)], decay)

    @contextmanager
    def swapped_in(self, module: torch.nn.Module) -> Iterator[None]:
        """The module computes as the reference inside the block: its adapters hold the EMA, then their own values
        again, bit for bit, however the block ends."""
        own = [local(p.data).detach().clone() for p in trained(module)]
        with torch.no_grad():
            copy_into([p.data for p in trained(module)], self.ema)
        try:
            yield
        finally:  # the tensors read again: offloading FSDP moves parameters (new `.data`) inside the block
            with torch.no_grad():
                copy_into([p.data for p in trained(module)], own)

    def shards(self) -> list[torch.Tensor]:
        """The EMA's local shards on the host (what a checkpoint saves)."""
        return [shard.cpu() for shard in self.ema]

    @torch.no_grad()
    def load(self, shards: list[torch.Tensor]) -> None:
        copy_into(self.ema, shards)
