"""The ``cpu`` platform and the plugin that installs it into every verl process."""

import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
from verl.plugin.platform import get_platform
from verl.utils import device

# Every device-module call verl 0.9.1 makes (grep of get_torch_device() in verl's sources).
VERL_DEVICE_CALLS = {
    "empty_cache": (),
    "synchronize": (),
    "is_available": (),
    "current_stream": (),
    "set_device": (0,),
    "mem_get_info": (),
    "set_per_process_memory_fraction": (0.5,),
    "ipc_collect": (),
    "get_rng_state": (),
    "device_count": (),
    "memory_reserved": (),
    "memory_allocated": (),
    "max_memory_reserved": (),
    "max_memory_allocated": (),
    "get_device_name": (),
}


def test_cpu_platform_is_chosen_without_an_accelerator():
    assert not torch.cuda.is_available()
    assert device.get_device_name() == "cpu"
    assert device.get_nccl_backend() == "gloo"
    assert device.get_resource_name() == "GPU"  # a logical training slot, what verl's resource check counts
    assert torch.device(device.get_device_id()).type == "cpu"


@pytest.mark.parametrize("name", sorted(VERL_DEVICE_CALLS))
def test_device_module_calls_verl_makes_are_safe(name):
    getattr(device.get_torch_device(), name)(*VERL_DEVICE_CALLS[name])


def test_rng_state_round_trips_through_the_device_module():
    module = device.get_torch_device()
    state = module.get_rng_state()
    first = torch.rand(3)
    module.set_rng_state(state)
    assert torch.equal(first, torch.rand(3))


def test_streams_and_events_are_no_ops():
    module = device.get_torch_device()
    with module.stream(module.Stream()):
        event = module.Event()
        event.record()
        assert event.query()
    module.current_stream().synchronize()


def test_fsdp_engines_are_registered_for_cpu():
    from verl.workers.engine.base import EngineRegistry
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead, FSDPEngineWithValueHead

    assert EngineRegistry.get_engine_cls("language_model", "fsdp2") is FSDPEngineWithLMHead
    assert EngineRegistry.get_engine_cls("value_model", "fsdp") is FSDPEngineWithValueHead


def test_reference_engine_offload_policy_does_not_pin_memory():
    from verl.utils.fsdp_utils import CPUOffloadPolicy

    assert CPUOffloadPolicy(pin_memory=True).pin_memory is False


def test_verl_process_group_initialises_over_gloo(monkeypatch):
    from verl.utils.distributed import initialize_global_process_group_ray

    for key, value in {"RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29533"}.items():
        monkeypatch.setenv(key, value)
    initialize_global_process_group_ray(timeout_second=60)
    try:
        tensor = torch.ones(2)
        dist.all_reduce(tensor)
        assert dist.get_backend() == "cpu:gloo" and tensor.tolist() == [1.0, 1.0]
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(
    "first_import",
    ["verl", "pixelis_verl.runtime.hf_rollout", "pixelis_verl.runtime.platform", "pixelis_verl.tools.zoom"],
)
def test_plugin_loads_whichever_module_a_process_imports_first(first_import):
    """Ray actors import our modules first (unpickling a class); the plugin must still load fully."""
    probe = (
        f"import {first_import}\n"
        "from verl.workers.rollout.base import _ROLLOUT_REGISTRY\n"
        "from verl.utils.device import get_device_name\n"
        "import verl.utils.fsdp_utils as f\n"
        "assert ('hf', 'async') in _ROLLOUT_REGISTRY and get_device_name() == 'cpu'\n"
        "assert f.CPUOffloadPolicy.__name__ == 'UnpinnedCPUOffloadPolicy'\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "plugin failed" not in proc.stderr


def test_platform_is_the_registered_cpu_class():
    assert type(get_platform()).__name__ == "CPUPlatform"
