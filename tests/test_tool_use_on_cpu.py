"""A longer CPU GRPO run with the pixelis reward: tool use must not collapse to zero while the policy moves.

Tool calls vanish within a few RL steps without a drive to use them (verl #1569, verl-tool's Pixel-Reasoner
study). This runs ``rft_tiny_cpu_long`` (lr 1e-3, 4 prompts x 4 rollouts; the recipe of ``benchmarks/tool_collapse.py``)
for 12 steps and checks that trajectories still perform pixel operations at the end.
The comparison with curiosity off and with Pixel-Reasoner's bonus is the benchmark's (docs/rewards.md).
"""

import json
import os
import subprocess
import sys

import pytest

from pixelis_verl.config import REPO_ROOT

pytestmark = pytest.mark.e2e
STEPS = 12


def test_tool_use_does_not_collapse_with_curiosity_on(tmp_path):
    cmd = [sys.executable, "-m", "pixelis_verl.train", "--config-name", "rft_tiny_cpu_long"]
    cmd += [f"trainer.total_training_steps={STEPS}"]
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env={**os.environ, "PIXELIS_RUNS_DIR": str(tmp_path)}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = tmp_path.iterdir()
    records = [json.loads(line)["data"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == STEPS
    rate = [r["pixelis_reward/uses_pixel_ops/mean"] for r in records]
    curiosity = [r["pixelis_reward/curiosity/mean"] for r in records]
    assert sum(rate[-4:]) > 0, rate  # 64 trajectories of the last four steps: some still use a pixel operation
    assert sum(curiosity) > 0 and all(r["pixelis_reward/component_errors/mean"] == 0 for r in records)
