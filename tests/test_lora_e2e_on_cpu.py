"""LoRA end to end on CPU: verl's GRPO trainer trains adapters on the tiny Qwen2.5-VL (peft under FSDP2, the
reference being the actor with its adapters off), and the hf rollout samples from base + the updated adapters
(merged on the server, `runtime/lora_weights.py`). One run, two steps, a high learning rate: a rollout that missed
the adapters would show in the rollout/actor log-prob gap. Its checkpoint then merges (`pixelis_verl.merge`) into
a plain model with the logits of base + adapter, and is evaluated as `model.path` (merged into the run directory)."""

import json
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from pixelis_verl.cli import check_processor
from pixelis_verl.config import REPO_ROOT, compose_recipe, resolve
from pixelis_verl.evaluate import merge_lora_checkpoint
from tests.lora_checks import check_lora_checkpoint

pytestmark = pytest.mark.e2e

LORA = [
    "actor_rollout_ref.model.lora_rank=8",
    "actor_rollout_ref.model.lora_alpha=16",
    "actor_rollout_ref.model.target_modules=all-linear",
    "actor_rollout_ref.model.exclude_modules=.*visual.*",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("lora") / "run"
    cmd = [sys.executable, "-m", "pixelis_verl.train", "--config-name", "rft_tiny_cpu", *LORA,
           "trainer.total_training_steps=2", "trainer.save_freq=2", "actor_rollout_ref.actor.optim.lr=1e-2",
           "actor_rollout_ref.actor.checkpoint.save_contents=[model]", f"pixelis.run_dir={run}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return run


def test_the_rollout_samples_from_the_updated_adapters(run_dir):
    steps = {json.loads(line)["step"]: json.loads(line)["data"] for line in (run_dir / "metrics.jsonl").open()}
    assert steps[2]["training/off_policy/trajectory_staleness_worst/max"] == 0
    assert steps[2]["training/rollout_probs_diff_max"] < 1e-3  # both float32: merged adapters, same policy


def test_the_adapters_train_and_merge_into_a_plain_model_with_the_same_logits(run_dir, tmp_path):
    check_lora_checkpoint(run_dir / "checkpoints" / "global_step_2" / "actor", tmp_path)


def test_a_lora_checkpoint_as_the_evaluated_model_is_merged_everywhere_the_recipe_reads_it(run_dir, tmp_path):
    checkpoint = str(run_dir / "checkpoints" / "global_step_2" / "actor")
    cfg = resolve(compose_recipe("eval_tiny_cpu", [f"model.path={checkpoint}", f"pixelis.run_dir={tmp_path}"]))
    merge_lora_checkpoint(cfg)
    merged = str(tmp_path / "merged_model")
    assert cfg.actor_rollout_ref.model.path == merged
    assert cfg.pixelis.lora_checkpoint == checkpoint
    assert checkpoint not in OmegaConf.to_yaml(cfg).replace(f"lora_checkpoint: {checkpoint}", "")
    check_processor(cfg.actor_rollout_ref.model, "actor_rollout_ref.model")  # what the evaluation checks next
