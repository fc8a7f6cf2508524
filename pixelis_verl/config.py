"""Composing and checking recipes: the Hydra side of every entry (``python -m pixelis_verl.<entry>``).

Recipes in ``recipes/`` extend verl's own ``ppo_trainer`` config and compose our groups from
``conf/`` (cluster, model, data, reward). Composition errors from Hydra are long; here every
mistake a user can make on the command line (unknown recipe, misspelt key, a path that does not
exist, keys verl 0.9.1 silently ignores) becomes one line that names the culprit.

This module sits at the top, beside the entries: it reaches down to the phases' own checks (`PHASE_CHECKS`)
and the model builders (the resolvers), and nothing below imports it. The leaves every layer uses,
`RecipeError` and `from_dict`, live in `typed_config.py`; the repository paths in `paths.py`.
"""

from __future__ import annotations

import importlib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from pixelis_verl.paths import CHAT_TEMPLATES_DIR, CONF_DIR, RECIPES_DIR, REPO_ROOT
from pixelis_verl.typed_config import RecipeError, from_dict, values_at

__all__ = ["REPO_ROOT", "CONF_DIR", "RecipeError", "from_dict", "values_at", "compose_recipe", "resolve", "check"]

SEARCHPATH_OVERRIDE = f"hydra.searchpath=[pkg://verl.trainer.config,file://{CONF_DIR}]"

# Top-level groups verl 0.9.1's main_ppo accepts but never reads (the reward moved under `reward.`);
# a recipe setting anything in them is a reward setting that silently does not apply.
IGNORED_LEGACY_GROUPS = ("reward_model", "custom_reward_function", "sandbox_fusion")
LEGACY_REPLACEMENTS = {
    "reward_model.reward_manager": "reward.reward_manager.name",
    "reward_model.num_workers": "reward.num_workers",
    "reward_model.model.path": "reward.reward_model.model_path",
}


def _legacy_replacement(key: str) -> str:
    """Where verl 0.9.1 reads what a top-level legacy key meant (its own migrate_legacy_reward_impl's map)."""
    if key in LEGACY_REPLACEMENTS:
        return LEGACY_REPLACEMENTS[key]
    return "reward." + key if not key.startswith("reward_model.") else "reward.reward_model." + key.split(".", 1)[1]


def _tiny_model(family: str) -> str:
    from pixelis_verl.tiny.build import tiny_model_path

    return str(tiny_model_path(family))


def _learner_model(family: str) -> str:
    """The built learner (`make learner`); never built here: it takes tens of minutes, so a recipe says so."""
    from pixelis_verl.tiny.learner import learner_root, read_marker

    path = learner_root() / family
    if read_marker(path) is None:
        raise RecipeError(
            f"the learner model {family} is not built in {path.parent}: run `make learner` "
            "(python -m pixelis_verl.tiny.learner, ~47 minutes once), or set the model path"
        )
    return str(path)


def chat_template(name: str) -> str:
    """The text of ``pixelis_verl/chat_templates/<name>.jinja`` (for ``custom_chat_template``)."""
    path = CHAT_TEMPLATES_DIR / f"{name}.jinja"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CHAT_TEMPLATES_DIR.glob("*.jinja")))
        raise RecipeError(f"no chat template '{name}' in {CHAT_TEMPLATES_DIR} (known: {known})")
    return path.read_text(encoding="utf-8")


def sampling_temperature(do_sample: bool, temperature: float) -> float:
    """The temperature verl's agent loop should get: it reads only `val_kwargs.temperature` (its `do_sample` is
    not consulted), so a greedy protocol must say temperature 0 or it samples at `temperature`."""
    return float(temperature) if do_sample else 0.0


