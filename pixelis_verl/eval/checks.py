"""Evaluation's own recipe checks (run by the composer, `config.PHASE_CHECKS`, before anything is written)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from pixelis_verl.eval.protocols import ORDERS
from pixelis_verl.typed_config import RecipeError


def check_eval(cfg: DictConfig) -> None:
    """Fail fast, naming the key, on protocol settings that cannot mean what they say."""
    if OmegaConf.is_missing(cfg.model, "path"):
        raise RecipeError("model.path: name the checkpoint to evaluate (model.path=/path/to/hf_model)")
    protocol = cfg.eval.protocol
    if protocol.options not in ORDERS:
        raise RecipeError(f"eval.protocol.options: one of {list(ORDERS)}; got {protocol.options!r}")
    if int(protocol.samples) < 1:
        raise RecipeError(f"eval.protocol.samples: at least 1; got {protocol.samples}")
    if int(protocol.samples) > 1 and not protocol.do_sample:
        raise RecipeError("eval.protocol.samples > 1 repeats the same greedy answer: set eval.protocol.do_sample=true")
    if not OmegaConf.select(cfg, "pixelis.trajectories.dir"):
        raise RecipeError("pixelis.trajectories.dir: evaluation reads every trajectory from it; it must be set")
