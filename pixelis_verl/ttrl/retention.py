"""Retention of TTRL checkpoints: the newest `keep` folders stay, whole; older ones go, whole.

A TTRL checkpoint is one folder, `global_step_<n>/`, holding the actor (verl's checkpoint), the EMA reference's
shards and the loop state; each is tens of GB at 7B. verl prunes only the actor sub-folders it saved in the
running process, so after a restart nothing older is ever removed, and the EMA shards and state it does not
know about stay forever: a long-lived service fills its disk. Here the folders are pruned together, by step
number read from the disk (so restarts change nothing), only after the `latest` marker names the newest, and
never the folder the marker names: a crash mid-prune leaves a loadable checkpoint and some extra folders, which
the next prune removes.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from pixelis_verl.ttrl.durable import fsync_dir

logger = logging.getLogger(__name__)

STEP_FOLDER = re.compile(r"global_step_(\d+)")


def checkpoint_steps(root: Path) -> list[int]:
    """Step numbers of the `global_step_<n>` folders under `root`, ascending."""
    if not root.is_dir():
        return []
    found = (STEP_FOLDER.fullmatch(p.name) for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    return sorted(int(m.group(1)) for m in found if m)


def prune_checkpoints(root: Path, keep: int | None, latest: int) -> list[int]:
    """Remove all but the newest `keep` checkpoint folders (None: keep all), never `latest`; returns the removed steps.

    Folders newer than `latest` (a save that crashed before its marker) count as newest and are kept: the next
    save of that step replaces them.
    """
    if keep is None:
        return []
    if keep < 1:
        raise ValueError(f"trainer.max_actor_ckpt_to_keep must be null or >= 1; got {keep}")
    steps = checkpoint_steps(root)
    removed = [step for step in steps[:-keep] if step != latest]
    for step in removed:
        shutil.rmtree(root / f"global_step_{step}")
        logger.info("ttrl: removed checkpoint global_step_%d (keeping the newest %d)", step, keep)
    if removed:
        fsync_dir(root)
    return removed
