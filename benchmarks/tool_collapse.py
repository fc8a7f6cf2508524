"""Does tool use collapse under GRPO? Our curiosity on, curiosity off, and Pixel-Reasoner's rate-based bonus.

Three CPU runs of ``rft_tiny_cpu_long`` (the warm-started tiny Qwen2.5-VL on the synthetic pixel tasks,
verl's GRPO trainer; learning rate 1e-3 so the policy moves within minutes, 4 prompts x 4 rollouts per
step, the KL anchor at 0.01), identical but for the reward:

- ``curiosity``: the pixelis dual reward as shipped (conf/reward/pixelis.yaml);
- ``no_curiosity``: the same with the curiosity weight set to 0;
- ``pixel_reasoner``: the peer's drive, conf/reward/pixel_reasoner.yaml (rate bonus H=0.3, alpha=0.5,
  operation penalty N=1, beta=0.05; our curiosity/coherence/efficiency weights 0).

Each step logs, from the reward's extra info, the fraction of trajectories with a pixel operation
(``pixelis_reward/uses_pixel_ops/mean``), the tool calls per trajectory and the accuracy. The script
prints the per-step table, writes the curves to ``--plot`` and, as its last line, one JSON object:
the tool-use rate over the last quarter of the steps for each drive and the ratio of ours to the
peer's. A tiny random-init model on two cores is not a 7B on GPUs: the question it answers is whether
the drive keeps tool use alive while the policy moves, not how good the policy gets.

Usage: python benchmarks/tool_collapse.py [--steps 40] [--plot docs/img/tool_collapse.png] [overrides...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DRIVES = {
    "curiosity": [],
    "no_curiosity": ["pixelis.reward.components.curiosity.weight=0"],
    "pixel_reasoner": ["reward@_global_=pixel_reasoner"],
}
# The policy must move within a few minutes for collapse to show: 10x the recipe's learning rate, 4 prompts x 4
# rollouts per step (the recipe's KL anchor, 0.01, stays).
COMMON = [
    "actor_rollout_ref.actor.optim.lr=1e-3",
    "data.train_batch_size=4",
    "actor_rollout_ref.actor.ppo_mini_batch_size=4",
]
SERIES = {
    "tool_use_rate": "pixelis_reward/uses_pixel_ops/mean",
    "tool_calls": "pixelis_reward/tool_calls/mean",
    "accuracy": "pixelis_reward/accuracy/mean",
    "curiosity": "pixelis_reward/curiosity/mean",
}


def run(drive: str, steps: int, overrides: list[str]) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as runs:
        cmd = [sys.executable, "-m", "pixelis_verl.train", "--config-name", "rft_tiny_cpu_long"]
        cmd += [f"trainer.total_training_steps={steps}", f"trainer.experiment_name=collapse_{drive}"]
        cmd += [*DRIVES[drive], *overrides]
        start = time.perf_counter()
        proc = subprocess.run(
            cmd, cwd=REPO, env={**os.environ, "PIXELIS_RUNS_DIR": runs}, capture_output=True, text=True
        )
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        (run_dir,) = Path(runs).iterdir()
        records = [json.loads(line)["data"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        print(f"{drive}: {len(records)} steps in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        return {name: [r[key] for r in records] for name, key in SERIES.items()}


def smooth(values: list[float], window: int = 5) -> list[float]:
    """Trailing mean: one step is 16 trajectories, too few to read a rate from."""
    return [statistics.mean(values[max(0, i - window + 1) : i + 1]) for i in range(len(values))]


def plot(curves: dict[str, dict[str, list[float]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for drive, series in curves.items():
        steps = range(1, len(series["tool_use_rate"]) + 1)
        for ax, name in zip(axes, ("tool_use_rate", "tool_calls"), strict=True):
            (line,) = ax.plot(steps, smooth(series[name]), label=drive)
            ax.plot(steps, series[name], color=line.get_color(), alpha=0.25, linewidth=0.8)
    axes[0].set(xlabel="GRPO step", ylabel="trajectories with a pixel op (5-step mean)", ylim=(-0.02, 1.02))
    axes[1].set(xlabel="GRPO step", ylabel="tool calls per trajectory (5-step mean)")
    axes[0].legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "img" / "tool_collapse.png")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides applied to all three runs")
    args = parser.parse_args()

    curves = {drive: run(drive, args.steps, args.overrides) for drive in DRIVES}
    print("step " + " ".join(f"{d + ' rate':>20} {'calls':>6} {'acc':>5}" for d in DRIVES))
    for i in range(args.steps):
        row = [
            f"{c['tool_use_rate'][i]:20.3f} {c['tool_calls'][i]:6.2f} {c['accuracy'][i]:5.2f}" for c in curves.values()
        ]
        print(f"{i + 1:4d} " + " ".join(row))
    date = datetime.date.today().isoformat()
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    plot(curves, args.plot, f"rft_tiny_cpu_long, {args.steps} steps, {machine}, {date}")

    tail = max(1, args.steps // 4)
    final = {d: round(statistics.mean(c["tool_use_rate"][-tail:]), 3) for d, c in curves.items()}
    first = {d: round(statistics.mean(c["tool_use_rate"][:tail]), 3) for d, c in curves.items()}
    peer = final["pixel_reasoner"]
    figures = {
        **{f"{d}_tool_use_rate_first": v for d, v in first.items()},
        **{f"{d}_tool_use_rate_last": v for d, v in final.items()},
        **{f"{d}_accuracy_last": round(statistics.mean(c["accuracy"][-tail:]), 3) for d, c in curves.items()},
        "curiosity_vs_pixel_reasoner_ratio": round(final["curiosity"] / peer, 3) if peer else None,
        "curiosity_vs_no_curiosity_ratio": round(final["curiosity"] / final["no_curiosity"], 3)
        if final["no_curiosity"]
        else None,
        "steps": args.steps,
        "machine": machine,
        "date": date,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
