"""LoRA weights for the ``hf`` rollout: what verl's weight sync sends when the actor trains adapters, made into the
plain Hugging Face weights the rollout's model holds.

verl 0.9.1's naive checkpoint engine (``ActorRolloutRefWorker.update_weights``) sends, with ``lora_rank > 0`` and
``lora.merge`` off, the base weights once under peft's wrapped names (``...q_proj.base_layer.weight``;
``base_sync_done=False``), then after every update only the adapters (``base_model.model.<module>.lora_A.weight``,
``lora_B``) with the peft config. vLLM serves base + adapter itself; our rollout is a plain ``generate`` over
the HF model, so `LoraWeights` merges each update into a kept copy of the base weights, in the model's own
dtype (float32 here: ``lora.merge`` would send bf16-rounded weights and break the actor/rollout agreement
``cpu_local.yaml`` keeps): ``W = W0 + scale * B @ A`` with ``scale = alpha / r`` (``alpha / sqrt(r)`` with
rsLoRA), as peft's ``merge_and_unload`` computes it.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch

_PEFT_PREFIX = "base_model.model."
_ADAPTER = re.compile(r"^(?P<module>.+)\.lora_(?P<part>[AB])(?:\.[^.]+)?\.weight$")


def plain_name(name: str) -> str:
    """A parameter's name in the plain HF model, from peft's wrapped one."""
    name = name.removeprefix(_PEFT_PREFIX)
    return name.replace(".base_layer.", ".")


class LoraWeights:
    """Keeps the base weights of the modules adapters touch, and turns adapter updates into merged weights."""

    def __init__(self) -> None:
        self._base: dict[str, torch.Tensor] = {}  # plain weight name -> W0, the model's dtype

    def base(self, named: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The base sync: plain names for the model, and W0 kept for every later merge."""
        plain = {plain_name(name): tensor for name, tensor in named.items()}
        self._base.update({name: tensor.detach().clone() for name, tensor in plain.items()})
        return plain

    def merged(
        self, named: dict[str, torch.Tensor], peft_config: dict[str, Any], state: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Merged weights for an adapter update. `state` is the model's state dict: a weight whose base was not
        synced is taken from it the first time (the model was loaded from the same base checkpoint)."""
        unsupported = [k for k in ("use_dora", "rank_pattern", "alpha_pattern") if peft_config.get(k)]
        if unsupported:
            raise ValueError(f"hf rollout: LoRA with {', '.join(unsupported)} is not merged here; use plain LoRA")
        rank = int(peft_config["r"])
        alpha = float(peft_config.get("lora_alpha", rank))
        scale = alpha / math.sqrt(rank) if peft_config.get("use_rslora") else alpha / rank
        pairs: dict[str, dict[str, torch.Tensor]] = {}
        for name, tensor in named.items():
            match = _ADAPTER.match(name.removeprefix(_PEFT_PREFIX))
            if match is None:
                raise KeyError(f"hf rollout: '{name}' is not a LoRA A/B weight")
            pairs.setdefault(match["module"] + ".weight", {})[match["part"]] = tensor
        out = {}
        for weight, parts in pairs.items():
            if set(parts) != {"A", "B"}:
                raise KeyError(f"hf rollout: adapter update for '{weight}' lacks lora_{'B' if 'A' in parts else 'A'}")
            if weight not in self._base:
                if weight not in state:
                    raise KeyError(f"hf rollout: the adapter targets '{weight}', which the model lacks")
                self._base[weight] = state[weight].detach().clone()
            base = self._base[weight]
            delta = parts["B"].to(torch.float32) @ parts["A"].to(torch.float32)
            out[weight] = (base.to(torch.float32) + scale * delta).to(base.dtype)
        return out
