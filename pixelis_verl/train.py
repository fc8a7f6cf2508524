"""Train with a recipe: ``python -m pixelis_verl.train --config-name <recipe> [--cfg job] [key=value ...]``.

Composes ``recipes/<recipe>.yaml`` over verl's ``ppo_trainer``, prepares a run directory (resolved
config, metrics JSONL, sampled trajectories, checkpoints, generated data) and hands the config to
verl's own ``main_ppo`` entry, so the trainer, agent loop, reward loop and workers are verl's. A recipe with
a ``ttrl`` block runs the Pixel TTRL loop instead (``pixelis_verl.ttrl.runner``: verl's ``run_ppo`` with our
task runner, on the same workers). Our plugin is active in every Ray process through the ``verl.plugins``
entry point.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from pixelis_verl.cli import check_processor, prepare_run_dir, recipe_main, run
from pixelis_verl.cluster import check_cluster


def skip_validation_on_resume(cfg: DictConfig) -> str | None:
    """verl validates before training on every start, a resumed one too; `pixelis.validate_on_resume: false` skips
    that when verl will resume from a checkpoint (the run validated at it: save and test frequencies agree). Returns
    the line saying so, or None."""
    if OmegaConf.select(cfg, "pixelis.validate_on_resume", default=True) or cfg.trainer.resume_mode != "auto":
        return None
    latest = Path(cfg.trainer.default_local_dir) / "latest_checkpointed_iteration.txt"
    if not latest.is_file() or not cfg.trainer.val_before_train:
        return None
    cfg.trainer.val_before_train = False
    return f"resuming from step {latest.read_text().strip()}: no validation before training (validate_on_resume)"


def _prepare(cfg: DictConfig, overrides: list[str]) -> Path:
    check_processor(cfg.actor_rollout_ref.model, "actor_rollout_ref.model")
    skipped = skip_validation_on_resume(cfg)
    if skipped:
        print(f"pixelis_verl.train: {skipped}", flush=True)
    run_dir = prepare_run_dir(cfg)
    if "ttrl" in cfg:
        from pixelis_verl.ttrl.runner import write_synth_stream

        write_synth_stream(cfg)
    check_cluster(cfg)
    return run_dir


def _run(cfg: DictConfig, run_dir: Path) -> int:
    run(cfg)
    return 0


def main(argv: list[str] | None = None) -> int:
    return recipe_main("python -m pixelis_verl.train", __doc__.splitlines()[0], argv, _prepare, _run)


if __name__ == "__main__":
    sys.exit(main())
