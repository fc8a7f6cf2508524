"""What the plugin installs into verl in every process."""

from __future__ import annotations

ROLLOUT_NAME = "hf"


def _hf_replica() -> type:
    from pixelis_verl.runtime.hf_rollout import HFReplica

    return HFReplica


def register_hf_rollout() -> None:
    """Register ``hf`` with verl's replica registry and its rollout-class table, without importing it."""
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    from pixelis_verl.runtime.upstream import register_rollout_class

    RolloutReplicaRegistry.register(ROLLOUT_NAME, _hf_replica)
    # verl exposes no register() for this table; adding a key is the smallest extension (see upstream.py).
    register_rollout_class(ROLLOUT_NAME, "async", "pixelis_verl.runtime.hf_rollout.HFServerAdapter")


def install() -> None:
    """Register the ``cpu`` platform, the ``hf`` rollout and the ``pixelis`` reward manager; CPU patches on CPU."""
    import pixelis_verl.rewards.manager  # noqa: F401  (registers the reward manager "pixelis")
    from pixelis_verl.runtime import patches
    from pixelis_verl.runtime.platform import is_cpu_platform  # importing registers the platform

    patches.apply_all_platforms()
    register_hf_rollout()
    if is_cpu_platform():
        from pixelis_verl.runtime.engines import register_cpu_engines

        patches.apply_cpu()
        register_cpu_engines()