def register_resolvers() -> None:
    """``${pixelis_root:}`` = the repo root; ``${pixelis_tiny:qwen2_5_vl}`` = the cached tiny model;
    ``${pixelis_learner:qwen3_vl}`` = the built learner model;
    ``${pixelis_chat_template:qwen_vl_tools}`` = one of our chat templates, as text;
    ``${pixelis_sampling_temperature:<do_sample>,<temperature>}`` = 0 unless sampling (`sampling_temperature`);
    ``${pixelis_sum:<a>,<b>,...}`` = the integers' sum (a context length that follows the lengths it adds up);
    ``${pixelis_product:<a>,<b>,...}`` = their product (a worker count that follows the node count)."""
    if not OmegaConf.has_resolver("pixelis_root"):
        OmegaConf.register_new_resolver("pixelis_root", lambda: str(REPO_ROOT))
    if not OmegaConf.has_resolver("pixelis_tiny"):
        OmegaConf.register_new_resolver("pixelis_tiny", _tiny_model)
    if not OmegaConf.has_resolver("pixelis_learner"):
        OmegaConf.register_new_resolver("pixelis_learner", _learner_model)
    if not OmegaConf.has_resolver("pixelis_chat_template"):
        OmegaConf.register_new_resolver("pixelis_chat_template", chat_template)
    if not OmegaConf.has_resolver("pixelis_sampling_temperature"):
        OmegaConf.register_new_resolver("pixelis_sampling_temperature", sampling_temperature)
    if not OmegaConf.has_resolver("pixelis_sum"):
        OmegaConf.register_new_resolver("pixelis_sum", lambda *values: sum(int(v) for v in values))
    if not OmegaConf.has_resolver("pixelis_product"):
        OmegaConf.register_new_resolver("pixelis_product", lambda *values: math.prod(int(v) for v in values))


def available_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def _one_line(exc: Exception, overrides: list[str]) -> str:
    text = str(exc)
    key = re.search(r"full_key: ([\w.\[\]]+)", text)
    if "not in struct" in text and key:
        return f"unknown config key '{key.group(1)}' (check its spelling; add new keys with a leading '+')"
    appended = re.search(r"Could not override '([^']+)'.*To append to your config use", text, re.DOTALL)
    if appended:
        return f"unknown config key '{appended.group(1)}' (check its spelling; add new keys with a leading '+')"
    bad = re.search(r"Could not override '([^']+)'", text) or re.search(
        r"Could not append to config\. An item is already at '([^']+)'", text
    )
    if bad:
        return f"bad override for '{bad.group(1)}': {text.splitlines()[-1].strip()}"
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return f"{first} (overrides: {' '.join(overrides) or 'none'})"


def compose_recipe(name: str, overrides: list[str] | None = None) -> DictConfig:
    """Compose ``recipes/<name>.yaml`` over verl's ``ppo_trainer`` with command-line overrides."""
    overrides = list(overrides or [])
    if name not in available_recipes():
        raise RecipeError(f"unknown recipe '{name}'; available: {', '.join(available_recipes())}")
    register_resolvers()
    if not any(o.startswith("hydra.searchpath") for o in overrides):
        overrides.append(SEARCHPATH_OVERRIDE)
    try:
        with initialize_config_dir(config_dir=str(RECIPES_DIR), version_base=None):
            return compose(config_name=name, overrides=overrides)
    except HydraException as exc:
        raise RecipeError(_one_line(exc, overrides[:-1])) from exc


def resolve(cfg: DictConfig) -> DictConfig:
    """Resolve every interpolation now, in the driver, so Ray workers need none of our resolvers."""
    try:
        OmegaConf.resolve(cfg)
    except Exception as exc:  # omegaconf raises many types; all are user-facing here
        raise RecipeError(f"cannot resolve config: {str(exc).splitlines()[0]}") from exc
    return cfg


def _leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every (dotted key, value) under `node`, skipping mandatory values left unset (``???``)."""
    if not isinstance(node, DictConfig):
        return [(prefix, node)]
    found: list[tuple[str, Any]] = []
    for key in node.keys():
        if not OmegaConf.is_missing(node, key):
            found += _leaves(node[key], f"{prefix}.{key}" if prefix else str(key))
    return found


def replace_leaves(cfg: DictConfig, old: Any, new: Any) -> list[str]:
    """Set every value equal to `old` in a resolved config to `new` (a value interpolated from one key lives on in
    the keys that copied it); returns the keys changed."""
    keys = [key for key, value in _leaves(cfg) if value == old]
    for key in keys:
        OmegaConf.update(cfg, key, new)
    return keys


# The checks of the blocks a phase adds to a recipe, by the block's top-level key: "module:function", imported only
# when a recipe has the block. A new phase with its own block adds one line here.
PHASE_CHECKS = {
    "ttrl": "pixelis_verl.ttrl.checks:check_ttrl",
    "eval": "pixelis_verl.eval.checks:check_eval",
}


def check(cfg: DictConfig) -> None:
    """Fail fast on mistakes verl would report late, obscurely, or never (before anything is written)."""
    for group in IGNORED_LEGACY_GROUPS:
        for key, value in _leaves(cfg.get(group), group):
            if value is not None:
                raise RecipeError(
                    f"'{key}' is ignored by verl 0.9.1's trainer; set '{_legacy_replacement(key)}' instead"
                )
    if OmegaConf.select(cfg, "reward.reward_manager.name") == "pixelis":
        from pixelis_verl.rewards.manager import build_components

        try:
            build_components(cfg)
        except ValueError as exc:
            raise RecipeError(str(exc)) from exc
    for block, where in PHASE_CHECKS.items():
        if block in cfg:
            module, function = where.split(":")
            getattr(importlib.import_module(module), function)(cfg)
    key = model_key(cfg) + ".path"
    model_path = OmegaConf.select(cfg, key)
    allow_hub = bool(OmegaConf.select(cfg, "pixelis.allow_hub_download", default=False))
    # A hub id is "org/name"; anything else that does not exist is a local path with a typo, hub or not.
    hub_id = bool(re.fullmatch(r"[\w.-]+/[\w.-]+", str(model_path or ""))) and not str(model_path).startswith(".")
    if not model_path or (not Path(os.path.expanduser(model_path)).exists() and not (allow_hub and hub_id)):
        hint = "" if allow_hub else " (set pixelis.allow_hub_download=true to fetch a hub id)"
        raise RecipeError(f"{key}: '{model_path}' is not a local directory{hint}")


@dataclass(frozen=True)
class Family:
    """What a Qwen-VL family's recipes must agree on (the model groups in conf/model/ set each)."""

    coord_frames: tuple[str, ...]  # frames its tools may read boxes in (the first: its own grounding)
    size_factor: int  # vision patch x merge
    patch_size: int


