"""Supervised fine-tuning with a recipe: ``python -m pixelis_verl.sft --config-name <recipe> [key=value ...]``.

Composes ``recipes/<recipe>.yaml`` over verl's ``sft_trainer_engine`` config, checks it, prepares the run
directory (resolved config, metrics JSONL, checkpoints, and, when the recipe asks for it, a synthesised
CoTA set rendered to SFT parquet), then runs verl's SFT trainer with our loss on
``trainer.n_gpus_per_node`` ranks through ``torchrun``. Started by torchrun already (a multi-node job), it
trains in this process instead; every rank then composes the recipe itself, so the run directory must be
given (``pixelis.run_dir=<shared path>``) and the data must exist already.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from pixelis_verl.config import RecipeError, check, check_paths, compose_recipe, resolve


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pixelis_verl.sft", description=__doc__.splitlines()[0])
    parser.add_argument("--config-name", "-cn", required=True, help="recipe name, a file in recipes/ without .yaml")
    parser.add_argument("--cfg", choices=["job"], help="print the resolved config and exit")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. trainer.total_training_steps=2")
    return parser.parse_args(argv)


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
    os.environ["VERL_FILE_LOGGER_PATH"] = str(run_dir / "metrics.jsonl")
    config = str(run_dir / "config.yaml")
    if "LOCAL_RANK" in os.environ:
        from pixelis_verl.sft.trainer import run

        run(config)
        return 0
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    return subprocess.call([*command, "-m", "pixelis_verl.sft.trainer", config])


def main(argv: list[str] | None = None) -> int:
    from pixelis_verl.sft.checks import check_sft
    from pixelis_verl.train import check_processor

    args = _parse(sys.argv[1:] if argv is None else argv)
    try:
        cfg = compose_recipe(args.config_name, args.overrides)
        cfg.pixelis.run_dir = str(Path(os.path.expanduser(cfg.pixelis.run_dir)).resolve())
        cfg = resolve(cfg)
        if args.cfg == "job":
            print(OmegaConf.to_yaml(cfg))
            return 0
        check(cfg)
        check_sft(cfg)
        if "LOCAL_RANK" in os.environ:
            check_torchrun(cfg, args.overrides)
        check_processor(cfg.model, "model")
        run_dir = prepare_run_dir(cfg)
        check_paths(cfg)
    except RecipeError as exc:
        print(f"pixelis_verl.sft: error: {exc}", file=sys.stderr)
        return 2
    print(f"pixelis_verl.sft: recipe {args.config_name}, run directory {run_dir}", flush=True)
    code = launch(run_dir, int(cfg.trainer.n_gpus_per_node))
    print(f"pixelis_verl.sft: {'done' if code == 0 else f'failed ({code})'}; run directory: {run_dir}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
