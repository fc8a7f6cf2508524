"""``python -m pixelis_verl.plot RUN_DIR [--out DIR]``: one PNG of curves per panel from a run's metrics.

verl's ``FileLogger`` writes ``RUN_DIR/metrics.jsonl``, one ``{"step": N, "data": {metric: value}}`` per
``Tracking.log`` call, and truncates it on start, so ``pixelis_verl.train`` keeps a resumed run's earlier starts
as ``metrics.1.jsonl``, ``metrics.2.jsonl``, ... (oldest first). A step the restart redid is a new measurement:
the latest start's record of it replaces the earlier ones whole.

`PANELS` is the table of what is drawn: a panel is one PNG, each of its axes one subplot holding every metric
whose full name matches one of the axis's patterns. A panel no metric matches is not drawn; a run no panel
matches is an error, never an empty or made-up plot.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pixelis_verl.run_metrics import MetricsError, metrics_files, read_metrics_file

Series = dict[str, tuple[list[int], list[float]]]  # metric -> (steps, values), steps increasing

# The registered reward components (pixelis_verl/rewards/*.py) and the manager's per-trajectory counts
# (`trajectory_counts`), as the v1 trainer logs them through `RewardMetricsReplayBuffer` (training,
# ``pixelis_reward/<key>/mean``) and verl's validation (``val-aux/<data_source>/<key>/mean@N``).
# tests/test_plot.py fails when a registered component is missing here.
_COMPONENTS = "accuracy|curiosity|coherence|efficiency|validity|rate_curiosity|operation_penalty|tool_bonus"
_CALL_COUNTS = "tool_calls|pixel_ops|invalid_calls|malformed_calls|unexecuted_calls"
_CALL_RATES = "uses_pixel_ops|group_pixel_op_rate"


@dataclass(frozen=True)
class Axis:
    ylabel: str
    patterns: tuple[str, ...]  # regexes a whole metric name must match


@dataclass(frozen=True)
class Panel:
    title: str
    axes: tuple[Axis, ...]


PANELS: dict[str, Panel] = {  # key: the PNG's file name
    "reward_components": Panel(
        "reward components (mean per trajectory)",
        (
            Axis(
                "reward",
                (
                    r"critic/score/mean",  # verl: the sequence reward the advantage is computed from
                    rf"pixelis_reward/(score|{_COMPONENTS})/mean",
                    rf"val-aux/.+/(reward|{_COMPONENTS})/mean@\d+",  # data sources may hold '/'
                ),
            ),
        ),
    ),
    "tool_calls": Panel(
        "tool calls per trajectory",
        (
            Axis(
                "calls per trajectory",
                (rf"pixelis_reward/({_CALL_COUNTS})/mean", rf"val-aux/.+/({_CALL_COUNTS})/mean@\d+"),
            ),
            Axis(
                "fraction of trajectories",
                (rf"pixelis_reward/({_CALL_RATES})/mean", rf"val-aux/.+/({_CALL_RATES})/mean@\d+"),
            ),
        ),
    ),
    "kl": Panel("KL divergence to the reference", (Axis("KL", (r"actor/kl_loss", r"actor/ppo_kl", r"ttrl/kl")),)),
    "accuracy": Panel(
        "accuracy",
        (
            Axis(
                "accuracy",
                (
                    r"pixelis_reward/acc/mean",
                    r"val-core/.+/acc/mean@\d+",
                    r"val-core/.+/acc/(maj|best)@\d+/mean",  # bootstrap means of majority vote and best-of-N
                ),
            ),
        ),
    ),
    "response_length": Panel(
        "response length",
        (
            Axis("tokens", (r"response_length/(mean|max)", r"response_length_non_aborted/mean")),
            Axis("fraction clipped", (r"response_length/clip_ratio",)),
        ),
    ),
    "ttrl": Panel(
        "test-time RL",
        (
            Axis("fraction", (r"ttrl/gate_rate", r"ttrl/vote_confidence", r"ttrl/answered_rate")),
            Axis("requests / s", (r"ttrl/requests_per_second",)),
            Axis("rollbacks (cumulative)", (r"ttrl/rollbacks",)),
        ),
    ),
    "sft_loss": Panel("SFT loss", (Axis("loss", (r"train/loss", r"val/loss")),)),
}


def read_metrics(run_dir: Path) -> tuple[list[Path], Series]:
    """Every numeric metric of the run with its steps, and the files read."""
    if not run_dir.is_dir():
        raise MetricsError(f"run directory {run_dir} does not exist")
    files = metrics_files(run_dir)
    if not files:
        raise MetricsError(
            f"no metrics.jsonl in {run_dir} (verl's FileLogger writes it when trainer.logger has 'file')"
        )
    steps: dict[int, dict[str, float]] = {}
    for path in files:
        steps.update(read_metrics_file(path))  # a later start's record of a step replaces the earlier one
    if not steps:
        raise MetricsError(f"{', '.join(map(str, files))} held no metrics")
    series: Series = {}
    for step in sorted(steps):
        for key, value in steps[step].items():
            xs, ys = series.setdefault(key, ([], []))
            xs.append(step)
            ys.append(value)
    return files, series


def matching(axis: Axis, names: list[str]) -> list[str]:
    """The metrics an axis draws, in pattern order, then by name."""
    order = {}
    for name in sorted(names):
        index = next((i for i, p in enumerate(axis.patterns) if re.fullmatch(p, name)), None)
        if index is not None:
            order[name] = index
    return sorted(order, key=order.__getitem__)


def layout(series: Series) -> dict[str, list[tuple[Axis, list[str]]]]:
    """For each panel a metric of the run matches, its non-empty axes and their metrics."""
    plan = {}
    for key, panel in PANELS.items():
        axes = [(axis, matching(axis, list(series))) for axis in panel.axes]
        if axes := [(axis, names) for axis, names in axes if names]:
            plan[key] = axes
    return plan


def draw(title: str, axes: list[tuple[Axis, list[str]]], series: Series, path: Path) -> None:
    fig = Figure(figsize=(11, 3 * len(axes)), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, (axis, names) in zip(fig.subplots(len(axes), 1, squeeze=False)[:, 0], axes, strict=True):
        for name in names:
            ax.plot(*series[name], marker=".", label=name)
        ax.set_ylabel(axis.ylabel)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: curves stay visible
    fig.suptitle(title)
    fig.savefig(path, dpi=100)


def plot_run(run_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """One PNG per panel with a matching metric, in `out_dir` (default ``run_dir/plots``); returns their paths."""
    files, series = read_metrics(Path(run_dir))
    plan = layout(series)
    if not plan:
        raise MetricsError(
            f"{', '.join(map(str, files))} held no plottable metric (none matches a panel of pixelis_verl.plot.PANELS)"
        )
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir) / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    for key, axes in plan.items():
        draw(PANELS[key].title, axes, series, out_dir / f"{key}.png")
    return [out_dir / f"{key}.png" for key in plan]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pixelis_verl.plot", description="PNG curves of a run's verl metrics"
    )
    parser.add_argument("run_dir", type=Path, help="run directory holding verl's metrics.jsonl")
    parser.add_argument("--out", type=Path, help="where the PNGs go (default: RUN_DIR/plots)")
    args = parser.parse_args(argv)
    try:
        paths = plot_run(args.run_dir, args.out)
    except MetricsError as exc:
        print(f"plot: error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