FAMILIES = {  # by the model config's model_type; the tiny model of each is ${pixelis_tiny:<name>}
    "qwen2_5_vl": Family(("absolute_resized", "absolute_source"), 28, 14),
    "qwen3_vl": Family(("relative_1000",), 32, 16),
}


PHASE_ENTRIES = {  # recipe_phase -> the entry module that runs it
    "rl": "pixelis_verl.train",
    "ttrl": "pixelis_verl.train",
    "eval": "pixelis_verl.evaluate",
    "sft": "pixelis_verl.sft",
}


def recipe_phase(cfg: DictConfig) -> str:
    """ttrl, eval, rl or sft: what a composed recipe runs (the block it has)."""
    if "ttrl" in cfg:
        return "ttrl"
    if "eval" in cfg:
        return "eval"
    return "rl" if OmegaConf.select(cfg, "actor_rollout_ref") is not None else "sft"


def recipe_family(cfg: DictConfig) -> str:
    """The model family a composed recipe is set up for: by its image patch size, or (an SFT recipe, which has
    none) by the frame its argument head reads boxes in."""
    patch = OmegaConf.select(cfg, "data.image_patch_size")
    frame = OmegaConf.select(cfg, "data.argument_head.coord_frame", default="absolute_resized")
    for name, family in FAMILIES.items():
        if patch == family.patch_size or (patch is None and frame == family.coord_frames[0]):
            return name
    raise RecipeError(f"data.image_patch_size: {patch} names no model family ({sorted(FAMILIES)})")


def rehearsal_overrides(cfg: DictConfig) -> list[str]:
    """The overrides that turn a composed GPU recipe into its CPU rehearsal (``--rehearse`` on an entry): the
    rehearse group of its phase (conf/rehearse/: cpu_local, no GPU kernels, small scale) and the tiny model of its
    family in place of the 7B/8B weights. Everything else stays the recipe's."""
    phase = recipe_phase(cfg)
    key = "model" if phase == "eval" else model_key(cfg)  # an evaluation's actor reads its top-level model.path
    return [f"+rehearse@_global_={phase}", f"{key}.path=${{pixelis_tiny:{recipe_family(cfg)}}}"]


def model_key(cfg: DictConfig) -> str:
    """Where a recipe names its model: the RL trainer's actor, or the SFT trainer's top-level `model`."""
    return "actor_rollout_ref.model" if OmegaConf.select(cfg, "actor_rollout_ref.model") is not None else "model"


def check_paths(cfg: DictConfig) -> None:
    """Every data file and ``*_path`` the run reads exists (after generated data is written)."""
    for key in ("data.train_files", "data.val_files"):
        for file in values_at(cfg, key):
            if not Path(os.path.expanduser(file)).exists():
                raise RecipeError(f"{key}: no such file '{file}'")
    paths = [(key, value) for key, value in _leaves(cfg) if key.endswith("_path") and isinstance(value, str) and value]
    for key, value in paths:
        if key.startswith(("actor_rollout_ref.rollout.multi_turn", "data.", "pixelis.")) and not value.startswith(
            ("pkg://", "hdfs://")
        ):
            if not Path(os.path.expanduser(value)).exists():
                raise RecipeError(f"{key}: no such file '{value}'")
