"""Does it learn? GRPO's learning signal on the tiny model, and the learner's phase-1 result against chance.

Part 1 (signal): the tiny Qwen2.5-VL's phase-1 checkpoint (``sft_tiny_cpu``, 8 steps, made here), then ``--runs``
runs of ``rft_signal_tiny_cpu``: GRPO paying one reachable behaviour (a well-formed ``zoom_in`` call), its rate
measured by verl's validation on the same 16 questions x 4 samples before the first update and after the last.
The baseline is the policy before training, in the same run. This is what the CI learning test checks once.

Part 2 (learner): the learner model tier (``make learner``; built here when missing, ~45 minutes), evaluated by
``python -m pixelis_verl.evaluate --config-name eval_learner_cpu``: with-tools accuracy beside the tool-free
control of the same run, bootstrap intervals, well-formed and answered rates, against chance (1/6).

Not yet (issue 17): GRPO on the learner from its SFT checkpoint, three seeds, and the same GRPO budget for a
tool-free policy as the control.

Usage: python benchmarks/learning.py [--runs 3] [--skip-learner] [--plot docs/img/learning_signal.png]
Last line: one JSON object with the figures, machine, date and command.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _report import report

from pixelis_verl.run_metrics import read_metrics_file
from pixelis_verl.runtime.learner import learner_model_path, read_marker

REPO = Path(__file__).resolve().parent.parent
VAL_RATE = "val-aux/pixelis/synth_pixel/tool_bonus/mean@4"
TRAIN_RATE = "pixelis_reward/tool_bonus/mean"
CHANCE = 1 / 6  # six dot colours


def _run(module: str, args: list[str], runs: Path) -> Path:
    """One entry point run into a fresh runs folder; returns its run directory."""
    runs.mkdir(parents=True)
    cmd = [sys.executable, "-m", module, *args]
    proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, "PIXELIS_RUNS_DIR": str(runs)}, capture_output=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr.decode(errors='replace')[-3000:]}")
    (run_dir,) = runs.iterdir()
    return run_dir


def signal(runs: int, work: Path) -> tuple[dict, list[list[float]]]:
    sft = _run("pixelis_verl.sft", ["--config-name", "sft_tiny_cpu"], work / "sft")
    checkpoint = sft / "checkpoints" / "global_step_8" / "huggingface"
    before, after, curves = [], [], []
    for i in range(runs):
        args = ["--config-name", "rft_signal_tiny_cpu", f"actor_rollout_ref.model.path={checkpoint}"]
        metrics = read_metrics_file(_run("pixelis_verl.train", args, work / f"signal_{i}") / "metrics.jsonl")
        last = max(metrics)
        before.append(metrics[0][VAL_RATE])
        after.append(metrics[last][VAL_RATE])
        curves.append([metrics[s][TRAIN_RATE] for s in range(1, last + 1)])
        print(f"signal run {i}: {before[-1]:.3f} -> {after[-1]:.3f}", file=sys.stderr, flush=True)
    gains = [a - b for a, b in zip(after, before, strict=True)]
    figures = {
        "signal_runs": runs,
        "signal_val_rate_before": [round(v, 4) for v in before],
        "signal_val_rate_after": [round(v, 4) for v in after],
        "signal_gain_min": min(gains),
        "signal_gain_mean": statistics.mean(gains),
    }
    return figures, curves


def learner(work: Path) -> dict:
    path = learner_model_path("qwen2_5_vl")  # builds it when missing
    marker = read_marker(path)
    run_dir = _run("pixelis_verl.evaluate", ["--config-name", "eval_learner_cpu", f"model.path={path}"], work / "eval")
    arms = json.loads((run_dir / "report.json").read_text())["arms"]
    tools, control = arms["tools"], arms["no_tools"]
    return {
        "learner_sft_steps": marker["sft_steps"],
        "learner_build_s": marker["build_seconds"],
        "learner_tools_accuracy": tools["accuracy"],
        "learner_tools_ci": tools["ci"],
        "learner_tool_free_accuracy": control["accuracy"],
        "learner_tool_free_ci": control["ci"],
        "learner_questions": tools["questions"],
        "learner_well_formed_rate": tools["toolchain"]["well_formed_rate"],
        "learner_answered_rate": tools["toolchain"]["answered_rate"],
        "chance": CHANCE,
    }


def plot(curves: list[list[float]], figures: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    for i, curve in enumerate(curves):
        (line,) = ax.plot(range(1, len(curve) + 1), curve, marker=".", label=f"run {i}: training rate")
        before, after = figures["signal_val_rate_before"][i], figures["signal_val_rate_after"][i]
        ax.plot(
            [0, len(curve)], [before, after], "s--", color=line.get_color(), alpha=0.6, label=f"run {i}: validation"
        )
    ax.set(xlabel="GRPO step", ylabel="well-formed zoom_in call rate", ylim=(-0.02, 1.02))
    ax.set_title("rft_signal_tiny_cpu (tiny Qwen2.5-VL, 4 prompts x 8 rollouts)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="GRPO runs of the learning signal")
    parser.add_argument("--skip-learner", action="store_true", help="part 1 only (no learner build or evaluation)")
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "img" / "learning_signal.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pixelis-learning-") as work:
        figures, curves = signal(args.runs, Path(work))
        plot(curves, figures, args.plot)
        if not args.skip_learner:
            figures |= learner(Path(work))
    report(figures, "python benchmarks/learning.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
