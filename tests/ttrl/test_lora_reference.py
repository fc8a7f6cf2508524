"""TTRL with LoRA adapters, on the tiny Qwen2.5-VL wrapped by peft as verl wraps the actor: a rolled-back update
restores the adapters bit for bit and copies nothing else, and the reference is the EMA of the adapters."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForImageTextToText

from pixelis_verl.tiny.build import tiny_model_path
from pixelis_verl.ttrl.lora_reference import AdapterReference
from pixelis_verl.ttrl.snapshot import Snapshot

IDS = torch.arange(3, 40).unsqueeze(0)


def _actor():
    torch.manual_seed(0)
    base = AutoModelForImageTextToText.from_pretrained(tiny_model_path("qwen2_5_vl"))
    config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", exclude_modules=".*visual.*")
    module = get_peft_model(base, config)  # conf/lora/adapters.yaml's settings, as verl's engine applies them
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return module, optimizer, scheduler


def _step(module, optimizer, scheduler):
    loss = module(input_ids=IDS, attention_mask=torch.ones_like(IDS), labels=IDS).loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()


def _logits(module):
    with torch.no_grad():
        return module(input_ids=IDS, attention_mask=torch.ones_like(IDS)).logits


def _named(module):
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def test_a_rolled_back_update_restores_the_adapters_bit_for_bit_and_copies_only_them():
    module, optimizer, scheduler = _actor()
    _step(module, optimizer, scheduler)  # Adam state exists, B is no longer zero
    before = _named(module)
    snapshot = Snapshot.take(module, optimizer, scheduler)
    adapters = [p for p in module.parameters() if p.requires_grad]
    assert len(snapshot.weights) == len(adapters) < len(before) // 2  # the adapters, not the 7B base
    _step(module, optimizer, scheduler)
    assert any(not torch.equal(p, before[n]) for n, p in module.named_parameters() if "lora_" in n)
    snapshot.restore(module, optimizer, scheduler)
    assert all(torch.equal(p, before[n]) for n, p in module.named_parameters())


def test_the_reference_starts_as_the_starting_policy_and_moves_by_the_adapters_ema():
    module, optimizer, scheduler = _actor()
    _step(module, optimizer, scheduler)
    start, start_logits = _named(module), _logits(module)
    reference = AdapterReference(module)
    _step(module, optimizer, scheduler)
    updated, updated_logits = _named(module), _logits(module)
    with reference.swapped_in(module):
        assert torch.equal(_logits(module), start_logits)  # the reference, before any EMA move
    assert all(torch.equal(p, updated[n]) for n, p in module.named_parameters())  # the actor's own again
    assert torch.equal(_logits(module), updated_logits)
    reference.update(module, decay=0.75)
    with reference.swapped_in(module):
        for name, param in module.named_parameters():
            expected = 0.75 * start[name] + 0.25 * updated[name] if param.requires_grad else start[name]
            assert torch.allclose(param, expected, atol=1e-7), name
    with pytest.raises(RuntimeError), reference.swapped_in(module):
        raise RuntimeError("a failed reference pass")
    assert all(torch.equal(p, updated[n]) for n, p in module.named_parameters())  # restored however it ends
