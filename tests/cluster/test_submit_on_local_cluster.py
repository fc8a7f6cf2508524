"""End to end: the tiny recipe submitted as a Ray job to a head and a worker node on loopback.

The run's FSDP ranks are spread over both nodes (``trainer.nnodes=2``, one logical GPU slot each); the job is
submitted with ``python -m pixelis_verl.submit`` exactly as an operator would, and the cluster is stopped after.
"""

import json
import os
import subprocess
import sys

import psutil
import pytest
import yaml

from pixelis_verl.cluster import CLUSTER_REPORT
from pixelis_verl.config import REPO_ROOT
from pixelis_verl.local_cluster import LocalCluster
from pixelis_verl.run_metrics import read_metrics_file

pytestmark = pytest.mark.e2e


def _listening_hosts(port: int) -> set[str]:
    return {c.laddr.ip for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port}


def test_a_recipe_submitted_as_a_ray_job_runs_on_two_loopback_nodes(tmp_path):
    run_dir = tmp_path / "run"
    submit = [
        sys.executable,
        "-m",
        "pixelis_verl.submit",
        "--config-name",
        "rft_tiny_cpu",
        "--env",
        "PIXELIS_PROBE=42",
        "trainer.nnodes=2",
        "trainer.n_gpus_per_node=1",
        "trainer.total_training_steps=1",
        f"pixelis.run_dir={run_dir}",
    ]
    with LocalCluster(tmp_path / "ray", nodes=2) as cluster:
        assert _listening_hosts(cluster.dashboard_port) == {"127.0.0.1"}  # the job API stays on loopback
        job = subprocess.run(
            [*submit, "--address", cluster.address],
            env={**os.environ, **cluster.client_env},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
    assert job.returncode == 0, job.stdout[-4000:] + job.stderr[-4000:]
    assert "SUCCEEDED; run directory" in job.stdout.splitlines()[-1]

    nodes = json.loads((run_dir / CLUSTER_REPORT).read_text())["nodes"]
    assert len({node["node_id"] for node in nodes}) == 2
    for node in nodes:  # what a task of the job saw on each node
        assert (
            node["env"]["PIXELIS_PROBE"] == "42" and node["env"]["VERL_USE_EXTERNAL_MODULES"] == "pixelis_verl.plugin"
        )
        assert node["env"]["PIXELIS_DATA_ROOT"] == str(run_dir / "data")  # the recipe's own runtime_env
        assert node["run_dir_shared"] and all(node["paths"].values()) and node["resources"]["GPU"] == 1.0

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["trainer"]["nnodes"] == 2 and config["ray_kwargs"]["ray_init"]["num_gpus"] is None
    steps = read_metrics_file(run_dir / "metrics.jsonl")  # written by the TaskRunner, wherever Ray placed it
    assert 1 in steps and "pixelis_reward/score/mean" in steps[1]
    assert list((run_dir / "trajectories").glob("*.jsonl")), "the reward workers' trajectory log is missing"
