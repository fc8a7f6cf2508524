"""Evaluate a checkpoint: ``python -m pixelis_verl.evaluate --config-name eval_<benchmark> model.path=… data.path=…``.

Reads the benchmark's local copy with its adapter (``eval.benchmark``), applies the protocol (option order,
samples per question) and writes one parquet of rows for both arms, the pixel tools and the tool-free
control (``pixelis_verl.eval.rows``). Then verl's own trainer runs in validation-only mode over them: the same
agent loop, tools, rollout (hf on CPU, vLLM on GPU) and reward manager as training, which logs every
trajectory. Finally the run directory gets ``report.json``, ``report.md`` (``pixelis_verl.eval.report``) and
``viewer.html`` (``pixelis_verl.eval.viewer``). ``--compare RUN`` prints the changes against an earlier run.
Without a model or data there is no number: a missing file fails before anything runs. A LoRA run's checkpoint
folder as ``model.path`` is evaluated with its adapters merged into the base (``pixelis_verl.merge``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pixelis_verl.cli import check_processor, prepare_run_dir, recipe_main, run
from pixelis_verl.cluster import check_cluster
from pixelis_verl.config import replace_leaves
from pixelis_verl.eval.benchmarks import build_adapter
from pixelis_verl.eval.items import BenchmarkFormatError, BenchmarkItem
from pixelis_verl.eval.protocols import variants
from pixelis_verl.eval.report import Bootstrap, build_report, compare, load_report, markdown, verl_figures, write_report
from pixelis_verl.eval.rows import item_media, variant_row, write_rows
from pixelis_verl.merge import first_line, is_lora_checkpoint, merge_adapters
from pixelis_verl.rewards.trajectory_log import read_trajectories
from pixelis_verl.typed_config import RecipeError

ROWS = "data/rows.parquet"


def load_items(cfg: DictConfig) -> list[BenchmarkItem]:
    """The benchmark's items (the first `eval.protocol.limit`), read by its adapter from `data.path`."""
    root = Path(os.path.expanduser(cfg.data.path))
    synth = cfg.pixelis.get("synth_benchmark")
    if synth is not None and synth.enable:
        from pixelis_verl.eval.synth_benchmark import write_benchmark

        write_benchmark(root, synth.num, synth.seed, list(synth.kinds))
    if not root.is_dir():
        raise RecipeError(f"data.path: '{root}' is not a folder (the local copy of {cfg.eval.benchmark.name})")
    benchmark = cfg.eval.benchmark
    try:
        adapter = build_adapter(
            benchmark.adapter, OmegaConf.to_container(benchmark.get("params") or {}), "eval.benchmark"
        )
        items = adapter.load(root)
    except (BenchmarkFormatError, ValueError) as exc:
        raise RecipeError(str(exc)) from exc
    if not items:
        raise RecipeError(f"data.path: the {benchmark.name} adapter found no questions under '{root}'")
    limit = cfg.eval.protocol.limit
    return items[: int(limit)] if limit else items


def benchmark_rows(cfg: DictConfig, items: list[BenchmarkItem]) -> list[dict[str, Any]]:
    protocol, root = cfg.eval.protocol, Path(os.path.expanduser(cfg.data.path))
    arms = ["tools", "no_tools"] if cfg.eval.control else ["tools"]
    tools = list(cfg.eval.tools) if cfg.eval.tools is not None else None
    media = {item.id: item_media(item, root, int(protocol.video_frames)) for item in items}
    return [
        variant_row(v, media[v.item.id], arm, cfg.eval.benchmark.name, int(protocol.shown_max_pixels), tools)
        for arm in arms
        for v in variants(items, protocol.options, int(protocol.seed))
    ]


