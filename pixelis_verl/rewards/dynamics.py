"""The curiosity component's forward-dynamics model, and the named Ray actor that shares it across a run.

`DynamicsModel` predicts the next observation feature (``pixelis_verl.trajectory.steps.observation_feature``)
from the current one and an encoding of the action. Its prediction error is the curiosity signal:
high where the policy's pixel operations still lead somewhere the model cannot anticipate, falling
as the same kind of operation on the same kind of image becomes predictable. It learns online: each
call scores a batch of transitions with the weights as they are, then takes a gradient step on them.

verl runs several reward workers (``reward.num_workers``), each scoring trajectories as they finish.
One model per worker would learn from a fraction of the data and disagree between workers, so the
model lives in one named Ray actor per run (`curiosity_actor`), created by whichever worker needs it
first; the others find it by name. It is small (a two-layer MLP on ~40 inputs), so serialising every
call through one actor costs well under a millisecond per trajectory. `CuriosityCheckpoint`
(``pixelis_verl.rewards.checkpoint``) saves it next to verl's checkpoints and it restores from the
latest one when the run resumes.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from pixelis_verl.trajectory.steps import OBSERVATION_DIM

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "pixelis_curiosity.pt"


class DynamicsModel:
    """A two-layer MLP trained online with Adam on the mean squared error of its predictions."""

    def __init__(self, input_dim: int, *, hidden: int = 64, lr: float = 1e-3, updates: int = 1, seed: int = 0):
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(input_dim, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, OBSERVATION_DIM)
        )
        torch.random.set_rng_state(generator_state)  # do not disturb the caller's random stream
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.updates = updates
        self.input_dim = input_dim
        self.transitions_seen = 0

    def score_and_learn(self, inputs: np.ndarray, targets: np.ndarray) -> list[float]:
        """Per-transition prediction errors (MSE over the feature) before learning from these transitions."""
        x = torch.as_tensor(np.asarray(inputs, dtype=np.float32)).reshape(-1, self.input_dim)
        y = torch.as_tensor(np.asarray(targets, dtype=np.float32)).reshape(-1, OBSERVATION_DIM)
        with torch.no_grad():
            errors = ((self.net(x) - y) ** 2).mean(dim=1)
        for _ in range(self.updates):
            loss = ((self.net(x) - y) ** 2).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self.transitions_seen += len(x)
        return errors.tolist()

    def state(self) -> dict[str, Any]:
        return {
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "transitions_seen": self.transitions_seen,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.transitions_seen = int(state["transitions_seen"])

    def save(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.state(), path)

    def load(self, path: str) -> None:
        self.load_state(torch.load(path, weights_only=True))


class _ActorModel(DynamicsModel):
    """The actor's copy: one thread (it shares the machine with the trainer), restored on start when resuming."""

    def __init__(self, input_dim: int, *, restore_from: str | None = None, **kwargs: Any):
        torch.set_num_threads(1)
        super().__init__(input_dim, **kwargs)
        if restore_from:
            self.load(restore_from)
            logger.warning("curiosity model restored from %s", restore_from)


def actor_name(config: DictConfig) -> str:
    """One name per run: the actor is found by name from every reward worker and from the checkpoint hook."""
    run = str(OmegaConf.select(config, "pixelis.run_dir", default=None) or config.trainer.experiment_name)
    return "pixelis_curiosity_" + hashlib.sha1(run.encode()).hexdigest()[:12]


def latest_checkpoint(config: DictConfig) -> str | None:
    """The curiosity state saved with the checkpoint verl resumes from, if the run resumes and one exists."""
    if OmegaConf.select(config, "trainer.resume_mode", default="auto") == "disable":
        return None
    root = OmegaConf.select(config, "trainer.default_local_dir", default=None)
    tracker = Path(str(root)) / "latest_checkpointed_iteration.txt" if root else None
    if tracker is None or not tracker.exists():
        return None
    path = tracker.parent / f"global_step_{tracker.read_text().strip()}" / CHECKPOINT_FILE
    return str(path) if path.exists() else None


def curiosity_actor(config: DictConfig, input_dim: int, **model_kwargs: Any) -> Any:
    """The run's dynamics-model actor, created on first use (``num_cpus=0``: it is tiny and mostly idle).

    Not detached: it lives while the reward workers holding its handle do, and ends with the run.
    """
    import ray

    remote = ray.remote(num_cpus=0)(_ActorModel)
    return remote.options(name=actor_name(config), get_if_exists=True).remote(
        input_dim, restore_from=latest_checkpoint(config), **model_kwargs
    )


_LOCAL_MODELS: dict[str, DynamicsModel] = {}


def local_model(key: str, input_dim: int, **model_kwargs: Any) -> DynamicsModel:
    """A per-process model (no Ray): for unit tests, benchmarks and single-process scoring."""
    if key not in _LOCAL_MODELS:
        _LOCAL_MODELS[key] = DynamicsModel(input_dim, **model_kwargs)
    return _LOCAL_MODELS[key]
