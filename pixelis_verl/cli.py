"""What the entry points share: parse, compose and check a recipe, prepare the run, run verl, report in one line.

``python -m pixelis_verl.train`` (RL and TTRL), ``python -m pixelis_verl.evaluate`` and ``python -m
pixelis_verl.sft`` differ only in their own checks, how they prepare the run directory and what they run; a
mistake the user made is one line naming the key or file and exit code 2. The run directory (`prepare_run_dir`),
the processor check (`check_processor`) and verl's PPO entry under a private Ray token (`run`) live here so no
entry imports another.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from pixelis_verl.cluster import attach, private_ray_auth
from pixelis_verl.config import RecipeError, check, check_paths, compose_recipe, rehearsal_overrides, resolve
from pixelis_verl.preflight import run_preflight
from pixelis_verl.run_metrics import logger_env


def _absolute(path: str) -> str:
    return str(Path(os.path.expanduser(path)).resolve())


def recipe_main(
    prog: str,
    description: str,
    argv: list[str] | None,
    prepare: Callable[[DictConfig, list[str]], Path],
    run: Callable[[DictConfig, Path], int],
) -> int:
    """Compose `--config-name` with the overrides; `--cfg job` prints it; else check, `prepare` (its own checks and
    the run directory, returned), check the paths and `run`; returns the exit code."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config-name", "-cn", required=True, help="recipe name, a file in recipes/ without .yaml")
    parser.add_argument("--cfg", choices=["job"], help="print the resolved config and exit")
    parser.add_argument(
        "--preflight", action="store_true", help="run the recipe checks and the pre-flight arithmetic, then exit"
    )
    parser.add_argument(
        "--rehearse",
        action="store_true",
        help="run a GPU recipe on this CPU machine: the tiny model of its family, cpu_local, a small scale "
        "(conf/rehearse/); everything else as the recipe says",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. trainer.total_training_steps=2")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    name = prog.split()[-1]
    try:
        cfg = compose_recipe(args.config_name, args.overrides)
        if args.rehearse:
            cfg = compose_recipe(args.config_name, [*args.overrides, *rehearsal_overrides(cfg)])
        # Absolute before anything interpolates them: workers do not share the driver's working directory.
        cfg.pixelis.run_dir = _absolute(cfg.pixelis.run_dir)
        if OmegaConf.select(cfg, "data.path", throw_on_missing=False) is not None:  # an evaluation's benchmark copy
            cfg.data.path = _absolute(cfg.data.path)
        cfg = resolve(cfg)
        if args.cfg == "job":
            print(OmegaConf.to_yaml(cfg))
            return 0
        check(cfg)
        checked = run_preflight(cfg)
        if args.preflight:
            print(f"{name}: {checked}")
            return 0
        run_dir = prepare(cfg, args.overrides)
        check_paths(cfg)
    except RecipeError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    print(f"{name}: recipe {args.config_name}, {checked}, run directory {run_dir}", flush=True)
    code = run(cfg, run_dir)
    print(f"{name}: {'done' if code == 0 else f'failed ({code})'}; run directory: {run_dir}", flush=True)
    return code


def set_worker_env(cfg: DictConfig, name: str, value: str) -> None:
    """Set a variable here and in the run's Ray runtime environment.

    A private Ray instance inherits this process's environment; a cluster's workers (a Ray job) see only the
    runtime environment, which verl passes to ``ray.init`` from ``ray_kwargs.ray_init.runtime_env``.
    """
    os.environ[name] = value
    OmegaConf.update(cfg, f"ray_kwargs.ray_init.runtime_env.env_vars.{name}", value, force_add=True)


def prepare_run_dir(cfg: DictConfig) -> Path:
    """Create the run directory and point verl's file logger and rollout dumps into it."""
    run_dir = Path(cfg.pixelis.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    synth = cfg.pixelis.get("synth_data")
    if synth is not None and synth.get("enable", False):
        from pixelis_verl.data.rl_rows import write_task_parquet

        for split, num, seed in (("train", synth.num_train, synth.seed), ("val", synth.num_val, synth.seed + 1)):
            path = run_dir / "data" / f"{split}.parquet"
            write_task_parquet(
                path,
                num=num,
                seed=seed,
                split=split,
                kinds=list(synth.kinds),
                data_root=cfg.pixelis.data_root,
                shown_max_pixels=synth.shown_max_pixels,
                select_tools=synth.select_tools,
                tool_free=synth.tool_free,
            )
    # verl's FileLogger runs in the TaskRunner actor. It truncates its file: a resumed run keeps the earlier
    # starts' metrics as metrics.1.jsonl, metrics.2.jsonl, ...
    metrics = run_dir / "metrics.jsonl"
    if metrics.exists():
        metrics.rename(run_dir / f"metrics.{len(list(run_dir.glob('metrics.*.jsonl'))) + 1}.jsonl")
    for name, value in logger_env(run_dir).items():
        set_worker_env(cfg, name, value)
    attach(cfg)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    return run_dir


PROBE_TOOL = {
    "type": "function",
    "function": {"name": "pixelis_probe_tool", "description": "probe", "parameters": {"type": "object"}},
}


def check_processor(model: DictConfig, key: str) -> None:
    """verl's ``hf_processor`` returns None on failure and the run silently goes text-only: refuse that. Refuse a
    chat template that drops the tool schemas too (Qwen2.5-VL's own does): the model would never see its tools.

    `model` is the recipe's model block (`path`, `trust_remote_code`, `custom_chat_template`), found at `key`.
    """
    from transformers import AutoConfig
    from verl.utils import hf_processor

    if not hasattr(AutoConfig.from_pretrained(model.path, trust_remote_code=model.trust_remote_code), "vision_config"):
        return
    processor = hf_processor(model.path, trust_remote_code=model.trust_remote_code)
    if processor is None or getattr(processor, "image_processor", None) is None:
        raise RecipeError(f"{key}.path: '{model.path}' is a vision-language model but its processor failed to load")
    template = model.get("custom_chat_template")
    where = f"{key}.custom_chat_template" if template else f"the chat template of {key}.path '{model.path}'"
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    try:
        text = processor.apply_chat_template(messages, tools=[PROBE_TOOL], chat_template=template, tokenize=False)
    except Exception as exc:  # jinja and transformers raise assorted types; the recipe is what is wrong
        raise RecipeError(f"{where}: does not render: {str(exc).splitlines()[0]}") from exc
    if PROBE_TOOL["function"]["name"] not in text:
        raise RecipeError(
            f"{where}: does not render tool schemas; set {key}.custom_chat_template="
            "${pixelis_chat_template:qwen_vl_tools} (ours, for Qwen2.5-VL and Qwen3-VL)"
        )


def run(cfg: DictConfig) -> Path:
    """Run verl's PPO/GRPO entry (or, for a recipe with a `ttrl` block, the TTRL loop on verl's workers) on a
    resolved, checked config; return the run directory."""
    import psutil
    import ray
    from verl.trainer.main_ppo import main as verl_main_ppo

    from pixelis_verl.ttrl.runner import run_ttrl

    entry = run_ttrl if "ttrl" in cfg else verl_main_ppo
    run_dir = Path(cfg.pixelis.run_dir)
    # TransferQueue asks torch for 8 threads and warns on every batch where fewer cores exist.
    os.environ.setdefault("TQ_NUM_THREADS", str(min(8, psutil.cpu_count(logical=False) or 1)))
    with private_ray_auth(cfg):
        try:
            entry(cfg)  # hydra's decorator on verl's main passes a given config straight to its task function
        finally:
            if ray.is_initialized():
                ray.shutdown()
    return run_dir