def merge_lora_checkpoint(cfg: DictConfig) -> None:
    """A LoRA run's checkpoint as `model.path`: evaluate its adapters merged into the base
    (`pixelis_verl.merge`, into the run directory), everywhere the recipe reads the model path."""
    path = str(cfg.actor_rollout_ref.model.path)
    if not is_lora_checkpoint(path):
        return
    merged = Path(cfg.pixelis.run_dir) / "merged_model"
    if not merged.is_dir():  # a rerun into the same run directory reuses it
        print(f"evaluate: {path} is a LoRA checkpoint; merging its adapters into {merged}", flush=True)
        try:
            merge_adapters(path, merged)
        except Exception as exc:  # a damaged checkpoint fails anywhere in verl, peft or transformers
            raise RecipeError(f"model.path: '{path}' does not merge: {first_line(exc)}") from exc
    replace_leaves(cfg, path, str(merged))
    OmegaConf.update(cfg, "pixelis.lora_checkpoint", path, force_add=True)  # the report names what was merged


def _prepare(cfg: DictConfig, overrides: list[str]) -> Path:
    merge_lora_checkpoint(cfg)
    check_processor(cfg.actor_rollout_ref.model, "actor_rollout_ref.model")
    items = load_items(cfg)
    rows = benchmark_rows(cfg, items)
    run_dir = prepare_run_dir(cfg)
    write_rows(rows, run_dir / ROWS)
    check_cluster(cfg)
    print(f"evaluate: {cfg.eval.benchmark.name}: {len(items)} questions, {len(rows)} rows", flush=True)
    return run_dir


def _meta(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    lora = OmegaConf.select(cfg, "pixelis.lora_checkpoint")
    return ({"lora_checkpoint": lora} if lora else {}) | {
        "benchmark": cfg.eval.benchmark.name,
        "model": cfg.actor_rollout_ref.model.path,
        "data": cfg.data.path,
        "protocol": OmegaConf.to_container(cfg.eval.protocol),
        "level": cfg.eval.bootstrap.level,
        "verl": verl_figures(run_dir, cfg.eval.benchmark.name),
        "run_dir": str(run_dir),
        "command": "python -m pixelis_verl.evaluate " + " ".join(sys.argv[1:]),
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs, {platform.machine()}), "
        f"rollout {cfg.actor_rollout_ref.rollout.name}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def finish(cfg: DictConfig, run_dir: Path, compare_with: str | None = None) -> dict[str, Any]:
    """Report and viewer from the run's trajectories (also usable on a run verl already finished)."""
    from pixelis_verl.eval.viewer import write_viewer

    records = read_trajectories(cfg.pixelis.trajectories.dir)
    if not records:
        raise RuntimeError(f"{cfg.pixelis.trajectories.dir}: no trajectories were logged; see the run's output above")
    report = build_report(records, _meta(cfg, run_dir), Bootstrap(**OmegaConf.to_container(cfg.eval.bootstrap)))
    json_path, md_path = write_report(report, run_dir)
    viewer = write_viewer(
        records, run_dir / "viewer.html",
        tool_config=cfg.actor_rollout_ref.rollout.multi_turn.tool_config_path,
        data_root=cfg.pixelis.data_root,
        trajectories_dir=Path(cfg.pixelis.trajectories.dir),
        title=f"{cfg.eval.benchmark.name}: {cfg.actor_rollout_ref.model.path}",
        max_trajectories=cfg.eval.viewer.max_trajectories,
    )  # fmt: skip
    print(markdown(report))
    print(f"evaluate: wrote {json_path}, {md_path}, {viewer}", flush=True)
    if compare_with:
        print(compare(report, load_report(compare_with)))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--compare", help="an earlier evaluation run directory: print the changes against it")
    known, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if known.compare:
        try:
            load_report(known.compare)
        except FileNotFoundError as exc:
            print(f"evaluate: error: --compare: {exc}", file=sys.stderr)
            return 2

    def _run(cfg: DictConfig, run_dir: Path) -> int:
        run(cfg)
        finish(cfg, run_dir, known.compare)
        return 0

    return recipe_main("python -m pixelis_verl.evaluate", __doc__.splitlines()[0], rest, _prepare, _run)


if __name__ == "__main__":
    sys.exit(main())
