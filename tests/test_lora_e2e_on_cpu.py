"""LoRA end to end on CPU: verl's GRPO trainer trains adapters on the tiny Qwen2.5-VL (peft under FSDP2, the
reference being the actor with its adapters off), and the hf rollout samples from base + the updated adapters
(merged on the server, `runtime/lora_weights.py`). One run, two steps, a high learning rate: a rollout that missed
the adapters would show in the rollout/actor log-prob gap."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText

from pixelis_verl.config import REPO_ROOT
from pixelis_verl.tiny.build import tiny_model_path

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
           "actor_rollout_ref.actor.checkpoint.save_contents=[model,hf_model]", f"pixelis.run_dir={run}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return run


def test_the_rollout_samples_from_the_updated_adapters(run_dir):
    steps = {json.loads(line)["step"]: json.loads(line)["data"] for line in (run_dir / "metrics.jsonl").open()}
    assert steps[2]["training/off_policy/trajectory_staleness_worst/max"] == 0
    assert steps[2]["training/rollout_probs_diff_max"] < 1e-3  # both float32: merged adapters, same policy


def test_adapters_change_and_the_base_does_not(run_dir):
    saved = load_file(next((run_dir / "checkpoints" / "global_step_2" / "actor" / "huggingface").glob("*.safetensors")))
    initial = AutoModelForImageTextToText.from_pretrained(tiny_model_path("qwen2_5_vl")).state_dict()  # its names
    lora_b = [t for name, t in saved.items() if "lora_B" in name]
    assert lora_b and all(float(t.abs().max()) > 0 for t in lora_b)  # peft starts B at zero
    assert not any("visual" in name and "lora_" in name for name in saved)  # the vision tower has no adapters
    bases = {name.replace("base_model.model.", "").replace(".base_layer", ""): t for name, t in saved.items()
             if "lora_" not in name}  # fmt: skip
    common = set(bases) & set(initial)
    assert len(common) > len(initial) // 2
    assert all(torch.equal(bases[n].to(initial[n].dtype), initial[n]) for n in common)
