"""Writing trace sets as verl parquet: SFT rows for `pixelis_verl.sft`, RL rows for `pixelis_verl.train`."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from pixelis_verl.data.cota import Trace
from pixelis_verl.data.render import rl_row_of, sft_row


def write_sft_parquet(items: Iterable[tuple[Trace, Path]], schemas: dict[str, dict[str, Any]], path: Path) -> int:
    """SFT rows of (trace, its set's root) pairs to `path`; returns the row count."""
    rows = [sft_row(trace, root, schemas) for trace, root in items]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path, index=False)
    return len(rows)


def write_rl_parquet(items: Iterable[tuple[Trace, Path]], path: Path, split: str) -> int:
    """RL rows to `path`; videos are copied under `<path's folder>/videos/`, the tools' data root is that folder."""
    data_root = path.parent.resolve()
    rows = []
    for index, (trace, root) in enumerate(items):
        if trace.video is not None:
            target = data_root / "videos" / f"{trace.id}{Path(trace.video.path).suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / trace.video.path, target)
            trace = replace(trace, video=replace(trace.video, path=str(target)))  # absolute: root / it == it
        rows.append(rl_row_of(trace, root, index, split, data_root))
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path, index=False)
    return len(rows)
