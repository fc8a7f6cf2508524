"""Train with a recipe: ``python -m pixelis_verl.train --config-name <recipe> [--cfg job] [key=value ...]``.

Composes ``recipes/<recipe>.yaml`` over verl's ``ppo_trainer``, prepares a run directory (resolved
config, metrics JSONL, sampled trajectories, checkpoints, generated data) and hands the config to
verl's own ``main_ppo`` entry, so the trainer, agent loop, reward loop and workers are verl's. A recipe with
a ``ttrl`` block runs the Pixel TTRL loop instead (``pixelis_verl.ttrl.runner``: verl's ``run_ppo`` with our
task runner, on the same workers). Our plugin is active in every Ray process through the ``verl.plugins``
entry point.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from pixelis_verl.cli import recipe_main
from pixelis_verl.cluster import attach, check_cluster, private_ray_auth
from pixelis_verl.run_metrics import logger_env
from pixelis_verl.typed_config import RecipeError


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


def _prepare(cfg: DictConfig, overrides: list[str]) -> Path:
    check_processor(cfg.actor_rollout_ref.model, "actor_rollout_ref.model")
    run_dir = prepare_run_dir(cfg)
    if "ttrl" in cfg:
        from pixelis_verl.ttrl.runner import write_synth_stream

        write_synth_stream(cfg)
    check_cluster(cfg)
    return run_dir


def _run(cfg: DictConfig, run_dir: Path) -> int:
    run(cfg)
    return 0


def main(argv: list[str] | None = None) -> int:
    return recipe_main("python -m pixelis_verl.train", __doc__.splitlines()[0], argv, _prepare, _run)


if __name__ == "__main__":
    sys.exit(main())
