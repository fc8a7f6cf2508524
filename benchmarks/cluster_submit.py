"""Cost of the cluster path on one CPU machine: a Ray job on two loopback nodes against a plain local launch.

Runs the tiny recipe ``rft_tiny_cpu`` for ``--steps`` GRPO steps twice, with the same two FSDP ranks:

- local: ``python -m pixelis_verl.train`` (verl starts a private Ray instance; both ranks on one node);
- job: ``python -m pixelis_verl.submit`` to a head + worker started by ``pixelis_verl.local_cluster``
  (``trainer.nnodes=2``, one rank per node: FSDP collectives and weight sync cross nodes over loopback).

Reports, per launch, the median seconds per step after the first (verl's ``timing_s/step``), the wall time from
command to exit (for the job: packaging and upload of the working directory, per-node checks, cluster connect),
and the job/local ratios. Loopback hides the network: on real nodes the cross-node share of a step grows with
the interconnect, which this cannot measure.

Usage: python benchmarks/cluster_submit.py [--steps 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import report

from pixelis_verl.local_cluster import LocalCluster
from pixelis_verl.run_metrics import read_metrics_file

REPO = Path(__file__).resolve().parent.parent
RECIPE = ["--config-name", "rft_tiny_cpu"]


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def _step_seconds(run_dir: Path) -> float:
    steps = read_metrics_file(run_dir / "metrics.jsonl")
    steady = [steps[s]["timing_s/step"] for s in sorted(steps)[1:]] or [steps[min(steps)]["timing_s/step"]]
    return statistics.median(steady)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="GRPO steps per launch; the first is dropped")
    args = parser.parse_args()
    common = [f"trainer.total_training_steps={args.steps}"]
    figures: dict[str, object] = {"steps": args.steps}
    with tempfile.TemporaryDirectory() as tmp:
        local_dir, job_dir = Path(tmp) / "local", Path(tmp) / "job"
        local_cmd = [sys.executable, "-m", "pixelis_verl.train", *RECIPE, *common, f"pixelis.run_dir={local_dir}"]
        figures["local_wall_s"] = _timed(local_cmd, {})
        figures["local_step_s"] = _step_seconds(local_dir)
        with LocalCluster(Path(tmp) / "ray", nodes=2) as cluster:
            job_cmd = [sys.executable, "-m", "pixelis_verl.submit", "--address", cluster.address, *RECIPE, *common]
            job_cmd += ["trainer.nnodes=2", "trainer.n_gpus_per_node=1", f"pixelis.run_dir={job_dir}"]
            figures["job_wall_s"] = _timed(job_cmd, cluster.client_env)
        figures["job_step_s"] = _step_seconds(job_dir)
    figures["job_vs_local_step_ratio"] = figures["job_step_s"] / figures["local_step_s"]
    figures["job_vs_local_wall_ratio"] = figures["job_wall_s"] / figures["local_wall_s"]
    report(figures, f"python benchmarks/cluster_submit.py --steps {args.steps}")


if __name__ == "__main__":
    main()
