"""Recipes compose over verl's base config, every path they name exists, and mistakes fail in one line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import verl
import yaml
from omegaconf import OmegaConf
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.utils.config import validate_config
from verl.utils.import_utils import load_extern_object

from pixelis_verl.config import CONF_DIR, REPO_ROOT, RecipeError, available_recipes, check, compose_recipe, resolve
from pixelis_verl.preflight import VLLM_LORA_RANKS
from pixelis_verl.sft.checks import check_sft
from pixelis_verl.tiny.build import tiny_model_path

GOLDEN_DIR = Path(__file__).parent / "golden"


def test_verl_is_the_pinned_version():
    assert verl.__version__ == "0.9.1"


def _vllm_lora_rank_check(monkeypatch):
    """verl's validate_config asks vLLM itself whether a LoRA rank is supported; vLLM is a GPU-node package, so
    here the same question is answered from vLLM's list of ranks."""
    import types

    def max_lora_rank(rank: int) -> int:
        assert rank in VLLM_LORA_RANKS, f"LoRA rank {rank} is not one vLLM serves: {VLLM_LORA_RANKS}"
        return rank

    stub = types.ModuleType("verl.workers.rollout.vllm_rollout.utils")
    stub.get_vllm_max_lora_rank = max_lora_rank
    monkeypatch.setitem(sys.modules, "verl.workers.rollout.vllm_rollout", types.ModuleType("vllm_rollout"))
    monkeypatch.setitem(sys.modules, "verl.workers.rollout.vllm_rollout.utils", stub)


@pytest.mark.parametrize("recipe", available_recipes())
def test_recipe_composes_resolves_and_passes_checks(recipe, monkeypatch):
    """Ours and verl's own checks (main_ppo's validate_config), for the GPU recipes too; SFT recipes too."""
    # An evaluation recipe has no default checkpoint: the GPU ones are given a hub id (they allow hub downloads).
    # The learner is not built in CI (`make learner`, ~45 minutes): the tiny model of its family stands in.
    overrides = []
    if "learner" in recipe:
        key = "actor_rollout_ref.model.path" if recipe.startswith("rft_") else "model.path"
        overrides = [f"{key}={tiny_model_path('qwen3_vl')}"]
    elif recipe.startswith("eval_") and recipe != "eval_tiny_cpu":
        overrides = ["model.path=Qwen/Qwen2.5-VL-7B-Instruct"]
    cfg = resolve(compose_recipe(recipe, overrides))
    check(cfg)
    if recipe.startswith("sft_"):
        check_sft(cfg)  # verl's SFT trainer has no validate_config: ours builds its config dataclasses
        return
    if OmegaConf.select(cfg, "actor_rollout_ref.model.lora_rank", default=0) > 0:
        _vllm_lora_rank_check(monkeypatch)
    validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    for key in (
        "actor_rollout_ref.rollout.multi_turn.tool_config_path",
        "actor_rollout_ref.rollout.agent.agent_loop_config_path",
    ):
        value = OmegaConf.select(cfg, key)
        assert value is None or Path(value).is_file(), f"{recipe}: {key} -> {value}"


@pytest.mark.parametrize("recipe", available_recipes())
def test_recipe_matches_its_golden_flattened_config(recipe):
    """A verl bump or a changed default shows up here as a diff; regenerate with UPDATE_GOLDEN=1."""
    text = OmegaConf.to_yaml(compose_recipe(recipe), resolve=False)
    golden = GOLDEN_DIR / f"{recipe}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no golden config for {recipe}; run with UPDATE_GOLDEN=1"
    assert text == golden.read_text()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["trainer.totl_steps=3"], "unknown config key 'trainer.totl_steps'"),
        (["actor_rollout_ref.rollout.nn=3"], "unknown config key 'actor_rollout_ref.rollout.nn'"),
    ],
)
def test_misspelt_key_fails_naming_it(overrides, message):
    with pytest.raises(RecipeError, match=message):
        compose_recipe("rft_tiny_cpu", overrides)


