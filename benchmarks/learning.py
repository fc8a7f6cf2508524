"""Does it learn? GRPO's learning signal on the tiny model, and the learner's phase-1 result against chance.

Part 1 (signal): the tiny Qwen2.5-VL's phase-1 checkpoint (``sft_tiny_cpu``, 8 steps, made here), then ``--runs``
runs of ``rft_signal_tiny_cpu``: GRPO paying one reachable behaviour (a well-formed ``zoom_in`` call), its rate
measured by verl's validation on the same 16 questions x 4 samples before the first update and after the last.
The baseline is the policy before training, in the same run. This is what the CI learning test checks once.

Part 2 (learner): the learner model tier (``make learner``; built here when missing, ~45 minutes), evaluated by
``python -m pixelis_verl.evaluate --config-name eval_learner_cpu``: with-tools accuracy beside the tool-free
control of the same run, bootstrap intervals, well-formed and answered rates, against chance (1/6).

Part 3 (GRPO on the learner): per seed, ``rft_learner_cpu`` (GRPO with the ``pixelis`` reward manager paying
accuracy, lr 3e-5, rows offering ``zoom_in``; 36 steps, ~55 minutes each here) from the learner's SFT
checkpoint, then the same evaluation of its last checkpoint; and the same budget for a tool-free policy
(``pixelis.synth_data.tool_free=true``: rows offer no tools) as the control. The gain of each is paired by
question against the SFT checkpoint's evaluation (the tools policy on the tool arm, the tool-free policy on the
tool-free arm), with a bootstrap interval. Curves per GRPO step (accuracy, the share of trajectories with a
successful pixel operation, malformed calls, reward components) go to a PNG.

Usage: python benchmarks/learning.py [--runs 3] [--seeds 0 1 2] [--grpo-steps 36] [--skip-signal]
       [--skip-learner] [--skip-grpo] [--policies tools tool_free] [--sft-eval RUN_DIR]
       [--grpo-override KEY=VALUE ...] [--plot docs/img/learning_signal.png] [--grpo-plot docs/img/learning_grpo.png]
       [--sft-plot docs/img/learner_sft_loss.png]
Last line: one JSON object with the figures, machine, date and command.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _report import report

from pixelis_verl.eval.report import Bootstrap, arm_scores, paired_delta
from pixelis_verl.rewards.trajectory_log import read_trajectories
from pixelis_verl.run_metrics import read_metrics_file
from pixelis_verl.tiny.learner import learner_model_path, read_marker

REPO = Path(__file__).resolve().parent.parent
VAL_RATE = "val-aux/pixelis/synth_pixel/tool_bonus/mean@4"
TRAIN_RATE = "pixelis_reward/tool_bonus/mean"
CHANCE = 1 / 6  # six dot colours
POLICIES = {"tools": [], "tool_free": ["pixelis.synth_data.tool_free=true"]}  # GRPO policy -> overrides
ARM_OF = {"tools": "tools", "tool_free": "no_tools"}  # the evaluation arm each policy is judged on
CURVES = {  # panel -> training metric (pixelis_reward/<key>/mean: the trajectories of each GRPO step)
    "accuracy": "pixelis_reward/acc/mean",
    "trajectories with a pixel operation": "pixelis_reward/uses_pixel_ops/mean",
    "malformed calls per trajectory": "pixelis_reward/malformed_calls/mean",
}
COMPONENTS = ("accuracy", "curiosity", "coherence", "efficiency", "validity")
REGION = re.compile(r"\[(\d+), (\d+), (\d+), (\d+)\]")  # a region as card questions write it


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


def evaluate(model: Path, runs: Path) -> Path:
    """``eval_learner_cpu`` on `model` (tool arm and tool-free control); returns the run directory."""
    return _run("pixelis_verl.evaluate", ["--config-name", "eval_learner_cpu", f"model.path={model}"], runs)


def plot_sft(metrics_path: Path, path: Path) -> None:
    """The learner build's phase-1 curve: training loss per step, validation loss at each test step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = read_metrics_file(metrics_path)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for key, style in (("train/loss", "-"), ("val/loss", "o--")):
        found = sorted(s for s in steps if key in steps[s])
        ax.plot(found, [steps[s][key] for s in found], style, label=key)
    ax.set(xlabel="SFT step", ylabel="loss (token-weighted)", yscale="log")
    ax.set_title("learner phase 1: sft_learner_cpu (make learner)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def diagnose(run_dir: Path) -> dict:
    """What the tool arm's trajectories did: the share whose first call zooms a region the question names (its
    numbers copied exactly), and the share of the most common answer (a policy that ignores the zoom answers one
    colour)."""
    records = [r for r in read_trajectories(run_dir / "trajectories") if (r.get("item") or {}).get("arm") == "tools"]
    copied, answers = 0, Counter()
    for record in records:
        regions = [[int(v) for v in m] for m in REGION.findall(str(record["item"].get("question", "")))]
        calls = [c for turn in record.get("turns") or [] for c in turn.get("calls") or [] if c.get("arguments")]
        copied += bool(calls) and calls[0]["arguments"].get("bbox_2d") in regions
        answers[record.get("pred")] += 1
    mode, count = answers.most_common(1)[0] if answers else (None, 0)
    return {"region_copied_rate": copied / max(len(records), 1), "top_answer": mode,
            "top_answer_share": count / max(len(records), 1)}  # fmt: skip


def learner(work: Path, sft_plot: Path, sft_eval: Path | None = None) -> tuple[dict, Path, Path]:
    """Part 2: the SFT checkpoint's evaluation (or `sft_eval`, an evaluation run of the same build made before);
    returns the figures, the model and the evaluation's run dir."""
    path = learner_model_path()  # the default family; builds it when missing
    marker = read_marker(path)
    plot_sft(path / "sft_run" / "metrics.jsonl", sft_plot)
    if sft_eval is not None:
        evaluated = Path(json.loads((sft_eval / "report.json").read_text())["model"])
        weights = "model.safetensors"
        if (evaluated / weights).read_bytes() != (path / weights).read_bytes():
            sys.exit(f"--sft-eval {sft_eval}: evaluates {evaluated}, whose weights are not the build's ({path})")
    run_dir = sft_eval or evaluate(path, work / "eval")
    arms = json.loads((run_dir / "report.json").read_text())["arms"]
    tools, control = arms["tools"], arms["no_tools"]
    figures = {
        "learner_family": marker["family"],
        "learner_sft_steps": marker["sft_steps"],
        "learner_build_s": marker["build_seconds"],
        "learner_tools_accuracy": tools["accuracy"],
        "learner_tools_ci": tools["ci"],
        "learner_tool_free_accuracy": control["accuracy"],
        "learner_tool_free_ci": control["ci"],
        "learner_questions": tools["questions"],
        "learner_well_formed_rate": tools["toolchain"]["well_formed_rate"],
        "learner_answered_rate": tools["toolchain"]["answered_rate"],
        "learner_accuracy_by_level": {k: v["accuracy"] for k, v in tools["categories"].items()},
        "chance": CHANCE,
    } | {f"learner_{k}": v for k, v in diagnose(run_dir).items()}
    return figures, path, run_dir


def grpo(
    model: Path, sft_eval: Path, seeds: list[int], steps: int, work: Path, policies: list[str], extra: list[str]
) -> tuple[dict, dict]:
    """Part 3: per seed and policy, GRPO from the SFT checkpoint, then its evaluation paired with the SFT one.
    `extra` are overrides of `rft_learner_cpu` every run gets (a step size, reward weights)."""
    before = arm_scores(read_trajectories(sft_eval / "trajectories"))
    bootstrap = Bootstrap(resamples=2000)
    figures: dict = {"grpo_seeds": seeds, "grpo_steps": steps, "grpo_overrides": extra}
    curves: dict = {}
    for policy in policies:
        overrides = POLICIES[policy]
        arm, gains, accuracies, minutes = ARM_OF[policy], [], [], []
        for seed in seeds:
            start = time.monotonic()
            args = ["--config-name", "rft_learner_cpu", f"actor_rollout_ref.model.path={model}", f"data.seed={seed}"]
            args += [f"trainer.total_training_steps={steps}", *overrides, *extra]
            run = _run("pixelis_verl.train", args, work / f"grpo_{policy}_{seed}")
            minutes.append((time.monotonic() - start) / 60)
            curves[(policy, seed)] = read_metrics_file(run / "metrics.jsonl")
            checkpoint = run / "checkpoints" / f"global_step_{steps}" / "actor" / "huggingface"
            after = arm_scores(read_trajectories(evaluate(checkpoint, work / f"eval_{policy}_{seed}") / "trajectories"))
            gain = paired_delta(after[arm], before[arm], bootstrap)
            gains.append(gain)
            accuracies.append(sum(after[arm].values()) / len(after[arm]))
            print(f"grpo {policy} seed {seed}: {gain}", file=sys.stderr, flush=True)
        figures[f"grpo_{policy}_accuracy_after"] = accuracies
        figures[f"grpo_{policy}_gain"] = [g["accuracy"] for g in gains]
        figures[f"grpo_{policy}_gain_ci"] = [g["ci"] for g in gains]
        figures[f"grpo_{policy}_minutes"] = [round(m, 1) for m in minutes]
    return figures, curves


def plot_grpo(curves: dict, path: Path) -> None:
    """Per GRPO step, each seed's tools and tool-free policy: accuracy, pixel operations, malformed calls; and the
    tools policy's reward components (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4))
    for ax, (title, key) in zip(axes.flat, CURVES.items(), strict=False):
        for (policy, seed), metrics in curves.items():
            steps = sorted(s for s in metrics if key in metrics[s])
            style = "-" if policy == "tools" else ":"
            ax.plot(steps, [metrics[s][key] for s in steps], style, marker=".", label=f"{policy} seed {seed}")
        ax.set(title=title, xlabel="GRPO step")
        ax.legend(fontsize=6)
    ax = axes.flat[3]
    tools = [m for (policy, _), m in curves.items() if policy == "tools"]
    for component in COMPONENTS:
        key = f"pixelis_reward/{component}/mean"
        steps = sorted(set.intersection(*[{s for s in m if key in m[s]} for m in tools])) if tools else []
        if steps:
            ax.plot(steps, [statistics.mean(m[s][key] for m in tools) for s in steps], marker=".", label=component)
    ax.set(title="reward components, tools policy (mean over seeds)", xlabel="GRPO step")
    ax.legend(fontsize=6)
    fig.suptitle("rft_learner_cpu: GRPO from the learner's SFT checkpoint (solid: tools; dotted: tool-free)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


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
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="GRPO seeds on the learner")
    parser.add_argument("--grpo-steps", type=int, default=36, help="GRPO steps per learner run")
    parser.add_argument("--skip-signal", action="store_true", help="no part 1 (the tiny model's learning signal)")
    parser.add_argument("--skip-learner", action="store_true", help="no parts 2 and 3 (no learner build or runs)")
    parser.add_argument("--skip-grpo", action="store_true", help="no part 3 (GRPO on the learner)")
    parser.add_argument(
        "--policies",
        nargs="+",
        choices=list(POLICIES),
        default=list(POLICIES),
        help="GRPO policies of part 3 (default: both, the tool-free one being the control)",
    )
    parser.add_argument(
        "--sft-eval",
        type=Path,
        default=None,
        help="an evaluation run dir of the current learner build to reuse for part 2",
    )
    parser.add_argument(
        "--grpo-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an override of rft_learner_cpu for every GRPO run (repeatable): actor_rollout_ref.actor.optim.lr=3e-5",
    )
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "img" / "learning_signal.png")
    parser.add_argument("--grpo-plot", type=Path, default=REPO / "docs" / "img" / "learning_grpo.png")
    parser.add_argument("--sft-plot", type=Path, default=REPO / "docs" / "img" / "learner_sft_loss.png")
    args = parser.parse_args()
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="pixelis-learning-") as work:
        if not args.skip_signal:
            figures, curves = signal(args.runs, Path(work))
            plot(curves, figures, args.plot)
        if not args.skip_learner:
            learned, model, sft_eval = learner(Path(work), args.sft_plot, args.sft_eval)
            figures |= learned
            if not args.skip_grpo:
                learned, grpo_curves = grpo(
                    model, sft_eval, args.seeds, args.grpo_steps, Path(work), args.policies, args.grpo_override
                )
                figures |= learned
                plot_grpo(grpo_curves, args.grpo_plot)
    report(figures, "python benchmarks/learning.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
