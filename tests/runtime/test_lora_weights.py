"""The hf rollout's LoRA merge: verl's base and adapter syncs become the weights peft's own merge gives."""

import pytest
import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
from transformers import AutoModelForImageTextToText

from pixelis_verl.config import _tiny_model
from pixelis_verl.runtime.lora_weights import LoraWeights, plain_name


@pytest.fixture(scope="module")
def tiny_path():
    return _tiny_model("qwen2_5_vl")


def _peft(path, **config):
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForImageTextToText.from_pretrained(path), LoraConfig(**config))
    for name, param in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero (no change); give the update something to merge
            torch.nn.init.normal_(param, std=0.02)
    return model


@pytest.mark.parametrize("rslora", [False, True])
def test_base_then_adapter_syncs_give_peft_merged_weights(tiny_path, rslora):
    lora = _peft(tiny_path, r=4, lora_alpha=8, target_modules="all-linear", exclude_modules=".*visual.*",
                 use_rslora=rslora)  # fmt: skip
    base_sync = {n: p.detach() for n, p in lora.named_parameters() if "lora_" not in n}  # as verl's first sync
    adapters = get_peft_model_state_dict(lora)
    config = lora.peft_config["default"].to_dict()
    rollout = AutoModelForImageTextToText.from_pretrained(tiny_path)
    state = rollout.state_dict()
    merger = LoraWeights()
    plain = merger.base(base_sync)
    assert set(plain) <= set(state)  # every name maps onto the plain model
    merged = merger.merged(adapters, config, state)
    expected = lora.merge_and_unload().state_dict()
    assert merged and all(torch.allclose(merged[n], expected[n], atol=1e-6) for n in merged)
    assert not any("visual" in n for n in merged)  # the vision tower was excluded
    second = merger.merged(adapters, config, state)  # a second update merges into W0 again, not into W0 + delta
    assert all(torch.equal(second[n], merged[n]) for n in merged)


def test_names_and_bad_updates():
    assert plain_name("base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight") == (
        "model.layers.0.self_attn.q_proj.weight"
    )
    merger = LoraWeights()
    with pytest.raises(KeyError, match="lacks lora_B"):
        merger.merged({"base_model.model.x.lora_A.weight": torch.zeros(2, 3)}, {"r": 2}, {"x.weight": torch.zeros(3)})
    with pytest.raises(ValueError, match="use_dora"):
        merger.merged({}, {"r": 2, "use_dora": True}, {})
