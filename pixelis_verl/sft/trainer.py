"""verl's SFT trainer with the masked, token-weighted imitation loss; one process per rank under torchrun.

verl 0.9.1's `SFTTrainer` hard-codes its loss (`sft_loss`) in `_build_engine` and has no option for
another, so the smallest extension is a subclass that installs `weighted_sft_loss` on the same training
worker after verl built it. Everything else (FSDP engine, data loading, checkpoints, tracking) is verl's.

    torchrun --nproc_per_node=8 -m pixelis_verl.sft.trainer <run_dir>/config.yaml

`python -m pixelis_verl.sft` writes that resolved config and starts torchrun for you.
"""

from __future__ import annotations

import sys
from functools import partial

from omegaconf import OmegaConf
from verl.trainer.sft_trainer import SFTTrainer

from pixelis_verl.sft.loss import weighted_sft_loss


class WeightedSFTTrainer(SFTTrainer):
    def _build_engine(self) -> None:
        super()._build_engine()
        self.loss_fn = partial(weighted_sft_loss, config=None)
        self.training_client.set_loss_fn(loss_fn=self.loss_fn)


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
