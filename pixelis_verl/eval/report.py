"""Evaluation reports: accuracy with bootstrap intervals per arm, the tool-free delta, toolchain statistics.

Built from the run's trajectory records (``pixelis_verl.rewards.trajectory_log``: every trajectory of the
evaluation, scored by the reward manager with the benchmark's answer matching) and written as
``report.json`` and ``report.md`` in the run directory. Accuracy is per question (Avg@k over samples,
circular over rotations: ``pixelis_verl.eval.protocols.question_score``) and averaged over questions; the
interval is a percentile bootstrap over questions; the tool-free delta pairs each question's two arms.
verl's own validation figure for the same samples (``val-core/<benchmark>/<arm>/acc/mean@k`` in
metrics.jsonl) is carried beside ours as a cross-check.

    python -m pixelis_verl.eval.report RUN_DIR [RUN_DIR ...] [--compare OLD_RUN_DIR]

prints the runs' table (one row per benchmark and an overall mean) and, with ``--compare``, the deltas
of each run against the earlier report of the same benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelis_verl.eval.protocols import bootstrap_interval, question_score
from pixelis_verl.run_metrics import MetricsError, read_metrics_file

REPORT_JSON, REPORT_MD = "report.json", "report.md"
ARM_TITLES = {"tools": "with tools", "no_tools": "tool-free control"}


@dataclass
class Bootstrap:
    resamples: int = 1000
    level: float = 0.95
    seed: int = 0

    def interval(self, values: list[float]) -> list[float]:
        lo, hi = bootstrap_interval(values, resamples=self.resamples, level=self.level, seed=self.seed)
        return [round(lo, 4), round(hi, 4)]


def _acc(record: dict[str, Any]) -> float:
    info = record.get("info") or {}
    return float(info.get("acc", info.get("accuracy", 0.0)))


def question_scores(records: list[dict[str, Any]]) -> dict[str, float]:
    """Each question's score (item id -> score) from one arm's records."""
    by_question: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        item = record.get("item") or {}
        by_question[str(item.get("id"))][int(item.get("rotation") or 0)].append(_acc(record))
    return {qid: question_score(rotations) for qid, rotations in by_question.items()}


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def toolchain(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What the trajectories did: calls, the mix of executed tools, invalid calls, turns, tokens, latency."""
    calls = [float((r.get("info") or {}).get("tool_calls", 0.0)) for r in records]
    # Calls written: parsed blocks plus blocks cut off by the length limit (counted as malformed too).
    written = sum(calls) + sum(float((r.get("info") or {}).get("truncated_calls", 0.0)) for r in records)
    bad = [
        sum(float((r.get("info") or {}).get(k, 0.0)) for k in ("invalid_calls", "malformed_calls", "unexecuted_calls"))
        for r in records
    ]
    # Well formed: the trajectory wrote at least one call and every call it wrote parsed (none cut off).
    well_formed = [
        float(info.get("tool_calls", 0.0) > 0 and info.get("malformed_calls", 0.0) == 0)
        for info in ((r.get("info") or {}) for r in records)
    ]
    mix = Counter(step.get("tool") for r in records for step in r.get("steps") or [])
    executed = sum(mix.values())
    seconds = [float(r["seconds"]) for r in records if isinstance(r.get("seconds"), (int, float))]
    return {
        "calls_per_question": _mean(calls),
        "used_tool_rate": _mean([float(c > 0) for c in calls]),
        "tool_mix": {name: round(count / executed, 4) for name, count in mix.most_common()} if executed else {},
        "invalid_call_rate": round(sum(bad) / written, 4) if written else None,
        "well_formed_rate": _mean(well_formed),
        "turns": _mean([float(len(r.get("turns") or [])) for r in records]),
        "response_tokens": _mean([float(r.get("response_tokens") or 0) for r in records]),
        "latency_s": {
            "mean": _mean(seconds),
            "p50": round(float(np.percentile(seconds, 50)), 3) if seconds else None,
            "p90": round(float(np.percentile(seconds, 90)), 3) if seconds else None,
        },
        "answered_rate": _mean([float(r.get("pred") is not None) for r in records]),
    }


def _categories(item: dict[str, Any]) -> list[str]:
    """The categories a question is reported under: its `categories` list, or its one `category` (older logs)."""
    listed = item.get("categories")
    if listed is not None and len(listed):
        return [str(c) for c in listed]
    return [str(item["category"])] if item.get("category") else []


