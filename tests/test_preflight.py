"""The pre-flight check: every GPU recipe passes it with the real Qwen2.5-VL-7B / Qwen3-VL-8B model configs, and
each defect a review found in those recipes is refused, in one line naming the key and the fix, when reintroduced."""

import json

import pytest

from pixelis_verl.config import compose_recipe, resolve
from pixelis_verl.preflight import CHECKS, ModelFacts, preflight, read_model_facts
from pixelis_verl.rehearse import gpu_recipes
from pixelis_verl.train import main as train_main

# The published config.json values the checks read (Hugging Face Qwen/Qwen2.5-VL-7B-Instruct and
# Qwen/Qwen3-VL-8B-Instruct), abridged to those keys.
QWEN25_VL_7B = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl", "hidden_size": 3584,
    "intermediate_size": 18944, "max_position_embeddings": 128000, "num_attention_heads": 28, "num_hidden_layers": 28,
    "num_key_value_heads": 4, "vocab_size": 152064, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "vision_config": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "patch_size": 14,
                      "spatial_merge_size": 2},
}  # fmt: skip
QWEN3_VL_8B = {
    "architectures": ["Qwen3VLForConditionalGeneration"], "model_type": "qwen3_vl", "tie_word_embeddings": False,
    "text_config": {"hidden_size": 4096, "intermediate_size": 12288, "max_position_embeddings": 262144,
                    "num_attention_heads": 32, "num_hidden_layers": 36, "num_key_value_heads": 8, "head_dim": 128,
                    "vocab_size": 151936, "tie_word_embeddings": False},
    "vision_config": {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "patch_size": 16,
                      "spatial_merge_size": 2},
}  # fmt: skip
GPU_RECIPES = [  # (recipe, extra overrides, family)
    ("rft_qwen25vl_7b", [], "q25"), ("rft_qwen3vl_8b", [], "q3"),
    ("ttrl_qwen25vl_7b", [], "q25"), ("ttrl_qwen3vl_8b", [], "q3"),
    ("sft_qwen25vl_7b", [], "q25"), ("sft_qwen3vl_8b", [], "q3"),
    ("eval_vstar", [], "q25"), ("eval_vstar", ["model@_global_=qwen3_vl_8b"], "q3"),
    ("eval_mvbench", ["model@_global_=qwen3_vl_8b_native"], "q3"),
    ("rft_qwen25vl_7b_lora", [], "q25"), ("rft_qwen3vl_8b_lora", [], "q3"),
    ("rft_qwen25vl_7b_lora_1gpu", [], "q25"), ("rft_qwen3vl_8b_lora_1gpu", [], "q3"),
    ("sft_qwen25vl_7b_lora", [], "q25"), ("sft_qwen3vl_8b_lora", [], "q3"),
    ("ttrl_qwen25vl_7b_lora", [], "q25"), ("ttrl_qwen3vl_8b_lora", [], "q3"),
] + [(r, [], "q25") for r in gpu_recipes() if r.startswith("eval_") and r != "eval_vstar"]  # fmt: skip


