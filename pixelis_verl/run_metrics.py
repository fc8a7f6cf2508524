"""Reading a run's metrics as verl's ``FileLogger`` writes them: one ``{"step": N, "data": {metric: value}}`` per line.

``pixelis_verl.train`` keeps a resumed run's earlier starts as ``metrics.1.jsonl``, ``metrics.2.jsonl``, ...
(verl truncates ``metrics.jsonl`` on start). Used by the plots and by the evaluation report's cross-check
against verl's own validation figures.
"""

from __future__ import annotations

import json
import math
from pathlib import Path


def logger_env(run_dir: Path) -> dict[str, str]:
    """Where verl's loggers write, as the variables they read: metrics.jsonl (file) and tensorboard/ (TensorBoard,
    whose default would be relative to the working directory of whichever worker logs)."""
    return {"VERL_FILE_LOGGER_PATH": str(run_dir / "metrics.jsonl"), "TENSORBOARD_DIR": str(run_dir / "tensorboard")}


class MetricsError(Exception):
    """A run whose metrics cannot be read (or plotted); the message is one line naming the file."""


def metrics_files(run_dir: Path) -> list[Path]:
    """The run's metrics files, oldest start first."""
    numbered = [p for p in run_dir.glob("metrics.*.jsonl") if p.name.split(".")[1].isdigit()]
    files = sorted(numbered, key=lambda p: int(p.name.split(".")[1])) + [run_dir / "metrics.jsonl"]
    return [p for p in files if p.is_file()]


def read_metrics_file(path: Path) -> dict[int, dict[str, float]]:
    """Step -> its finite numeric metrics; a partial last line (a start killed mid-write) is skipped."""
    steps: dict[int, dict[str, float]] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            step, data = int(record["step"]), record["data"]
        except (ValueError, KeyError, TypeError):
            if number == len(lines):  # a start killed mid-write leaves a partial last line
                break
            raise MetricsError(
                f"{path}:{number}: not a verl FileLogger record {{'step': N, 'data': {{...}}}}"
            ) from None
        numbers = {
            key: float(value)
            for key, value in data.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        }
        steps.setdefault(step, {}).update(numbers)  # one step may be logged in several calls
    return steps