def test_unknown_recipe_fails_listing_the_known_ones():
    with pytest.raises(RecipeError, match="unknown recipe 'rft_tiny_gpu'; available: .*rft_tiny_cpu"):
        compose_recipe("rft_tiny_gpu")


def test_missing_model_path_fails_naming_the_key():
    cfg = resolve(compose_recipe("rft_tiny_cpu", ["actor_rollout_ref.model.path=/nowhere/model"]))
    with pytest.raises(RecipeError, match="actor_rollout_ref.model.path: '/nowhere/model' is not a local directory"):
        check(cfg)


@pytest.mark.parametrize(
    ("override", "replacement"),
    [
        ("reward_model.reward_manager=dapo", "reward.reward_manager.name"),
        ("reward_model.enable=true", "reward.reward_model.enable"),
        ("custom_reward_function.path=my_reward.py", "reward.custom_reward_function.path"),
    ],
)
def test_legacy_reward_keys_that_verl_ignores_are_refused(override, replacement):
    cfg = resolve(compose_recipe("rft_tiny_cpu", [override]))
    key = override.split("=")[0]
    with pytest.raises(RecipeError, match=f"'{key}' is ignored by verl 0.9.1's trainer; set '{replacement}' instead"):
        check(cfg)


def test_gpu_recipes_run_the_pixelis_reward_on_vllm_with_the_kl_anchor():
    for recipe in ("rft_qwen25vl_7b", "rft_qwen3vl_8b"):
        cfg = resolve(compose_recipe(recipe))
        assert cfg.reward.reward_manager.name == "pixelis" and cfg.actor_rollout_ref.rollout.name == "vllm"
        assert cfg.actor_rollout_ref.actor.use_kl_loss and cfg.algorithm.adv_estimator == "grpo"
        assert cfg.actor_rollout_ref.rollout.n == 8 and cfg.trainer.device == "cuda"


def test_every_class_named_in_our_yaml_imports():
    """Upstream deletes what we import (verl removed its zoom tool in #6302): import each class_name/_target_."""
    names = []
    for path in CONF_DIR.rglob("*.yaml"):
        text = yaml.safe_load(path.read_text())
        entries = text.get("tools", []) if isinstance(text, dict) else text if isinstance(text, list) else []
        names += [e.get("class_name") or e.get("_target_") for e in entries if isinstance(e, dict)]
    assert "pixelis_verl.tools.zoom.ZoomInTool" in names and "pixelis_verl.agent_loop.PixelisToolAgentLoop" in names
    for name in names:
        module, obj = name.rsplit(".", 1)
        assert load_extern_object(f"pkg://{module}", obj) is not None


