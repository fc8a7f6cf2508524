"""Every monkeypatch pixelis_verl applies to verl 0.9.1 and its dependencies, in one place.

Each patch is needed because verl has no extension point for it; each names what it touches and
why. ``third_party/verl/README.md`` lists the same patches with their upstream issues. Drop a patch
when the pin moves past its fix.

- ``patch_mrope_position_ids`` (all platforms): ``verl.utils.tensordict_utils.maybe_fix_3d_position_ids``
  and its by-name imports. It forces ``_ragged_idx=2`` on equal-length batches, crashing or silently
  corrupting M-RoPE position ids (verl #7899, fix PR #7901).
- ``patch_gloo_process_group`` (cpu): ``verl.utils.distributed.initialize_global_process_group_ray`` (Ray
  workers) and ``initialize_global_process_group`` (torchrun: the SFT trainer), with their by-name imports.
  Both build ``"cpu:gloo,cpu:gloo"``, which torch rejects as a duplicate device type.
- ``patch_unpinned_cpu_offload`` (cpu): ``verl.utils.fsdp_utils.CPUOffloadPolicy``. Forward-only (ref)
  engines hard-code ``pin_memory=True``; pinning needs an accelerator.
- ``patch_qwen_vl_utils_without_torchvision`` (cpu, no torchvision): ``sys.modules["torchvision"]`` for
  one import. ``qwen_vl_utils`` imports torchvision at module top though its image path uses only PIL.
- ``patch_image_only_qwen_vl_processors`` (cpu, no torchvision): the Qwen-VL processor names in
  ``transformers.models.qwen*_vl`` and ``PROCESSOR_MAPPING``. Without torchvision the upstream processors
  cannot be built and verl's ``hf_processor`` silently returns None (see ``processor.py``).

The patches of names imported with ``from x import y`` must run before the importer does: the
plugin is loaded at the end of ``verl/__init__``, before any worker module, so patching the
source module is enough; already-imported consumers are rebound as well for safety.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import os
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

logger = logging.getLogger(__name__)

_APPLIED: set[str] = set()


def _rebind(source_module: str, name: str, new: Any, importers: Iterable[str]) -> None:
    """Replace ``source_module.name`` and every already-imported ``from source_module import name``."""
    setattr(importlib.import_module(source_module), name, new)
    for module_name in importers:
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, name):
            setattr(module, name, new)


def _once(func: Callable[[], None]) -> Callable[[], None]:
    @functools.wraps(func)
    def wrapper() -> None:
        if func.__name__ in _APPLIED:
            return
        func()
        _APPLIED.add(func.__name__)
        logger.debug("pixelis_verl patch applied: %s", func.__name__)

    return wrapper


@_once
def patch_mrope_position_ids() -> None:
    from pixelis_verl.runtime.mrope_position_ids import maybe_fix_3d_position_ids

    _rebind(
        "verl.utils.tensordict_utils",
        "maybe_fix_3d_position_ids",
        maybe_fix_3d_position_ids,
        ["verl.workers.engine_workers", "verl.workers.engine.base", "verl.workers.engine_workers_tinker"],
    )


@_once
def patch_gloo_process_group() -> None:
    from verl.utils import distributed

    original = distributed.initialize_global_process_group_ray

    @functools.wraps(original)
    def initialize_global_process_group_ray(timeout_second: Any = None, backend: str | None = None) -> Any:
        return original(timeout_second=timeout_second, backend=backend or "cpu:gloo")

    def initialize_global_process_group(timeout_second: int = 36000) -> tuple[int, int, int]:
        """verl's torchrun entry (SFT) with the one backend a CPU has; no device to select."""
        import torch.distributed

        torch.distributed.init_process_group(
            backend="cpu:gloo",
            timeout=timedelta(seconds=timeout_second),
            init_method=os.environ.get("DIST_INIT_METHOD"),
        )
        return int(os.environ["LOCAL_RANK"]), int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])

    _rebind(
        "verl.utils.distributed",
        "initialize_global_process_group_ray",
        initialize_global_process_group_ray,
        ["verl.workers.engine_workers"],
    )
    _rebind("verl.utils.distributed", "initialize_global_process_group", initialize_global_process_group, [])


@_once
def patch_unpinned_cpu_offload() -> None:
    from verl.utils import fsdp_utils

    base = fsdp_utils.CPUOffloadPolicy

    @dataclass
    class UnpinnedCPUOffloadPolicy(base):  # type: ignore[valid-type, misc]
        """``CPUOffloadPolicy`` that never pins: there is no device to pin host memory for."""

        def __post_init__(self) -> None:
            self.pin_memory = False

    _rebind(
        "verl.utils.fsdp_utils",
        "CPUOffloadPolicy",
        UnpinnedCPUOffloadPolicy,
        ["verl.workers.engine.fsdp.transformer_impl"],
    )


def _torchvision_stub() -> dict[str, types.ModuleType]:
    root = types.ModuleType("torchvision")
    root.__version__ = "0.0.0+pixelis-stub"  # type: ignore[attr-defined]
    io = types.ModuleType("torchvision.io")
    transforms = types.ModuleType("torchvision.transforms")
    transforms.InterpolationMode = types.SimpleNamespace(BICUBIC="bicubic", BILINEAR="bilinear")  # type: ignore[attr-defined]
    transforms.functional = types.ModuleType("torchvision.transforms.functional")  # type: ignore[attr-defined]
    root.io, root.transforms = io, transforms  # type: ignore[attr-defined]
    return {"torchvision": root, "torchvision.io": io, "torchvision.transforms": transforms}


@_once
def patch_qwen_vl_utils_without_torchvision() -> None:
    """Import ``qwen_vl_utils`` against a throwaway torchvision stub, then remove the stub.

    Removing it keeps ``transformers`` seeing torchvision as absent (so it never takes a torchvision
    code path). Video input is rejected by our processors before qwen_vl_utils could reach the stub.
    """
    if "qwen_vl_utils" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        return
    stubs = _torchvision_stub()
    sys.modules.update(stubs)
    try:
        importlib.import_module("qwen_vl_utils")
    finally:
        for name in stubs:
            sys.modules.pop(name, None)


@_once
def patch_image_only_qwen_vl_processors() -> None:
    from pixelis_verl.runtime.processor import install_cpu_processors

    install_cpu_processors()


def apply_all_platforms() -> None:
    """Patches every pixelis_verl process needs, GPU clusters included."""
    patch_mrope_position_ids()


def apply_cpu() -> None:
    """Patches the CPU runtime needs on top of :func:`apply_all_platforms`."""
    patch_gloo_process_group()
    patch_unpinned_cpu_offload()
    patch_qwen_vl_utils_without_torchvision()
    patch_image_only_qwen_vl_processors()
