"""Benchmark adapters: importing this package registers every one (``pixelis_verl.eval.items.BENCHMARKS``), and
`build_adapter` builds one by name (so whoever builds one has them all registered)."""

from typing import Any

from pixelis_verl.eval.benchmarks import (  # noqa: F401
    hrbench,
    infovqa,
    jsonl,
    mme_realworld,
    mvbench,
    tallyqa,
    visualprobe,
    vsibench,
    vstar,
)
from pixelis_verl.eval.items import BENCHMARKS, BenchmarkAdapter
from pixelis_verl.typed_config import from_dict


def build_adapter(adapter: str, params: dict[str, Any], where: str) -> BenchmarkAdapter:
    """The adapter `adapter` with its checked params; unknown names and keys raise naming `where`."""
    if adapter not in BENCHMARKS:
        raise ValueError(f"{where}.adapter: no benchmark adapter {adapter!r}; registered: {sorted(BENCHMARKS)}")
    cls = BENCHMARKS[adapter]
    return cls(from_dict(cls.Params, dict(params or {}), f"{where}.params"))