def test_cli_prints_the_resolved_config_and_reports_errors_in_one_line():
    run = [sys.executable, "-m", "pixelis_verl.train", "--config-name", "rft_tiny_cpu"]
    shown = subprocess.run([*run, "--cfg", "job"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    printed = yaml.safe_load(shown.stdout)
    assert printed["actor_rollout_ref"]["rollout"]["name"] == "hf" and "${" not in shown.stdout

    bad = subprocess.run([*run, "trainer.totl=1"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "pixelis_verl.train: error: unknown config key 'trainer.totl' "
        "(check its spelling; add new keys with a leading '+')"
    )


def test_a_torchrun_launch_must_name_its_shared_run_dir(monkeypatch, capsys):
    from pixelis_verl.sft.__main__ import main as sft_main

    monkeypatch.setenv("LOCAL_RANK", "0")
    assert sft_main(["--config-name", "sft_tiny_cpu"]) == 2
    assert "pixelis.run_dir: under torchrun every rank needs the same run directory" in capsys.readouterr().err
    assert sft_main(["--config-name", "sft_tiny_cpu", "pixelis.run_dir=/tmp/shared"]) == 2
    assert "pixelis.sft_data.enable: ranks would synthesise into one folder at once" in capsys.readouterr().err


def test_an_evaluation_without_a_checkpoint_fails_naming_model_path():
    with pytest.raises(RecipeError, match="model.path: name the checkpoint to evaluate"):
        check(resolve(compose_recipe("eval_vstar")))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval.protocol.options=random", "eval.protocol.options: one of"),
        ("eval.protocol.samples=4", "eval.protocol.samples > 1 repeats the same greedy answer"),
    ],
)
def test_evaluation_protocol_mistakes_fail_naming_the_key(override, message):
    with pytest.raises(RecipeError, match=message):
        check(resolve(compose_recipe("eval_tiny_cpu", [override])))


def test_a_local_path_that_does_not_exist_fails_even_where_hub_ids_are_allowed():
    cfg = resolve(compose_recipe("eval_vstar", ["model.path=/ckpt/typo"]))
    with pytest.raises(RecipeError, match="actor_rollout_ref.model.path: '/ckpt/typo' is not a local directory$"):
        check(cfg)
    check(resolve(compose_recipe("eval_vstar", ["model.path=Qwen/Qwen2.5-VL-7B-Instruct"])))  # a hub id passes


def _tiny_model_block(template):
    from pixelis_verl.tiny.build import tiny_model_path

    block = {"path": str(tiny_model_path("qwen2_5_vl")), "trust_remote_code": False, "custom_chat_template": template}
    return OmegaConf.create(block)


def test_the_gpu_model_groups_ship_a_chat_template_that_renders_tools():
    from pixelis_verl.cli import check_processor

    for recipe in ("rft_qwen25vl_7b", "rft_qwen3vl_8b", "sft_qwen25vl_7b", "sft_qwen3vl_8b"):
        cfg = resolve(compose_recipe(recipe))
        model = cfg.model if recipe.startswith("sft_") else cfg.actor_rollout_ref.model
        assert "<tools>" in model.custom_chat_template, recipe
    check_processor(_tiny_model_block(model.custom_chat_template), "actor_rollout_ref.model")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{% for m in messages %}{{ m.role }}{% endfor %}", "custom_chat_template: does not render tool schemas"),
        ("{% for m in messages %}", "custom_chat_template: does not render: "),
    ],
)
def test_a_chat_template_that_drops_tools_or_breaks_fails_naming_the_key(template, message):
    from pixelis_verl.cli import check_processor

    with pytest.raises(RecipeError, match=f"actor_rollout_ref.model.{message}"):
        check_processor(_tiny_model_block(template), "actor_rollout_ref.model")


def test_an_unknown_chat_template_name_fails_listing_ours():
    with pytest.raises(RecipeError, match="no chat template 'qwen_vl' in .* \\(known: qwen_vl_tools\\)"):
        resolve(
            compose_recipe(
                "rft_qwen25vl_7b", ["actor_rollout_ref.model.custom_chat_template=${pixelis_chat_template:qwen_vl}"]
            )
        )


def test_a_learner_recipe_before_make_learner_fails_in_one_line_saying_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELIS_LEARNER_DIR", str(tmp_path))
    with pytest.raises(RecipeError, match="the learner model qwen3_vl is not built .* run `make learner`"):
        resolve(compose_recipe("eval_learner_cpu"))


def test_a_greedy_evaluation_gives_verls_agent_loop_temperature_0_and_a_sampled_one_its_temperature():
    """verl's agent loop reads val_kwargs.temperature only; a greedy protocol at temperature 1 used to sample."""
    greedy = resolve(compose_recipe("eval_tiny_cpu"))
    assert greedy.actor_rollout_ref.rollout.val_kwargs.temperature == 0.0
    sampling = ["eval.protocol.do_sample=true", "eval.protocol.temperature=0.7"]
    sampled = resolve(compose_recipe("eval_tiny_cpu", sampling))
    assert sampled.actor_rollout_ref.rollout.val_kwargs.temperature == 0.7
