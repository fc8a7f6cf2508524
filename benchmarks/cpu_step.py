"""Seconds per GRPO step of the tiny Qwen2.5-VL on this CPU machine, verl's v1 trainer against v0.

Runs ``python -m pixelis_verl.train --config-name rft_tiny_cpu`` once per trainer (v1 = verl's
default TransferQueue trainer, v0 = the deprecated ``RayPPOTrainer``), drops the first step
(warm-up), and reports the median of the rest from verl's own timing metrics:

- generation: wall time of the rollout phase; tool calls and the reward run inside it, streamed
  per trajectory by verl's agent loop, so they are also reported on their own from the agent
  loop's per-trajectory timers (v0 only: v1 does not export them);
- update: old log-probs + reference log-probs + advantages + actor update + weight sync.

With ``--phase sft`` it times phase 1 instead: ``python -m pixelis_verl.sft`` on the shipped ``sft_tiny_cpu``
(tiny model, the seven-kind trace mix) and on ``sft_learner_cpu`` (the random learner base, card traces), each
run twice, for 2 steps and for ``--sft-steps``; the difference of the two wall times over the extra steps is the
steady step (start-up, synthesis, the last validation and the checkpoint cancel out). verl's SFT metrics carry
tokens per step, not times.

With ``--phase learner-rl`` it times GRPO at the learning batch: ``rft_learner_cpu`` (8 prompts x 8 rollouts)
from the cached learner (``make learner``), once as the recipe was before the speed work (``BEFORE_SPEED_WORK``:
the overrides that restore it) and once as shipped, in the same run; steady step = median after the first.

Usage: python benchmarks/cpu_step.py [--phase rl|sft|learner-rl] [--steps 5] [--sft-steps 10] [extra overrides...]
Last line: one JSON object with the figures (rl: and the v1/v0 step-time ratio; learner-rl: before/after ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

from pixelis_verl.run_metrics import read_metrics_file
from pixelis_verl.tiny.build import build_tiny_model

REPO = Path(__file__).resolve().parent.parent
UPDATE_KEYS = ("old_log_prob", "ref", "adv", "update_actor", "update_weights")
TRAINERS = {"v1": "trainer.use_v1=true", "v0": "trainer.use_v1=false"}
# rft_learner_cpu before the speed work (docs/results.md section 4): old log-probs recomputed by the actor.
BEFORE_SPEED_WORK = ["algorithm.rollout_correction.bypass_mode=false"]


def run_trainer(flag: str, steps: int, overrides: list[str], recipe: str = "rft_tiny_cpu") -> tuple[list[dict], float]:
    with tempfile.TemporaryDirectory() as runs:
        cmd = [sys.executable, "-m", "pixelis_verl.train", "--config-name", recipe]
        cmd += [f"trainer.total_training_steps={steps}", flag, *overrides]
        start = time.perf_counter()
        proc = subprocess.run(
            cmd, cwd=REPO, env={**os.environ, "PIXELIS_RUNS_DIR": runs}, capture_output=True, text=True
        )
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        (run_dir,) = Path(runs).iterdir()
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return [json.loads(line)["data"] for line in lines], wall


def summarize(records: list[dict]) -> dict[str, float | None]:
    steady = records[1:] or records

    def median(key_fn) -> float | None:
        values = [key_fn(r) for r in steady]
        return None if any(v is None for v in values) else round(statistics.median(values), 3)

    def agent_loop(name: str):
        # mean seconds per trajectory, from verl's agent-loop timers (absent in v1's metrics)
        return lambda r: r.get(f"timing_s/agent_loop/{name}/mean")

    return {
        "step_s": median(lambda r: r["timing_s/step"]),
        **{f"{k}_s": median(lambda r, k=k: r.get(f"timing_s/{k}", 0.0)) for k in UPDATE_KEYS},
        "generation_s": median(lambda r: r["timing_s/gen"]),
        "update_s": median(lambda r: sum(r.get(f"timing_s/{k}", 0.0) for k in UPDATE_KEYS)),
        "per_trajectory_generate_s": median(agent_loop("generate_sequences")),
        "per_trajectory_tools_s": median(agent_loop("tool_calls")),
        "per_trajectory_reward_s": median(agent_loop("compute_score")),
        "response_tokens_mean": median(lambda r: r["response_length/mean"]),
        "num_turns_mean": median(lambda r: r["num_turns/mean"]),
    }


def sft_wall(recipe: list[str], steps: int) -> tuple[float, float, int]:
    """(wall seconds, mean tokens per step, traces per step) of one SFT run of `steps` steps."""
    with tempfile.TemporaryDirectory() as runs:
        cmd = [sys.executable, "-m", "pixelis_verl.sft", *recipe, f"trainer.total_training_steps={steps}"]
        cmd += ["trainer.test_freq=-1", f"pixelis.run_dir={runs}/run"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        run = Path(runs) / "run"
        records = read_metrics_file(run / "metrics.jsonl").values()
        tokens = statistics.mean(r["train/global_tokens"] for r in records if "train/global_tokens" in r)
        return wall, tokens, int(OmegaConf.load(run / "config.yaml").data.train_batch_size)


def sft_figures(steps: int) -> dict[str, object]:
    result: dict[str, object] = {"sft_steps": steps}
    with tempfile.TemporaryDirectory() as base:
        learner = build_tiny_model("qwen3_vl", Path(base) / "learner", warm_start=False, size="learner")
        setups = {
            "sft_tiny": ["--config-name", "sft_tiny_cpu"],
            "sft_learner": ["--config-name", "sft_learner_cpu", f"model.path={learner}",
                            "pixelis.sft_data.num_train=64", "pixelis.sft_data.num_val=16"],
        }  # fmt: skip
        for name, recipe in setups.items():
            short, _, _ = sft_wall(recipe, 2)
            long, tokens, batch = sft_wall(recipe, steps)
            step_s = (long - short) / (steps - 2)
            figures = {"step_s": round(step_s, 3), "traces_per_s": round(batch / step_s, 3),
                       "tokens_per_s": round(tokens / step_s, 1), "tokens_per_step": round(tokens),
                       "traces_per_step": batch, "wall_s": round(long, 1)}  # fmt: skip
            print(f"{name}: {figures}")
            result.update({f"{name}_{k}": v for k, v in figures.items()})
    return result


def learner_rl_figures(steps: int, overrides: list[str]) -> dict[str, object]:
    from pixelis_verl.tiny.learner import learner_model_path

    model = f"actor_rollout_ref.model.path={learner_model_path()}"
    result: dict[str, object] = {"steps": steps}
    for name, arm in (("before", BEFORE_SPEED_WORK), ("after", [])):
        records, wall = run_trainer(model, steps, [*arm, *overrides], recipe="rft_learner_cpu")
        summary = summarize(records)
        print(f"{name}: {summary} (wall incl. Ray start {wall:.0f} s)")
        result.update({f"{name}_{k}": v for k, v in summary.items()})
    result["speedup"] = round(result["before_step_s"] / result["after_step_s"], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--phase",
        choices=["rl", "sft", "learner-rl"],
        default="rl",
        help="GRPO of the tiny model (v1 vs v0), phase-1 SFT, or GRPO of the learner (before vs after)",
    )
    parser.add_argument("--steps", type=int, default=5, help="GRPO steps per trainer; the first is dropped")
    parser.add_argument("--sft-steps", type=int, default=10, help="SFT steps of the long run (the short one: 2)")
    args, overrides = parser.parse_known_args()
    result: dict[str, object] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "date": time.strftime("%Y-%m-%d"),
    }
    if args.phase == "sft":
        result |= sft_figures(args.sft_steps)
        print(json.dumps(result))
        return
    if args.phase == "learner-rl":
        result |= learner_rl_figures(args.steps, overrides)
        print(json.dumps(result))
        return
    result["steps"] = args.steps
    for name, flag in TRAINERS.items():
        records, wall = run_trainer(flag, args.steps, overrides)
        summary = summarize(records)
        print(f"{name}: {summary} (wall incl. Ray start {wall:.0f} s)")
        result.update({f"{name}_{k}": v for k, v in summary.items()})
        result[f"{name}_wall_s"] = round(wall, 1)
    result["v1_vs_v0_step_ratio"] = round(result["v1_step_s"] / result["v0_step_s"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
