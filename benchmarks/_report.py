"""The last lines every benchmark prints: its figures one per line, then all of them as one JSON object."""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any


def report(figures: dict[str, Any], command: str, digits: int = 4) -> None:
    """Round the floats, add machine, date and the command that reproduces the run, and print."""
    result = {k: round(v, digits) if isinstance(v, float) else v for k, v in figures.items()}
    result.update(
        machine=f"{platform.machine()} {os.cpu_count()} cpus", date=time.strftime("%Y-%m-%d"), command=command
    )
    width = max(len(key) for key in result)
    for key, value in result.items():
        print(f"{key:>{width}}: {value}")
    print(json.dumps(result))
