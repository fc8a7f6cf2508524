"""Save the curiosity model with every verl checkpoint (``trainer.checkpoint_callback_class``).

verl 0.9.1's v1 trainer calls the callback on the driver after each save with the step's directory;
the dynamics model is written there as ``pixelis_curiosity.pt`` and, on resume, the actor loads it
from the checkpoint verl resumes from (``pixelis_verl.rewards.dynamics.latest_checkpoint``), so the
curiosity signal carries on where it stopped instead of restarting from a blank model.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from verl.trainer.ppo.checkpoint_callback import CheckpointCallback

from pixelis_verl.rewards.dynamics import CHECKPOINT_FILE, actor_name

logger = logging.getLogger(__name__)


class CuriosityCheckpoint(CheckpointCallback):
    def on_save(self, trainer: Any, global_step: int, checkpoint_dir: str, async_save: bool = False, **kwargs) -> None:
        import ray

        try:
            actor = ray.get_actor(actor_name(self.config))
        except ValueError:  # no trajectory with a pixel operation has been scored yet: nothing learnt to save
            logger.warning("step %s: no curiosity model to save yet", global_step)
            return
        ray.get(actor.save.remote(os.path.join(checkpoint_dir, CHECKPOINT_FILE)))