@pytest.fixture
def models(tmp_path, monkeypatch):
    """Model folders holding the published configs, where the model groups look for local copies."""
    folders = {}
    for name, config in (("q25", QWEN25_VL_7B), ("q3", QWEN3_VL_8B)):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        (folders[name] / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("PIXELIS_QWEN25VL_7B", str(folders["q25"]))
    monkeypatch.setenv("PIXELIS_QWEN3VL_8B", str(folders["q3"]))
    monkeypatch.setenv("PIXELIS_RL_DATA", str(tmp_path))
    return folders


def _findings(recipe, overrides, model_dir):
    extra = [f"model.path={model_dir}", f"data.path={model_dir}"] if recipe.startswith("eval_") else []
    cfg = resolve(compose_recipe(recipe, [*extra, *overrides]))
    return preflight(cfg, read_model_facts(str(model_dir)))


def test_model_facts_come_from_the_published_configs(models):
    q25, q3 = read_model_facts(str(models["q25"])), read_model_facts(str(models["q3"]))
    assert (q25.model_type, q25.kv_bytes_per_token, q25.max_position_embeddings) == ("qwen2_5_vl", 57344, 128000)
    assert (q3.model_type, q3.kv_bytes_per_token, q3.max_position_embeddings) == ("qwen3_vl", 147456, 262144)
    assert 8.2e9 < q25.weight_bytes / 2 < 8.3e9 and 8.7e9 < q3.weight_bytes / 2 < 8.8e9  # parameters from shapes


@pytest.mark.parametrize(("recipe", "overrides", "family"), GPU_RECIPES)
def test_every_gpu_recipe_passes(models, recipe, overrides, family):
    assert _findings(recipe, overrides, models[family]) == []


# Each defect of the review (issue "First cluster runs that work", item 5), reintroduced on a recipe that had it.
DEFECTS = [
    ("rft_qwen3vl_8b", ["actor_rollout_ref.rollout.max_model_len=null"], "q3",
     "actor_rollout_ref.rollout.max_model_len: one sequence of 262144 tokens (unset: the model's maximum) needs "
     "36.0 GiB of KV cache per GPU"),
    ("eval_vstar", ["model@_global_=qwen3_vl_8b", "actor_rollout_ref.rollout.max_model_len=null"], "q3",
     "vLLM will refuse to start; set it to max_prompt_length + max_response_length = 16384"),
    ("rft_qwen25vl_7b", ["actor_rollout_ref.rollout.max_model_len=16000"], "q25",
     "actor_rollout_ref.rollout.max_model_len: 16000 is less than max_prompt_length + max_response_length = 20480"),
    ("eval_vstar", ["actor_rollout_ref.rollout.val_kwargs.temperature=1.0"], "q25",
     "actor_rollout_ref.rollout.val_kwargs.temperature: 1 with do_sample=false"),
    ("ttrl_qwen3vl_8b", ["actor_rollout_ref.actor.ppo_max_token_len_per_gpu=24576"], "q3",
     "actor_rollout_ref.actor.ppo_max_token_len_per_gpu: 24576 tokens is 1.20x one trajectory (20480)"),
    ("rft_qwen25vl_7b", ["trainer.nnodes=3"], "q25",
     "data.train_batch_size: 128 prompts x n=8 = 1024 trajectories do not divide over 24 GPUs"),
    ("rft_qwen3vl_8b", ["model@_global_=qwen2_5_vl_7b"], "q3",
     "pixel_tools.yaml reads ZoomInTool's boxes in absolute_resized with size_factor 28, but the model is qwen3_vl"),
    ("rft_qwen3vl_8b", ["data.image_patch_size=14"], "q3", "data.image_patch_size: 14 but the model is qwen3_vl"),
    ("rft_qwen3vl_8b", ["actor_rollout_ref.nccl_timeout=600"], "q3",
     "actor_rollout_ref.nccl_timeout: 600 s, but rank 0 writes a 35 GB Hugging Face copy"),
    ("rft_qwen25vl_7b", ["actor_rollout_ref.model.use_fused_kernels=false"], "q25",
     "actor_rollout_ref.model.use_fused_kernels: off, so a micro-batch of 40960 tokens holds 23.2 GiB of fp32"),
    ("rft_qwen25vl_7b_lora", ["actor_rollout_ref.model.lora_rank=48"], "q25",
     "actor_rollout_ref.model.lora_rank: 48 is not a rank vLLM serves adapters at"),
    ("rft_qwen3vl_8b_lora", ["actor_rollout_ref.actor.checkpoint.save_contents=[model,hf_model]"], "q3",
     "actor_rollout_ref.actor.checkpoint.save_contents: hf_model with LoRA adapters saves peft's unmerged names"),
    ("sft_qwen25vl_7b_lora", ["checkpoint.save_contents=[model,hf_model]"], "q25",
     "checkpoint.save_contents: hf_model with LoRA adapters saves peft's unmerged names"),
    ("rft_qwen25vl_7b", ["data.max_prompt_length=1024", "actor_rollout_ref.rollout.max_model_len=40000"], "q25",
     "data.max_prompt_length: 1024 tokens cannot hold one question image at shown_max_pixels 1003520 (1280 tokens)"),
]  # fmt: skip


@pytest.mark.parametrize(("recipe", "overrides", "family", "message"), DEFECTS)
def test_each_reintroduced_defect_is_refused(models, recipe, overrides, family, message):
    found = [str(f) for f in _findings(recipe, overrides, models[family])]
    assert any(message in line for line in found), found
    assert all("\n" not in line and "; " in line for line in found)  # one line: the key, the problem; the fix


def test_every_gpu_recipe_is_checked():
    assert {recipe for recipe, _, _ in GPU_RECIPES} == set(gpu_recipes())


def test_every_check_is_exercised_by_a_defect():
    names = {"vllm_kv_cache", "context_lengths", "token_budgets", "logits_memory", "batch_divisibility",
             "model_tool_family", "lora_rank", "lora_hf_copy", "greedy_temperature", "checkpoint_timeout"}  # fmt: skip
    assert set(CHECKS) == names


def test_the_entry_refuses_with_exit_2_and_preflight_alone_exits_0(models, capsys):
    args = ["--config-name", "rft_qwen3vl_8b", "--preflight"]
    assert train_main([*args, "actor_rollout_ref.rollout.max_model_len=null"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pixelis_verl.train: error: pre-flight: actor_rollout_ref.rollout.max_model_len: ")
    assert train_main(args) == 0
    assert capsys.readouterr().out.strip() == "pixelis_verl.train: pre-flight: 10 checks passed (model qwen3_vl)"


def test_an_unreadable_model_skips_the_model_checks_and_says_so(tmp_path):
    assert read_model_facts(str(tmp_path / "nowhere")) is None
    assert read_model_facts("no-such-org/no-such-model") is None
    assert ModelFacts.of(QWEN3_VL_8B, weight_bytes=1).weight_bytes == 1  # measured bytes win over the estimate
