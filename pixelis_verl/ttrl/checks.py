"""TTRL's own recipe checks (run by the composer, `config.PHASE_CHECKS`, before anything is written)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from pixelis_verl.ttrl.config import ttrl_config
from pixelis_verl.typed_config import RecipeError


def check_ttrl(cfg: DictConfig) -> None:
    """Fail fast, naming the key, on what TTRL needs from the rest of the recipe (before anything is written)."""
    ttrl_config(cfg)
    actor = cfg.actor_rollout_ref.actor
    if actor.strategy not in ("fsdp", "fsdp2"):
        raise RecipeError(f"actor_rollout_ref.actor.strategy: TTRL needs fsdp or fsdp2; got {actor.strategy!r}")
    if not actor.use_kl_loss:
        raise RecipeError("actor_rollout_ref.actor.use_kl_loss: TTRL's reference is the EMA anchor; set it true")
    ranks = int(cfg.trainer.n_gpus_per_node) * int(cfg.trainer.nnodes)
    if int(cfg.actor_rollout_ref.rollout.n) % ranks:
        raise RecipeError(
            f"actor_rollout_ref.rollout.n ({cfg.actor_rollout_ref.rollout.n}) must be a multiple of the actor's ranks "
            f"({ranks}): an update batch is whole groups, split evenly over the ranks"
        )
    per_rank = int(cfg.actor_rollout_ref.rollout.n) // ranks  # trajectories per rank of a one-request update
    if not actor.use_dynamic_bsz:
        for key in ("actor.ppo_micro_batch_size_per_gpu", "rollout.log_prob_micro_batch_size_per_gpu",
                    "ref.log_prob_micro_batch_size_per_gpu"):  # fmt: skip
            size = OmegaConf.select(cfg.actor_rollout_ref, key)
            if size is not None and per_rank % int(size):
                raise RecipeError(
                    f"actor_rollout_ref.{key} ({size}) must divide rollout.n / ranks ({per_rank}): an update may "
                    "hold a single request's group"
                )
