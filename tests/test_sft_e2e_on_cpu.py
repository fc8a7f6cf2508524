"""End to end: phase 1 on verl's SFT trainer with the weighted loss, then its checkpoint starts phase 2.

``python -m pixelis_verl.sft --config-name sft_tiny_cpu`` synthesises CoTA traces with the real tools,
renders them to SFT parquet and trains the tiny Qwen2.5-VL on two torchrun ranks; the saved HF
checkpoint then starts GRPO (``rft_signal_tiny_cpu``), which must raise the rate of the behaviour it pays for
(the CI learning test); a short run trains LoRA adapters and the optional argument head, and merges them.
Runs one at a time (see pyproject).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pixelis_verl.config import REPO_ROOT
from pixelis_verl.tiny.build import tiny_model_path
from tests.lora_checks import check_lora_checkpoint

pytestmark = pytest.mark.e2e
STEPS = 8


def _run(module: str, args: list[str], runs: Path) -> str:
    cmd = [sys.executable, "-m", module, *args]
    env = {**os.environ, "PIXELIS_RUNS_DIR": str(runs)}
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    out = _run("pixelis_verl.sft", ["--config-name", "sft_tiny_cpu", f"trainer.total_training_steps={STEPS}"], runs)
    assert "pixelis_verl.sft: done; run directory:" in out
    (run,) = runs.iterdir()
    return run


def _metrics(run: Path) -> dict[int, dict]:
    steps: dict[int, dict] = {}
    for record in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()):
        steps.setdefault(record["step"], {}).update(record["data"])
    return steps


def test_sft_runs_verls_trainer_and_the_loss_decreases(sft_run):
    metrics = _metrics(sft_run)
    assert sorted(metrics) == list(range(1, STEPS + 1))
    train = [metrics[s]["train/loss"] for s in sorted(metrics)]
    assert sum(train[-2:]) < sum(train[:2]), train
    assert metrics[STEPS]["val/loss"] < metrics[4]["val/loss"]
    assert (sft_run / "data" / "train.parquet").is_file() and (
        sft_run / "data" / "traces_train" / "traces.jsonl"
    ).is_file()


# recipes/rft_signal_tiny_cpu.yaml: GRPO paying one reachable behaviour (a well-formed zoom_in call), its rate
# measured by verl's validation on the same 16 questions x 4 samples before the first update and after the last.
LEARN_STEPS = 8
VAL_RATE = "val-aux/pixelis/synth_pixel/tool_bonus/mean@4"
# Three runs on this machine (2026-12-07) went 0.27 -> 0.94, 0.25 -> 0.77 and 0.23 -> 0.69 (gains 0.45-0.67;
# benchmarks/learning.py repeats it, docs/results.md); a policy that does not learn moves by noise, about 0.09
# (one standard deviation of the difference of two rates over 64 samples), so 0.25 is ~2.8 of those.
MIN_GAIN = 0.25


def test_the_sft_checkpoint_starts_rft_and_grpo_raises_the_rate_it_pays_for(sft_run, tmp_path):
    hf = sft_run / "checkpoints" / f"global_step_{STEPS}" / "huggingface"
    trained, initial = (
        load_file(hf / "model.safetensors"),
        load_file(tiny_model_path("qwen2_5_vl") / "model.safetensors"),
    )
    assert any(not torch.equal(trained[k], initial[k]) for k in initial)
    args = ["--config-name", "rft_signal_tiny_cpu", f"actor_rollout_ref.model.path={hf}"]
    out = _run("pixelis_verl.train", [*args, f"trainer.total_training_steps={LEARN_STEPS}"], tmp_path)
    assert "pixelis_verl.train: done" in out
    (rft,) = tmp_path.iterdir()
    metrics = _metrics(rft)
    assert metrics[LEARN_STEPS]["training/global_step"] == LEARN_STEPS
    before, after = metrics[0][VAL_RATE], metrics[LEARN_STEPS][VAL_RATE]
    assert after >= before + MIN_GAIN, (
        before,
        after,
        [metrics[s]["pixelis_reward/tool_bonus/mean"] for s in range(1, LEARN_STEPS + 1)],
    )


def test_lora_sft_with_the_argument_head_trains_the_adapters_and_the_head_and_merges_into_a_plain_model(tmp_path):
    """One short run for both options of phase 1 (cheaper in CI than one each): rank-8 adapters on the language
    model (conf/lora/sft_adapters.yaml's keys) and the argument head, which trains in full beside them."""
    args = ["--config-name", "sft_tiny_cpu", "trainer.total_training_steps=2", "trainer.test_freq=-1"]
    args += ["data.argument_head.enable=true", "pixelis.sft_data.num_train=16", "pixelis.sft_data.num_val=8"]
    args += ["model.lora_rank=8", "model.lora_alpha=16", "model.target_modules=all-linear",
             "model.exclude_modules=.*visual.*", "checkpoint.save_contents=[model,optimizer,extra]"]  # fmt: skip
    _run("pixelis_verl.sft", args, tmp_path / "runs")
    (run,) = (tmp_path / "runs").iterdir()
    assert sorted(_metrics(run)) == [1, 2]
    state = check_lora_checkpoint(run / "checkpoints" / "global_step_2", tmp_path)
    head = sorted(k for k in state if k.startswith("pixelis_argument_head."))
    assert len(head) == 4, head  # two linear layers, weights and biases, trained in full (no adapters on them)
