"""verl's FSDP training engines, registered for device ``cpu``.

Upstream registers ``FSDPEngineWithLMHead`` / ``FSDPEngineWithValueHead`` for ``cuda`` and ``npu``
only; the classes themselves are device-agnostic once the platform answers ``cpu``/gloo.
"""

from __future__ import annotations

import warnings

from pixelis_verl.runtime.platform import CPU_PLATFORM
from pixelis_verl.runtime.upstream import registered_engines


def register_cpu_engines() -> None:
    with warnings.catch_warnings():
        # verl announces every optional engine (megatron, veomni, ...) it cannot import; none is used on CPU.
        warnings.filterwarnings("ignore", message=".*engine is not available.*")
        from verl.workers.engine.base import EngineRegistry
        from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead, FSDPEngineWithValueHead

    for model_type, engine_cls in (("language_model", FSDPEngineWithLMHead), ("value_model", FSDPEngineWithValueHead)):
        registered = registered_engines(model_type)
        for backend in ("fsdp", "fsdp2"):
            if CPU_PLATFORM not in registered.get(backend, {}):
                EngineRegistry.register(model_type=model_type, backend=backend, device=CPU_PLATFORM)(engine_cls)