def arm_report(records: list[dict[str, Any]], bootstrap: Bootstrap) -> dict[str, Any]:
    scores = question_scores(records)
    values = list(scores.values())
    categories: dict[str, list[float]] = defaultdict(list)
    categories_of = {str((r.get("item") or {}).get("id")): _categories(r.get("item") or {}) for r in records}
    for qid, score in scores.items():
        for category in categories_of[qid]:
            categories[category].append(score)  # an item in several categories counts in each
    components = sorted({k for r in records for k in (r.get("info") or {})})
    return {
        "accuracy": _mean(values),
        "ci": bootstrap.interval(values),
        "questions": len(values),
        "trajectories": len(records),
        "categories": {
            name: {"accuracy": _mean(v), "ci": bootstrap.interval(v), "questions": len(v)}
            for name, v in sorted(categories.items())
            if name
        },  # fmt: skip
        "toolchain": toolchain(records),
        "reward": {k: _mean([float((r.get("info") or {}).get(k, 0.0)) for r in records]) for k in components},
    }


def verl_figures(run_dir: Path, benchmark: str) -> dict[str, float]:
    """verl's own validation means per arm (``val-core/<benchmark>/<arm>/acc/mean@k``), from metrics.jsonl."""
    path = run_dir / "metrics.jsonl"
    try:
        steps = read_metrics_file(path) if path.exists() else {}
    except MetricsError:
        return {}  # the cross-check is missing, not the report
    found: dict[str, float] = {}
    for data in steps.values():
        for key, value in data.items():
            parts = key.split("/")
            if parts[0] == "val-core" and "/".join(parts[1:-3]) == benchmark and parts[-2] == "acc" \
                    and parts[-1].startswith("mean@"):  # fmt: skip
                found[parts[-3]] = round(value, 4)
    return found


def build_report(records: list[dict[str, Any]], meta: dict[str, Any], bootstrap: Bootstrap) -> dict[str, Any]:
    """The report of one evaluation run; `meta` (benchmark, model, protocol, command, ...) is copied in."""
    by_arm = _by_arm(records)
    report = {**meta, "arms": {arm: arm_report(by_arm[arm], bootstrap) for arm in ARM_TITLES if arm in by_arm}}
    if {"tools", "no_tools"} <= set(by_arm):
        tools, control = question_scores(by_arm["tools"]), question_scores(by_arm["no_tools"])
        report["tool_free_delta"] = paired_delta(tools, control, bootstrap)
    return report


def paired_delta(new: dict[str, float], old: dict[str, float], bootstrap: Bootstrap) -> dict[str, Any]:
    """The mean of `new - old` over the questions both score (item id -> score), with its bootstrap interval:
    pairing by question removes the spread between questions from the interval."""
    paired = sorted(set(new) & set(old))
    deltas = [new[q] - old[q] for q in paired]
    return {"accuracy": _mean(deltas), "ci": bootstrap.interval(deltas), "questions": len(paired)}


