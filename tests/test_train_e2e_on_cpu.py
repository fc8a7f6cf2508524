"""End to end: verl's own GRPO trainer, tool agent loop and reward loop on CPU with the tiny Qwen2.5-VL, run the
way an operator runs it on a cluster: a Ray job submitted with ``python -m pixelis_verl.submit`` to a head and a
worker node started on loopback (``pixelis_verl.local_cluster``), one FSDP rank on each (``trainer.nnodes=2``).
The cluster is stopped after the job. (The plain local launch, ``python -m pixelis_verl.train``, is what the SFT,
TTRL and evaluation end-to-end tests run.)

The run uses a high learning rate so that a stale rollout policy would show in the rollout/actor log-prob gap, and
saves an HF checkpoint so the trained weights can be compared with the initial ones.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import torch
import yaml
from safetensors.torch import load_file

from pixelis_verl.cluster import CLUSTER_REPORT
from pixelis_verl.config import REPO_ROOT
from pixelis_verl.local_cluster import LocalCluster
from pixelis_verl.rewards.dynamics import CHECKPOINT_FILE
from pixelis_verl.tiny.build import tiny_model_path

pytestmark = pytest.mark.e2e


def _listening_hosts(port: int) -> set[str]:
    return {c.laddr.ip for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port}


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> dict:
    """Submit the run; return its run directory, the submit command's output and where the dashboard listened."""
    tmp = tmp_path_factory.mktemp("cluster")
    runs = tmp / "runs"
    cmd = [
        sys.executable,
        "-m",
        "pixelis_verl.submit",
        "--config-name",
        "rft_tiny_cpu",
        "--env",
        "PIXELIS_PROBE=42",  # must reach every node
        "trainer.nnodes=2",
        "trainer.n_gpus_per_node=1",
        "trainer.total_training_steps=2",
        "trainer.save_freq=2",
        "actor_rollout_ref.actor.checkpoint.save_contents=[model,hf_model]",
        "actor_rollout_ref.actor.optim.lr=1e-2",
        # One row of every task kind per step (rows cycle through the 7 kinds; no shuffle), 2 rollouts each.
        "data.train_batch_size=8",
        "data.shuffle=false",
        "actor_rollout_ref.rollout.n=2",
        "actor_rollout_ref.actor.ppo_mini_batch_size=8",
    ]
    with LocalCluster(tmp / "ray", nodes=2) as cluster:
        dashboard_hosts = _listening_hosts(cluster.dashboard_port)
        env = {**os.environ, **cluster.client_env, "PIXELIS_RUNS_DIR": str(runs)}
        proc = subprocess.run(
            [*cmd, "--address", cluster.address], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1200
        )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    (run,) = runs.iterdir()
    return {"run_dir": run, "stdout": proc.stdout, "dashboard_hosts": dashboard_hosts}


@pytest.fixture(scope="module")
def run_dir(job) -> Path:
    return job["run_dir"]


def test_the_job_succeeds_and_the_job_api_stays_on_loopback(job):
    assert "pixelis_verl.train: done; run directory:" in job["stdout"]
    assert job["stdout"].splitlines()[-1].endswith(f"SUCCEEDED; run directory {job['run_dir']}")
    assert job["dashboard_hosts"] == {"127.0.0.1"}


def test_every_node_saw_the_jobs_environment_paths_and_run_dir(run_dir):
    nodes = json.loads((run_dir / CLUSTER_REPORT).read_text())["nodes"]
    assert len({node["node_id"] for node in nodes}) == 2
    for node in nodes:  # what a task of the job saw on each node
        assert node["env"]["PIXELIS_PROBE"] == "42"
        assert node["env"]["VERL_USE_EXTERNAL_MODULES"] == "pixelis_verl.plugin"
        assert node["env"]["PIXELIS_DATA_ROOT"] == str(run_dir / "data")  # the recipe's own runtime_env
        assert node["run_dir_shared"] and all(node["paths"].values()) and node["resources"]["GPU"] == 1.0
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["trainer"]["nnodes"] == 2 and config["ray_kwargs"]["ray_init"]["num_gpus"] is None


