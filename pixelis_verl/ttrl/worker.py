"""The TTRL actor/rollout/reference worker: verl's `ActorRolloutRefWorker` plus what online learning needs.

verl's worker already trains the actor (FSDP), serves the rollout and computes reference log-probs. TTRL adds,
as registered worker methods the driver calls on the whole group (every rank runs them, FSDP needs that):

- `ttrl_embed`: request embeddings from the policy itself (the last hidden layer mean-pooled over question +
  image), computed where the policy lives, so retrieval needs no second model;
- `ttrl_snapshot` / `ttrl_restore`: a host-memory copy of the actor's weights and optimizer state taken before an
  update, put back in place when the KL corridor rejects it (`ttrl/snapshot.py`);
- `ttrl_ema_update`: the reference model is the EMA of the actor (reference <- decay * reference + (1 - decay)
  * actor, shard by shard), so verl's own reference log-probs and KL loss measure the distance to the EMA;
- `ttrl_set_lr_scale`: the corridor's step-size multiplier on the optimizer's learning rate and its scheduler;
- `ttrl_save_ema` / `ttrl_load_ema`: the EMA's shards next to verl's actor checkpoint (verl saves the actor
  only; the reference is otherwise rebuilt from the base model on restart).

With LoRA (``model.lora_rank > 0``) verl builds no reference model and asks the actor for reference log-probs
with its adapters off; here the EMA is of the adapters alone (`ttrl/lora_reference.py`), swapped into the actor for
those log-probs (`compute_log_prob`), and snapshots copy the adapters only.

The methods reach into the FSDP engine (`engine.module`, `.optimizer`, `.lr_scheduler`): TTRL needs the
`fsdp`/`fsdp2` actor strategy (checked at startup).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tensordict import TensorDict
from verl.single_controller.base.decorator import Dispatch, make_nd_compute_dataproto_dispatch_fn, register
from verl.utils import tensordict_utils as tu
from verl.utils.device import get_device_name
from verl.workers.engine_workers import ActorRolloutRefWorker

from pixelis_verl.ttrl.corridor import ema_
from pixelis_verl.ttrl.lora_reference import AdapterReference
from pixelis_verl.ttrl.snapshot import Snapshot, copy_into, local


def _shards(module: torch.nn.Module) -> list[torch.Tensor]:
    return [local(p.data) for p in module.parameters()]


class TTRLWorker(ActorRolloutRefWorker):
    _snapshot: Snapshot | None = None
    _lr_scale: float = 1.0
    _adapter_reference: AdapterReference | None = None

    def _lora_reference(self) -> AdapterReference | None:
        """The adapters' EMA when the actor trains LoRA adapters (verl then builds no reference model), made from
        the adapters as they are at TTRL's first call; None in full fine-tuning."""
        model = self.config.model
        if self.ref is not None or not (int(model.get("lora_rank", 0) or 0) > 0 or model.get("lora_adapter_path")):
            return None  # verl's own test for a reference inside the actor (RayPPOTrainer.ref_in_actor)
        if self._adapter_reference is None:
            self._adapter_reference = AdapterReference(self.actor.engine.module)
        return self._adapter_reference

    @register(dispatch_mode=make_nd_compute_dataproto_dispatch_fn(mesh_name="actor"))
    def compute_log_prob(self, data: TensorDict) -> TensorDict:
        """verl's, except the reference's log-probs under LoRA: verl asks for the actor with its adapters off (the
        base model); TTRL's reference is the actor with the adapters' EMA swapped in."""
        reference = self._lora_reference()
        if reference is None or not tu.get(data, key="no_lora_adapter", default=False):
            return super().compute_log_prob(data)
        tu.assign_non_tensor(data, no_lora_adapter=False)
        with reference.swapped_in(self.actor.engine.module):
            return super().compute_log_prob(data)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    @torch.no_grad()
    def ttrl_embed(self, inputs: list[dict[str, torch.Tensor]]) -> np.ndarray:
        """One embedding per request: the policy's last hidden states mean-pooled over its processed prompt."""
        engine = self.actor.engine
        device = get_device_name()
        pooled = []
        with engine.eval_mode():
            for item in inputs:
                kwargs = {key: value.to(device) for key, value in item.items()}
                out = engine.module(**kwargs, output_hidden_states=True, use_cache=False)
                hidden = out.hidden_states[-1][0].float()  # (tokens, hidden): the last layer's states
                mask = kwargs["attention_mask"][0].float()[:, None]
                pooled.append(((hidden * mask).sum(0) / mask.sum().clamp(min=1)).cpu().numpy())
        return np.stack(pooled)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def ttrl_snapshot(self) -> None:
        """Keep the actor's weights, optimizer and scheduler state (host memory) until the next snapshot."""
        self._lora_reference()  # made before the first update: the reference starts as the starting policy
        engine = self.actor.engine
        self._snapshot = Snapshot.take(engine.module, engine.optimizer, engine.lr_scheduler)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def ttrl_restore(self) -> None:
        """Put back the last snapshot: the update since then never happened (its optimizer moments included)."""
        if self._snapshot is None:
            raise RuntimeError("ttrl_restore: no snapshot was taken")
        engine = self.actor.engine
        self._snapshot.restore(engine.module, engine.optimizer, engine.lr_scheduler)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def ttrl_ema_update(self, decay: float) -> None:
        reference = self._lora_reference()
        if reference is not None:
            reference.update(self.actor.engine.module, decay)
        else:
            ema_(_shards(self.ref.engine.module), _shards(self.actor.engine.module), decay)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def ttrl_set_lr_scale(self, scale: float, already_applied: bool = False) -> None:
        """Scale the learning rate (and the scheduler's base rates) by `scale` of the configured one.

        `already_applied`: the optimizer and scheduler state just loaded from a checkpoint carry this scale.
        """
        if not already_applied:
            engine, ratio = self.actor.engine, scale / self._lr_scale
            engine.lr_scheduler.base_lrs = [lr * ratio for lr in engine.lr_scheduler.base_lrs]
            for group in engine.optimizer.param_groups:
                group["lr"] *= ratio
        self._lr_scale = scale

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def ttrl_save_ema(self, folder: str) -> None:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        reference = self._lora_reference()
        shards = reference.shards() if reference else [shard.cpu() for shard in _shards(self.ref.engine.module)]
        torch.save(shards, path / f"ema_rank{self.rank}.pt")

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    @torch.no_grad()
    def ttrl_load_ema(self, folder: str) -> None:
        path = Path(folder) / f"ema_rank{self.rank}.pt"
        if not path.exists():
            raise FileNotFoundError(f"{path}: the EMA reference was saved by a run with a different number of ranks")
        shards, reference = torch.load(path, weights_only=True), self._lora_reference()
        if reference is not None:
            reference.load(shards)
        else:
            copy_into(_shards(self.ref.engine.module), shards)
