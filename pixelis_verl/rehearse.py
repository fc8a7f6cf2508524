"""Rehearse the GPU recipes on this CPU machine: ``python -m pixelis_verl.rehearse [RECIPE ...]`` (``make rehearse``).

Each GPU recipe runs through its own entry with ``--rehearse`` (`config.rehearsal_overrides`: the tiny model of
its family, cpu_local, a small scale; everything else the recipe's), on data made the documented way: CoTA
traces synthesised by the data CLI with the family's tools and fused into the SFT and RL parquet the recipes'
data groups read, a synthetic request stream for TTRL, and for each evaluation recipe the synthetic tasks its
benchmark's layout holds, written by its adapter as the authors publish the benchmark.
A rehearsal passes when the entry exits 0, its metrics log a step and every checkpoint the recipe saves loads as
a Hugging Face model. One line per recipe, then one JSON line with every result, machine and date.

A rehearsal that fails is a defect the first cluster run would have met after its queue time; a rehearsal that
needed a change to a GPU recipe is listed in docs/cluster.md ("Rehearsing the GPU recipes").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from pixelis_verl.config import (
    CONF_DIR,
    PHASE_ENTRIES,
    RECIPES_DIR,
    compose_recipe,
    recipe_family,
    recipe_phase,
    register_resolvers,
)
from pixelis_verl.merge import META, first_line, merge_adapters


def gpu_recipes() -> list[str]:
    """Every recipe that is not a CPU one (``*_cpu*``): the ones a cluster runs."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml") if "_cpu" not in p.stem)


def phase_and_family(cfg: DictConfig) -> tuple[str, str]:
    """What a composed GPU recipe runs (config.recipe_phase) and the model family it is set up for (its tiny model
    stands in for it)."""
    return recipe_phase(cfg), recipe_family(cfg)


def prepare_data(work: Path, family: str) -> dict[str, str]:
    """Traces, fused parquet and a stream for `family`, made once; the environment that points the recipes' data
    groups at them. Traces use the family's tiny model group: its tools and its view size."""
    from pixelis_verl.data.__main__ import main as data_cli
    from pixelis_verl.ttrl.synth_stream import write_stream

    root = work / "data" / family
    cota = root / "cota"
    if not (cota / "rl_val.parquet").exists():
        register_resolvers()  # the group names its tool config through ${pixelis_root:}
        group = OmegaConf.load(CONF_DIR / "model" / f"tiny_{family}.yaml")
        tools = OmegaConf.select(group, "actor_rollout_ref.rollout.multi_turn.tool_config_path")
        shown = OmegaConf.select(group, "pixelis.synth_data.shown_max_pixels")
        view = ["--model", f"tiny:{family}", "--max-pixels", str(shown), "--tools", tools]
        if data_cli(["synth", "--out", str(root / "synth"), "--num", "24", "--seed", "0", *view]) != 0:
            raise RuntimeError(f"rehearse: synthesising {family} traces failed")
        fuse = ["fuse", "--source", f"{root / 'synth'}:1", "--out", str(cota), "--val-fraction", "0.25"]
        if data_cli([*fuse, "--rl-fraction", "0.5", "--tools", tools]) != 0:
            raise RuntimeError(f"rehearse: fusing {family} traces failed")
    stream = root / "stream" / "requests.jsonl"
    if not stream.exists():
        write_stream(stream, root / "stream", 8, 0, ["text", "colour", "sign"], bad_every=4, select_tools=True)
    return {
        "PIXELIS_RL_DATA": str(cota),
        "PIXELIS_SFT_DATA": str(cota),
        "PIXELIS_TTRL_STREAM": str(stream),
        "PIXELIS_TTRL_MEDIA": str(root / "stream"),
    }


def benchmark_data(cfg: DictConfig, work: Path) -> Path:
    """The folder an evaluation recipe's ``data.path`` names: the synthetic tasks its benchmark's layout holds
    (`synth_benchmark.public_items`), written by the recipe's adapter as the authors publish the benchmark (its
    `export`), so that the run reads them through the same adapter and files a cluster run reads."""
    from pixelis_verl.eval.benchmarks import build_adapter
    from pixelis_verl.eval.synth_benchmark import public_items

    benchmark = cfg.eval.benchmark
    where = f"eval.benchmark[{benchmark.name}]"
    adapter = build_adapter(benchmark.adapter, OmegaConf.to_container(benchmark.params, resolve=True), where)
    folder = work / "data" / "benchmarks" / str(benchmark.name)
    shutil.rmtree(folder, ignore_errors=True)  # written afresh: a folder an interrupted export left is not read
    if not adapter.export(public_items(work / "data" / "public", seed=0), folder):
        raise RuntimeError(f"rehearse: no synthetic task fits the {benchmark.name} layout")
    return folder