def arm_scores(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each arm's question scores (arm -> item id -> score) from an evaluation's trajectory records."""
    return {arm: question_scores(arm_records) for arm, arm_records in _by_arm(records).items()}


def _by_arm(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_arm: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_arm[str((record.get("item") or {}).get("arm") or "tools")].append(record)
    return by_arm


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _ci(ci: list[float]) -> str:
    return "–" if any(np.isnan(ci)) else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def _num(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the arms side by side, the delta, categories, tool mix, how it was run."""
    arms = report["arms"]
    protocol = report.get("protocol", {})
    lines = [
        f"# {report.get('benchmark')} — {report.get('model')}",
        "",
        f"Protocol: options {protocol.get('options')}, {protocol.get('samples')} sample(s) per question "
        f"({'sampled, T=' + str(protocol.get('temperature')) if protocol.get('do_sample') else 'greedy'}), "
        f"seed {protocol.get('seed')}. Accuracy in %, {int(100 * report.get('level', 0.95))}% bootstrap interval "
        "over questions.",
        "",
        "| arm | accuracy | interval | questions | calls/question | used a tool | well formed | invalid calls | turns "
        "| response tokens | latency mean / p90 (s) | verl mean@k |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, r in arms.items():
        t = r["toolchain"]
        lines.append(
            f"| {ARM_TITLES[arm]} | {_pct(r['accuracy'])} | {_ci(r['ci'])} | {r['questions']} "
            f"| {_num(t['calls_per_question'])} | {_pct(t['used_tool_rate'])}% | {_pct(t['well_formed_rate'])}% "
            f"| {_pct(t['invalid_call_rate'])}% "
            f"| {_num(t['turns'])} | {_num(t['response_tokens'], 0)} | {_num(t['latency_s']['mean'])} / "
            f"{_num(t['latency_s']['p90'])} | {_pct(report.get('verl', {}).get(arm))} |"
        )
    if "tool_free_delta" in report:
        d = report["tool_free_delta"]
        lines += ["", f"**Tool-free delta** (tools − control, paired over {d['questions']} questions): "
                  f"{_pct(d['accuracy'])} points, interval {_ci(d['ci'])}."]  # fmt: skip
    categories = sorted({c for r in arms.values() for c in r["categories"]})
    if categories:
        lines += ["", "| category | " + " | ".join(ARM_TITLES[a] for a in arms) + " |", "|---|" + "---|" * len(arms)]
        for c in categories:
            cells = [_pct(arms[a]["categories"].get(c, {}).get("accuracy")) for a in arms]
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
    mix = arms.get("tools", {}).get("toolchain", {}).get("tool_mix")
    if mix:
        lines += ["", "Tool mix (executed calls): " + ", ".join(f"{k} {_pct(v)}%" for k, v in mix.items())]
    lines += ["", f"Run: `{report.get('command')}` on {report.get('machine')}, {report.get('date')}.", ""]
    return "\n".join(lines)


def write_report(report: dict[str, Any], run_dir: Path) -> tuple[Path, Path]:
    json_path, md_path = run_dir / REPORT_JSON, run_dir / REPORT_MD
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path


def load_report(run_dir: str | Path) -> dict[str, Any]:
    """A run's report.json (a run directory or the file itself); a clear error when there is none."""
    path = Path(run_dir)
    path = path / REPORT_JSON if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no evaluation report (run python -m pixelis_verl.evaluate first)")
    return json.loads(path.read_text())


def compare(new: dict[str, Any], old: dict[str, Any]) -> str:
    """The changes from `old` to `new` (same benchmark): accuracy per arm, the delta, calls and invalid calls."""
    lines = [f"{new.get('benchmark')}: {old.get('run_dir')} -> {new.get('run_dir')}"]
    if new.get("benchmark") != old.get("benchmark") or new.get("protocol") != old.get("protocol"):
        lines.append(f"  warning: different benchmark or protocol ({old.get('benchmark')} {old.get('protocol')})")
    for arm in new["arms"]:
        if arm not in old.get("arms", {}):
            continue
        a, b = new["arms"][arm], old["arms"][arm]
        parts = [f"accuracy {_pct(b['accuracy'])} -> {_pct(a['accuracy'])} ({_signed(a['accuracy'], b['accuracy'])})"]
        for key in ("calls_per_question", "invalid_call_rate", "response_tokens"):
            x, y = a["toolchain"].get(key), b["toolchain"].get(key)
            parts.append(f"{key} {_num(y)} -> {_num(x)}")
        lines.append(f"  {ARM_TITLES[arm]}: " + ", ".join(parts))
    if "tool_free_delta" in new and "tool_free_delta" in old:
        x, y = new["tool_free_delta"]["accuracy"], old["tool_free_delta"]["accuracy"]
        lines.append(f"  tool-free delta: {_pct(y)} -> {_pct(x)} ({_signed(x, y)})")
    return "\n".join(lines)


def _signed(new: float | None, old: float | None) -> str:
    return "–" if new is None or old is None else f"{100 * (new - old):+.1f} points"


def summary(reports: list[dict[str, Any]]) -> str:
    """One row per benchmark (tool arm, control, delta) and the overall mean over benchmarks."""
    lines = ["| benchmark | with tools | tool-free control | delta |", "|---|---|---|---|"]
    columns: dict[str, list[float]] = defaultdict(list)
    for r in reports:
        tools = r["arms"].get("tools", {}).get("accuracy")
        control = r["arms"].get("no_tools", {}).get("accuracy")
        delta = r.get("tool_free_delta", {}).get("accuracy")
        for name, value in (("tools", tools), ("control", control), ("delta", delta)):
            if value is not None:
                columns[name].append(value)
        lines.append(f"| {r.get('benchmark')} | {_pct(tools)} | {_pct(control)} | {_pct(delta)} |")
    if len(reports) > 1:
        means = [_pct(float(np.mean(columns[n]))) if columns[n] else "–" for n in ("tools", "control", "delta")]
        lines.append(f"| overall (mean of benchmarks) | {' | '.join(means)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pixelis_verl.eval.report", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="evaluation run directories")
    parser.add_argument("--compare", help="an earlier run directory (or report.json) of the same benchmark")
    args = parser.parse_args(argv)
    try:
        reports = [load_report(run) for run in args.runs]
        old = load_report(args.compare) if args.compare else None
    except FileNotFoundError as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return 2
    print(summary(reports))
    if old is not None:
        for report in reports:
            print(compare(report, old))
    return 0


if __name__ == "__main__":
    sys.exit(main())
