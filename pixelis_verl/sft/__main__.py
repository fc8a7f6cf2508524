"""Supervised fine-tuning with a recipe: ``python -m pixelis_verl.sft --config-name <recipe> [key=value ...]``.

Composes ``recipes/<recipe>.yaml`` over verl's ``sft_trainer_engine`` config, checks it, prepares the run
directory (resolved config, metrics JSONL, checkpoints, and, when the recipe asks for it, a synthesised
CoTA set rendered to SFT parquet), then runs verl's SFT trainer with our loss on
``trainer.n_gpus_per_node`` ranks through ``torchrun``. Started by torchrun already (a multi-node job), it
trains in this process instead; every rank then composes the recipe itself, so the run directory must be
given (``pixelis.run_dir=<shared path>``) and the data must exist already.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from pixelis_verl.cli import recipe_main
from pixelis_verl.run_metrics import logger_env
from pixelis_verl.typed_config import RecipeError


def prepare_run_dir(cfg: DictConfig) -> Path:
    """Create the run directory, synthesise the recipe's CoTA data if it asks, and write the resolved config."""
    from pixelis_verl.data.pipeline import synth_sft_splits

    run_dir = Path(cfg.pixelis.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    synth = cfg.pixelis.get("sft_data")
    if synth is not None and synth.enable:
        synth_sft_splits(synth, model_path=cfg.model.path, out_dir=run_dir / "data")
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    return run_dir


def check_torchrun(cfg: DictConfig, overrides: list[str]) -> None:
    """Started by torchrun, every rank composes the recipe itself: they must agree on one run directory."""
    if not any(o.startswith("pixelis.run_dir=") for o in overrides):
        raise RecipeError("pixelis.run_dir: under torchrun every rank needs the same run directory; "
                          "pass pixelis.run_dir=<a path all nodes share>")  # fmt: skip
    synth = cfg.pixelis.get("sft_data")
    if synth is not None and synth.enable:
        raise RecipeError("pixelis.sft_data.enable: ranks would synthesise into one folder at once; synthesise first "
                          "(python -m pixelis_verl.data synth/fuse) and set sft_data.enable=false")  # fmt: skip


def launch(run_dir: Path, nproc: int) -> int:
    """Run the trainer on `nproc` local ranks (torchrun), or in this process when torchrun started us."""
    os.environ.update(logger_env(run_dir))
    config = str(run_dir / "config.yaml")
    if "LOCAL_RANK" in os.environ:
        from pixelis_verl.sft.trainer import run

        run(config)
        return 0
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    return subprocess.call([*command, "-m", "pixelis_verl.sft.trainer", config])


def _prepare(cfg: DictConfig, overrides: list[str]) -> Path:
    from pixelis_verl.cli import check_processor
    from pixelis_verl.sft.checks import check_sft

    check_sft(cfg)
    if "LOCAL_RANK" in os.environ:
        check_torchrun(cfg, overrides)
    check_processor(cfg.model, "model")
    return prepare_run_dir(cfg)


def main(argv: list[str] | None = None) -> int:
    return recipe_main(
        "python -m pixelis_verl.sft",
        __doc__.splitlines()[0],
        argv,
        _prepare,
        lambda cfg, run_dir: launch(run_dir, int(cfg.trainer.n_gpus_per_node)),
    )


if __name__ == "__main__":
    sys.exit(main())
