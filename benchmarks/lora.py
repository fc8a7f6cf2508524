"""LoRA against full fine-tuning on this CPU machine: GRPO step time and peak memory, and TTRL's snapshot/rollback.

Part 1 (RFT): ``python -m pixelis_verl.train --config-name rft_learner_cpu`` from the cached learner
(``make learner``; ``rft_tiny_cpu`` on the tiny model with ``--tiny``), ``--steps`` steps once with full
fine-tuning and once with adapters (``conf/lora/adapters.yaml``'s keys at ``--rank``, the vision tower excluded),
in the same run. Steady step = median of verl's ``timing_s/step`` after the first; the actor update alone is
``timing_s/update_actor``. Peak memory = the largest sum of resident memory over the run's process tree (the driver,
Ray and its workers), sampled every 0.5 s.

Part 2 (TTRL): in this process, the same model with AdamW after one update, full and with adapters: the
host-memory snapshot TTRL takes before each update (``ttrl/snapshot.py``) and its rollback, median seconds of
``--repeats``, and bytes held; and the EMA reference's bytes (full: a second copy of the model; LoRA: the
adapters' EMA, ``ttrl/lora_reference.py``).

Usage: python benchmarks/lora.py [--steps 3] [--rank 16] [--repeats 5] [--tiny] [--skip-rft]
Last line: one JSON object with the figures and the LoRA/full ratios, machine, date and command.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import torch
from _report import report
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForImageTextToText

from pixelis_verl.tiny.build import tiny_model_path
from pixelis_verl.tiny.learner import learner_model_path
from pixelis_verl.ttrl.lora_reference import AdapterReference
from pixelis_verl.ttrl.snapshot import Snapshot

REPO = Path(__file__).resolve().parent.parent


def lora_overrides(rank: int) -> list[str]:
    """conf/lora/adapters.yaml's adapters at `rank` (alpha = 2 x rank, as there), on the learner's scale."""
    model = "actor_rollout_ref.model"
    return [f"{model}.lora_rank={rank}", f"{model}.lora_alpha={2 * rank}", f"{model}.target_modules=all-linear",
            f"{model}.exclude_modules=.*visual.*",
            "actor_rollout_ref.actor.checkpoint.save_contents=[model]"]  # no hf_model copy (lora_hf_copy)  # fmt: skip


def _tree_rss(root: psutil.Process) -> int:
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:  # exited between the listing and the reading
            pass
    return total


def rft_run(recipe: str, model: Path, steps: int, extra: list[str]) -> dict[str, float]:
    """One GRPO run: steady step and update seconds, peak resident memory of its process tree."""
    with tempfile.TemporaryDirectory() as work:
        run = Path(work) / "run"
        cmd = [sys.executable, "-m", "pixelis_verl.train", "--config-name", recipe,
               f"actor_rollout_ref.model.path={model}", f"trainer.total_training_steps={steps}",
               "trainer.save_freq=-1", "trainer.test_freq=-1", "trainer.val_before_train=false",
               f"pixelis.run_dir={run}", *extra]  # fmt: skip
        log = (Path(work) / "log").open("w")
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        peak, done = 0, threading.Event()

        def sample() -> None:
            nonlocal peak
            root = psutil.Process(proc.pid)
            while not done.is_set():
                try:
                    peak = max(peak, _tree_rss(root))
                except psutil.Error:
                    return
                done.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        done.set()
        sampler.join()
        log.close()
        if code != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{(Path(work) / 'log').read_text()[-3000:]}")
        records = [json.loads(line)["data"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    steady = [r for r in records if "timing_s/step" in r][1:]
    return {
        "step_s": statistics.median(r["timing_s/step"] for r in steady),
        "update_actor_s": statistics.median(r["timing_s/update_actor"] for r in steady),
        "peak_rss_gib": peak / 1024**3,
    }


def _model(path: Path, rank: int | None) -> tuple[torch.nn.Module, torch.optim.Optimizer, object]:
    torch.manual_seed(0)
    module = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)  # the actor's fp32 weights
    if rank:
        config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear", exclude_modules=".*visual.*")
        module = get_peft_model(module, config)
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    ids = torch.arange(3, 67).unsqueeze(0)
    module(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss.backward()
    optimizer.step()  # Adam's moments exist, as after TTRL's first update
    return module, optimizer, scheduler


def _bytes(value: object) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_bytes(v) for v in value.values())
    if isinstance(value, list):
        return sum(_bytes(v) for v in value)
    return 0


def snapshot_figures(path: Path, rank: int | None, repeats: int) -> dict[str, float]:
    module, optimizer, scheduler = _model(path, rank)
    takes, restores = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        snapshot = Snapshot.take(module, optimizer, scheduler)
        takes.append(time.perf_counter() - start)
        start = time.perf_counter()
        snapshot.restore(module, optimizer, scheduler)
        restores.append(time.perf_counter() - start)
    held = _bytes(snapshot.weights) + _bytes(snapshot.states)
    reference = _bytes(AdapterReference(module).ema) if rank else _bytes(list(module.state_dict().values()))
    return {
        "snapshot_s": statistics.median(takes),
        "rollback_s": statistics.median(restores),
        "snapshot_mib": held / 1024**2,
        "ema_reference_mib": reference / 1024**2,
        "trained_parameters": sum(p.numel() for p in module.parameters() if p.requires_grad),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="GRPO steps per run (the first is dropped)")
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank")
    parser.add_argument("--repeats", type=int, default=5, help="snapshot/rollback repeats")
    parser.add_argument("--tiny", action="store_true", help="the tiny model and rft_tiny_cpu, not the learner")
    parser.add_argument("--skip-rft", action="store_true", help="part 2 only (no GRPO runs)")
    args = parser.parse_args()
    model = tiny_model_path("qwen2_5_vl") if args.tiny else learner_model_path()
    recipe = "rft_tiny_cpu" if args.tiny else "rft_learner_cpu"
    figures: dict[str, object] = {"model": str(model), "recipe": recipe, "rank": args.rank, "steps": args.steps}
    arms = {"full": None, "lora": args.rank}
    for arm, rank in arms.items():
        figures |= {f"ttrl_{arm}_{k}": v for k, v in snapshot_figures(model, rank, args.repeats).items()}
    if not args.skip_rft:
        for arm, rank in arms.items():
            extra = lora_overrides(rank) if rank else []
            figures |= {f"rft_{arm}_{k}": v for k, v in rft_run(recipe, model, args.steps, extra).items()}
    for key in ("rft_step_s", "rft_update_actor_s", "rft_peak_rss_gib", "ttrl_snapshot_s", "ttrl_rollback_s",
                "ttrl_snapshot_mib", "ttrl_ema_reference_mib", "ttrl_trained_parameters"):  # fmt: skip
        prefix, name = key.split("_", 1)
        full, lora = figures.get(f"{prefix}_full_{name}"), figures.get(f"{prefix}_lora_{name}")
        if full and lora is not None:
            figures[f"ratio_lora_over_full_{key}"] = lora / full
    report(figures, "python benchmarks/lora.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
