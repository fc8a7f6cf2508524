"""Fail-fast checks of an SFT recipe: what verl's SFT trainer would reject late, or silently mis-train on."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from pixelis_verl.sft.argument_head import argument_head_config
from pixelis_verl.sft.token_weights import TokenWeights
from pixelis_verl.typed_config import RecipeError, from_dict


def check_sft(cfg: DictConfig) -> None:
    """The loss's data settings, the dataset class, verl's own config dataclasses and the batch split."""
    from verl.utils.config import omega_conf_to_dataclass
    from verl.utils.import_utils import load_extern_object

    if cfg.data.pad_mode != "no_padding":
        raise RecipeError(f"data.pad_mode: the weighted SFT loss reads packed sequences; set no_padding, not "
                          f"{cfg.data.pad_mode!r}")  # fmt: skip
    try:
        from_dict(TokenWeights, OmegaConf.to_container(cfg.data.get("token_weights") or {}), "data.token_weights")
        head = argument_head_config(cfg.data)
        load_extern_object(cfg.data.custom_cls.path, cfg.data.custom_cls.name)
    except (ValueError, ImportError, AttributeError) as exc:
        raise RecipeError(str(exc)) from exc
    for group in ("engine", "optim", "checkpoint", "profiler"):
        try:
            omega_conf_to_dataclass(cfg[group])
        except Exception as exc:  # verl's dataclasses raise assorted types from __post_init__
            raise RecipeError(f"{group}: {str(exc).splitlines()[0]}") from exc
    if head.enable and cfg.model.get("use_fused_kernels"):
        raise RecipeError(
            "data.argument_head.enable: the head reads the LM head's input; set model.use_fused_kernels=false"
        )
    ranks = cfg.trainer.nnodes * cfg.trainer.n_gpus_per_node
    if cfg.data.train_batch_size % ranks:
        raise RecipeError(f"data.train_batch_size: {cfg.data.train_batch_size} does not split over {ranks} ranks "
                          "(trainer.nnodes x trainer.n_gpus_per_node)")  # fmt: skip