@pytest.fixture(scope="module")
def metrics(run_dir) -> dict[int, dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return {record["step"]: record["data"] for record in map(json.loads, lines)}


def test_both_steps_finish_and_log_num_turns(metrics):
    assert sorted(metrics) == [1, 2]
    assert all("num_turns/mean" in step for step in metrics.values())


TOOL_NAMES = ("zoom_in", "segment_object_at", "get_properties", "read_text", "track_object", "select_frames")
IMAGE_TOOLS, VIDEO_TOOLS = set(TOOL_NAMES[:4]), set(TOOL_NAMES[4:])


def test_the_pixel_tools_were_called_and_answered(run_dir, metrics):
    # num_turns = user turns + assistant turns + 1: a trajectory with a tool call has at least 4.
    assert max(step["num_turns/max"] for step in metrics.values()) >= 4
    lines = [line for p in sorted((run_dir / "rollouts").glob("*.jsonl")) for line in p.read_text().splitlines()]
    dumped = "".join(json.loads(line)["output"] for line in lines)
    called = {name for name in TOOL_NAMES if f'"name": "{name}"' in dumped}
    # The warm-started tiny model samples calls of every tool (all six in the run measured when this test was
    # written); at least four, on images and on videos, keeps the check meaningful without being flaky.
    assert len(called) >= 4 and called & IMAGE_TOOLS and called & VIDEO_TOOLS, called
    # Every tool answered something the model can read: an observation, or the error explaining a bad call.
    answers = ("Zoomed into", "mask_id m", "Text in", "No text found", "Tracked frames", "The video has", "colour ")
    errors = tuple(f"{name}: " for name in TOOL_NAMES)
    assert "<tool_response>" in dumped and any(text in dumped for text in answers + errors)


REWARD_COMPONENTS = (
    "accuracy",
    "curiosity",
    "coherence",
    "efficiency",
    "validity",
    "rate_curiosity",
    "operation_penalty",
)


def test_every_reward_component_is_in_the_step_metrics(run_dir, metrics):
    for step in metrics.values():
        for key in (*REWARD_COMPONENTS, "tool_calls", "pixel_ops", "invalid_calls", "malformed_calls", "score"):
            assert f"pixelis_reward/{key}/mean" in step, key
        assert step["pixelis_reward/score/mean"] == pytest.approx(step["critic/score/mean"], abs=1e-4)
        assert step["pixelis_reward/component_errors/mean"] == 0
        # Curiosity scores pixel operations that returned an image. The tiny model completes one in a few percent
        # of trajectories, so some runs have none in either step (curiosity 0 then; scoring itself is tested on
        # golden loops in tests/rewards/test_manager_on_cpu.py).
        assert step["pixelis_reward/curiosity/mean"] == 0 or step["pixelis_reward/pixel_ops/mean"] > 0
    assert (run_dir / "checkpoints" / "global_step_2" / CHECKPOINT_FILE).is_file()  # saved with verl's checkpoint


def test_rollouts_use_the_updated_policy(metrics):
    # The hf servers report the step of the weights they sample with; verl turns that into staleness. After the
    # step-1 update (lr 1e-2) every step-2 trajectory must come from the updated weights.
    assert metrics[2]["training/off_policy/trajectory_staleness_worst/max"] == 0
    # Both sides compute in float32 on CPU: a stale rollout policy after a 1e-2 step would be far off this.
    assert metrics[2]["training/rollout_probs_diff_max"] < 1e-3


def test_actor_weights_changed(run_dir):
    trained = load_file(
        next((run_dir / "checkpoints" / "global_step_2" / "actor" / "huggingface").glob("*.safetensors"))
    )
    initial = load_file(tiny_model_path("qwen2_5_vl") / "model.safetensors")
    moved = [name for name, tensor in initial.items() if not torch.allclose(tensor, trained[name].to(tensor.dtype))]
    assert len(moved) > len(initial) // 2, f"only {len(moved)} of {len(initial)} tensors changed"


def test_sampled_trajectories_open_in_the_viewer(run_dir):
    """RFT logs every 8th trajectory the reward scored (pixelis.trajectories); the eval viewer opens them."""
    from pixelis_verl.eval.viewer import main as viewer_main

    assert viewer_main([str(run_dir)]) == 0
    assert (run_dir / "viewer.html").read_text().count('<section class="trajectory"') >= 2  # 2 steps x 16, every 8th