def _hf_folders(run_dir: Path) -> list[Path]:
    """Every Hugging Face model folder the run saved (a config.json next to safetensors weights)."""
    folders = {p.parent for p in (run_dir / "checkpoints").rglob("config.json")}
    return sorted(f for f in folders if any(f.glob("*.safetensors")))


def check_run(run_dir: Path, phase: str) -> str:
    """'' when the run logged a step, saved a checkpoint (verl's shards; a Hugging Face model too where the recipe
    saves one; an evaluation: its report) and every saved Hugging Face model loads (a LoRA checkpoint: once merged by
    `pixelis_verl.merge`); else what is wrong, in one line."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    metrics = run_dir / "metrics.jsonl"
    if not metrics.exists() or not metrics.read_text().strip():
        return "no step in metrics.jsonl"
    if phase == "eval":  # an evaluation trains nothing: its product is the report
        return "" if (run_dir / "report.json").is_file() else "no report.json"
    folders = _hf_folders(run_dir)  # saved where the recipe's save_contents ask for hf_model
    if not folders and not any((run_dir / "checkpoints").rglob("model_world_size_*")):
        return "no checkpoint under checkpoints/"
    for adapters in sorted(p.parent for p in (run_dir / "checkpoints").rglob(META)):  # LoRA: loads once merged
        merged = run_dir / "merged" / "_".join(adapters.relative_to(run_dir).parts)
        try:
            folders.append(merge_adapters(adapters, merged))
        except Exception as exc:  # any failure to merge is the finding
            return f"{adapters.relative_to(run_dir)} does not merge: {type(exc).__name__}: {first_line(exc)}"
    for folder in folders:
        try:
            AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(folder))
            AutoModelForImageTextToText.from_pretrained(folder)
        except Exception as exc:  # any failure to load is the finding
            return f"{folder.relative_to(run_dir)} does not load: {type(exc).__name__}: {first_line(exc)}"
    return ""


def rehearse(recipe: str, phase: str, work: Path, env: dict[str, str], timeout: int, extra: list[str]) -> dict:
    """One recipe through its entry with ``--rehearse`` (and `extra` overrides), its log under `work`/logs; its
    verdict by `check_run`."""
    run_dir = work / "runs" / recipe
    command = [sys.executable, "-m", PHASE_ENTRIES[phase], "--config-name", recipe, "--rehearse",
               f"pixelis.run_dir={run_dir}", *extra]  # fmt: skip
    log = work / "logs" / f"{recipe}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with log.open("w") as out:
        try:
            code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env},
                                   timeout=timeout)  # fmt: skip
        except subprocess.TimeoutExpired:
            code = 124
    seconds = round(time.monotonic() - start, 1)
    problem = f"exit {code} (log: {log})" if code else check_run(run_dir, phase)
    return {"recipe": recipe, "ok": not problem, "seconds": seconds, "problem": problem or None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pixelis_verl.rehearse", description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", help="GPU recipes to rehearse (default: every one)")
    parser.add_argument("--work", type=Path, default=Path("runs") / "rehearse", help="data, runs and logs go here")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per rehearsal")
    args = parser.parse_args(argv)
    recipes = args.recipes or gpu_recipes()
    unknown = sorted(set(recipes) - set(gpu_recipes()))
    if unknown:
        print(f"rehearse: error: not GPU recipes: {unknown}; they are {gpu_recipes()}", file=sys.stderr)
        return 2
    work = args.work.resolve()
    results = []
    for recipe in recipes:
        cfg = compose_recipe(recipe)
        phase, family = phase_and_family(cfg)
        extra = [f"data.path={benchmark_data(cfg, work)}"] if phase == "eval" else []
        result = rehearse(recipe, phase, work, prepare_data(work, family), args.timeout, extra)
        results.append(result)
        verdict = "ok" if result["ok"] else f"FAILED: {result['problem']}"
        print(f"rehearse {recipe}: {verdict} ({result['seconds']} s)", flush=True)
    summary = {
        "rehearsed": len(results),
        "passed": sum(r["ok"] for r in results),
        "results": results,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "command": "python -m pixelis_verl.rehearse " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    print(json.dumps(summary))
    return 0 if summary["passed"] == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
