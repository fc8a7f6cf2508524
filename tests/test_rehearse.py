"""Rehearsals of the GPU recipes: `--rehearse` swaps only what a CPU cannot do, and the runner's bookkeeping."""

import pytest
import yaml
from omegaconf import OmegaConf

from pixelis_verl.config import CONF_DIR, compose_recipe, rehearsal_overrides
from pixelis_verl.eval.benchmarks import build_adapter
from pixelis_verl.rehearse import benchmark_data, gpu_recipes, phase_and_family


def _flat(node, prefix=""):
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: node}


def _yaml_keys(path):
    document = yaml.safe_load(path.read_text())
    document.pop("defaults", None)
    return set(_flat(document))


ALLOWED = {  # phase -> the files whose keys a rehearsal may change
    "rl": ["rehearse/rl.yaml", "cluster/cpu_local.yaml"],
    "ttrl": ["rehearse/rl.yaml", "rehearse/ttrl.yaml", "cluster/cpu_local.yaml"],
    "eval": ["rehearse/rl.yaml", "rehearse/eval.yaml", "cluster/cpu_local.yaml"],
    "sft": ["rehearse/sft.yaml", "cluster/cpu_local_sft.yaml"],
}


@pytest.mark.parametrize("recipe", gpu_recipes())
def test_a_rehearsal_changes_only_what_a_cpu_cannot_do(recipe):
    cfg = compose_recipe(recipe)
    phase_override, model_override = rehearsal_overrides(cfg)
    phase = phase_override.split("=")[1]
    rehearsed = compose_recipe(recipe, [phase_override, model_override])
    before = _flat(OmegaConf.to_container(cfg, resolve=False))
    after = _flat(OmegaConf.to_container(rehearsed, resolve=False))
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    allowed = set().union(*(_yaml_keys(CONF_DIR / f) for f in ALLOWED[phase]))
    model_key = model_override.split("=")[0]
    assert changed - allowed == {model_key}, sorted(changed - allowed)
    family = "qwen3_vl" if "qwen3vl" in recipe else "qwen2_5_vl"  # eval recipes default to the Qwen2.5-VL group
    assert phase_and_family(cfg) == (phase, family) and model_override == f"{model_key}=${{pixelis_tiny:{family}}}"
    assert rehearsed.trainer.device == "cpu"


def test_the_gpu_recipes_cover_every_phase_and_family_and_every_benchmark():
    recipes = gpu_recipes()
    for phase in ("rft", "sft", "ttrl"):
        assert {f"{phase}_qwen25vl_7b", f"{phase}_qwen3vl_8b"} <= set(recipes)
    benchmarks = {p.stem for p in (CONF_DIR / "eval" / "benchmark").glob("*.yaml")}
    assert {f"eval_{b}" for b in benchmarks} <= set(recipes) and not any("_cpu" in r for r in recipes)


def test_each_evaluation_rehearsal_reads_its_benchmarks_layout_through_its_adapter(tmp_path):
    for recipe in (r for r in gpu_recipes() if r.startswith("eval_")):
        cfg = compose_recipe(recipe)
        folder = benchmark_data(cfg, tmp_path)
        params = OmegaConf.to_container(cfg.eval.benchmark.params, resolve=True)
        items = build_adapter(cfg.eval.benchmark.adapter, params, recipe).load(folder)
        assert items and folder.name == cfg.eval.benchmark.name, recipe
