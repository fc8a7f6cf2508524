"""TTRL as a Ray job: checks and stream preparation on the driver, the loop in a Ray task-runner actor.

`python -m pixelis_verl.train --config-name ttrl_tiny_cpu ttrl.stream.path=...` lands here for any recipe with a
`ttrl` block. verl's `run_ppo` starts (or joins, under `ray job submit`) the Ray cluster and runs our
`TTRLTaskRunner`: verl's task runner with `TTRLWorker` as the actor/rollout/reference worker and
`TTRLTrainer.serve()` where `fit()` was.
"""

from __future__ import annotations

from pathlib import Path

import ray
from omegaconf import DictConfig, OmegaConf
from verl.trainer.main_ppo_v0 import BaseTaskRunner

from pixelis_verl.ttrl.config import ttrl_config


def write_synth_stream(cfg: DictConfig) -> None:
    """Write the synthetic stream (`pixelis.synth_stream`) to `ttrl.stream.path` unless it exists (a restart)."""
    synth, path = cfg.pixelis.get("synth_stream"), Path(cfg.ttrl.stream.path)
    if synth is not None and synth.enable and not path.exists():
        from pixelis_verl.ttrl.synth_stream import write_stream

        write_stream(path, cfg.pixelis.data_root, synth.num, synth.seed, list(synth.kinds), synth.bad_every,
                     synth.select_tools)  # fmt: skip


@ray.remote
class TTRLTaskRunner(BaseTaskRunner):
    def add_actor_rollout_worker(self, config: DictConfig):
        from pixelis_verl.ttrl.worker import TTRLWorker

        _, group_cls = super().add_actor_rollout_worker(config)
        for role in self.role_worker_mapping:
            self.role_worker_mapping[role] = ray.remote(TTRLWorker)
        return TTRLWorker, group_cls

    def run(self, config: DictConfig) -> dict[str, float]:
        from verl.trainer.ppo.utils import need_critic, need_reference_policy
        from verl.utils.config import omega_conf_to_dataclass, validate_config

        from pixelis_verl.ttrl.driver import TTRLTrainer

        OmegaConf.resolve(config)
        _, group_cls = self.add_actor_rollout_worker(config)
        self.add_reward_model_resource_pool(config)
        validate_config(config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
        model = omega_conf_to_dataclass(config.actor_rollout_ref.model)
        trainer = TTRLTrainer(
            config=config,
            tokenizer=model.tokenizer,
            processor=model.processor,
            role_worker_mapping=self.role_worker_mapping,
            resource_pool_manager=self.init_resource_pool_mgr(config),
            ray_worker_group_cls=group_cls,
            ttrl=ttrl_config(config),
        )
        trainer.init_workers()
        return trainer.serve()


def run_ttrl(cfg: DictConfig) -> None:
    from verl.trainer.main_ppo import run_ppo

    run_ppo(cfg, task_runner_class=TTRLTaskRunner)
