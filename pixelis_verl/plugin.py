"""The single ``verl.plugins`` entry point of pixelis_verl.

``import verl`` imports this module in every process of a run (driver, TaskRunner, trainer workers,
agent-loop and reward workers, rollout servers), so everything pixelis_verl registers with verl is
registered here. verl swallows exceptions from plugins at debug level; we log them loudly first,
because a half-loaded plugin otherwise surfaces much later as an unrelated-looking error.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("pixelis_verl")
logger.setLevel(os.environ.get("PIXELIS_LOGGING_LEVEL", "WARNING").upper())


try:
    from pixelis_verl.runtime.install import install

    install()
except Exception:
    logger.exception("pixelis_verl plugin failed to load; verl will run without it")
    raise
