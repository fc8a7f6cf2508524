"""A ``cpu`` platform for verl 0.9.1, registered through ``verl.plugin.platform.PlatformRegistry``.

verl knows nvidia, huawei and amd only; on a machine without an accelerator it falls back to
"nvidia" and asks for ``cuda``/``nccl``. This platform lets verl's own trainer, FSDP engines and
agent loop run on CPU processes talking over gloo, so the whole pipeline is testable on a laptop
or a CI box.

Ray accounting: verl's resource-pool check counts only ``GPU``/``NPU`` resources, so on this
platform a Ray "GPU" is a *logical training slot* (one FSDP rank), declared with
``ray_kwargs.ray_init.num_gpus`` (see ``conf/cluster/cpu_local.yaml``). Ray is told not to touch
``CUDA_VISIBLE_DEVICES`` for those slots.
"""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry

CPU_PLATFORM = "cpu"


def _noop(*_args: Any, **_kwargs: Any) -> None:
    return None


def _zero(*_args: Any, **_kwargs: Any) -> int:
    return 0


def _mem_get_info(*_args: Any, **_kwargs: Any) -> tuple[int, int]:
    """(free, total) bytes of host memory: verl logs these and sizes buffers from them."""
    import psutil

    vm = psutil.virtual_memory()
    return int(vm.available), int(vm.total)


class _NullStream:
    """Stands in for a device stream: CPU work is synchronous, so waiting is a no-op."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def wait_stream(self, _other: Any) -> None:
        pass

    def __enter__(self) -> _NullStream:
        return self

    def __exit__(self, *_exc: Any) -> None:
        return None


class _NullEvent(_NullStream):
    def record(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def query(self) -> bool:
        return True


@contextmanager
def _stream_ctx(_stream: Any = None):
    yield


def _cpu_device_module() -> SimpleNamespace:
    """``torch.cpu`` lacks most of the ``torch.cuda`` calls verl makes (cache, memory, rng, streams).

    Each call here is the honest CPU meaning of the CUDA one: there is no cache to empty, host RNG
    is torch's default generator, and memory figures come from the host.
    """
    return SimpleNamespace(
        is_available=lambda: True,
        device_count=lambda: 1,
        current_device=lambda: CPU_PLATFORM,
        set_device=_noop,
        synchronize=_noop,
        empty_cache=_noop,
        ipc_collect=_noop,
        reset_peak_memory_stats=_noop,
        set_per_process_memory_fraction=_noop,
        memory_allocated=_zero,
        memory_reserved=_zero,
        max_memory_allocated=_zero,
        max_memory_reserved=_zero,
        mem_get_info=_mem_get_info,
        get_rng_state=lambda *a, **k: torch.get_rng_state(),
        set_rng_state=lambda state, *a, **k: torch.set_rng_state(state),
        manual_seed=torch.manual_seed,
        manual_seed_all=torch.manual_seed,
        get_device_name=lambda *a, **k: "cpu",
        current_stream=lambda *a, **k: _NullStream(),
        Stream=_NullStream,
        Event=_NullEvent,
        stream=_stream_ctx,
    )


@PlatformRegistry.register(platform=CPU_PLATFORM)
class CPUPlatform(PlatformBase):
    """verl platform for processes with no accelerator: device ``cpu``, collectives over gloo."""

    _device_module = _cpu_device_module()

    @property
    def device_name(self) -> str:
        return CPU_PLATFORM

    @property
    def vendor_name(self) -> str:
        return CPU_PLATFORM

    @property
    def device_module(self) -> SimpleNamespace:
        return self._device_module

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Auto-detection probes the registered platforms in order and takes the first available one;
        # ours registers last, so it is only chosen when no GPU/NPU platform claimed the machine.
        return not torch.cuda.is_available() and not hasattr(torch, "npu")

    def current_device(self) -> str:  # type: ignore[override]
        # A string, not an index: torch.device(0) raises on CPU-only builds, and verl only passes
        # this to .to(...) / torch.device(...).
        return CPU_PLATFORM

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        pass

    def synchronize(self, device_index: int | None = None) -> None:
        pass

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        pass

    def empty_cache(self) -> None:
        pass

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        pass

    def profiler_stop(self) -> None:
        pass

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> None:
        return None


def is_cpu_platform() -> bool:
    """True when verl resolved (or will resolve) this process's platform to ``cpu``."""
    from verl.plugin.platform import get_platform

    return get_platform().device_name == CPU_PLATFORM
