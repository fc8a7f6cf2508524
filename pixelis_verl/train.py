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

from omegaconf import DictConfig

from pixelis_verl.cli import check_processor, prepare_run_dir, recipe_main, run
from pixelis_verl.cluster import check_cluster


def _prepare(cfg: DictConfig, overrides: list[str]) -> Path:
    check_processor(cfg.actor_rollout_ref.model, "actor_rollout_ref.model")
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
