"""verl's SFT trainer with the masked, token-weighted imitation loss; one process per rank under torchrun.

verl 0.9.1's `SFTTrainer` hard-codes its loss (`sft_loss`) and model type in `_build_engine` and has no
option for either, so the smallest extension is a subclass whose `_build_engine` builds the same training
worker with `weighted_sft_loss` (and, with `data.argument_head.enable`, the argument head's engine).
Everything else (FSDP engine, data loading, checkpoints, tracking) is verl's.

    torchrun --nproc_per_node=8 -m pixelis_verl.sft.trainer <run_dir>/config.yaml

`python -m pixelis_verl.sft` writes that resolved config and starts torchrun for you.
"""

from __future__ import annotations

import sys
from functools import partial

from omegaconf import OmegaConf
from verl.trainer.sft_trainer import SFTTrainer

from pixelis_verl.sft.argument_head import MODEL_TYPE, argument_head_config, register_engine
from pixelis_verl.sft.loss import weighted_sft_loss


class WeightedSFTTrainer(SFTTrainer):
    def _build_engine(self) -> None:
        """verl's `_build_engine` with our loss, and with the argument head's engine when it is on."""
        from verl.utils.device import get_device_name
        from verl.workers.engine_workers import TrainingWorker, TrainingWorkerConfig

        head = argument_head_config(self.config.data)
        model_type = "language_model"
        if head.enable:
            register_engine(get_device_name())
            model_type = MODEL_TYPE
        self.loss_fn = partial(weighted_sft_loss, config=None, argument_weight=head.weight if head.enable else 0.0)
        config = TrainingWorkerConfig(
            model_type=model_type,
            model_config=self.model_config,
            engine_config=self.engine_config,
            optimizer_config=self.optimizer_config,
            checkpoint_config=self.checkpoint_config,
            profiler_config=self.profiler_config,
        )
        self.training_client = TrainingWorker(config=config)
        self.training_client.set_loss_fn(loss_fn=self.loss_fn)
        self.engine = self.training_client.engine


def run(config_path: str) -> None:
    """Train on a resolved config file (verl's `run_sft`, with our trainer class)."""
    from verl.utils import distributed

    config = OmegaConf.load(config_path)
    distributed.initialize_global_process_group()
    try:
        WeightedSFTTrainer(config=config).fit()
    finally:
        distributed.destroy_global_process_group()


if __name__ == "__main__":
    run(sys.argv[1])
