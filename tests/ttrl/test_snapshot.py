"""The TTRL snapshot: host-memory copies of weights and optimizer state, restored in place bit for bit."""

import torch

from pixelis_verl.ttrl.snapshot import Snapshot


def _actor(seed=0):
    torch.manual_seed(seed)
    module = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    return module, optimizer, scheduler


def _step(module, optimizer, scheduler, seed):
    torch.manual_seed(seed)
    loss = module(torch.randn(4, 6)).pow(2).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()


def _state(module, optimizer, scheduler):
    weights = [p.detach().clone() for p in module.parameters()]
    moments = [{k: v.clone() if torch.is_tensor(v) else v for k, v in optimizer.state[p].items()}
               for p in module.parameters()]  # fmt: skip
    return weights, moments, [g["lr"] for g in optimizer.param_groups], scheduler.state_dict()["last_epoch"]


def _equal(a, b):
    (wa, ma, la, ea), (wb, mb, lb, eb) = a, b
    same_weights = all(torch.equal(x, y) for x, y in zip(wa, wb, strict=True))
    same_moments = all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) if torch.is_tensor(x[k]) else x[k] == y[k] for k in x)
        for x, y in zip(ma, mb, strict=True)
    )
    return same_weights and same_moments and la == lb and ea == eb


def test_a_rejected_update_is_undone_bit_for_bit_and_twice():
    actor = _actor()
    _step(*actor, seed=1)
    before = _state(*actor)
    snapshot = Snapshot.take(*actor)
    assert all(t.device.type == "cpu" for state in snapshot.states for t in state.values() if torch.is_tensor(t))
    _step(*actor, seed=2)
    _step(*actor, seed=3)
    assert not _equal(_state(*actor), before)
    snapshot.restore(*actor)
    assert _equal(_state(*actor), before)
    _step(*actor, seed=4)  # the restored optimizer steps on, and the snapshot is still the same point
    snapshot.restore(*actor)
    assert _equal(_state(*actor), before)


def test_the_restored_actor_then_steps_exactly_as_the_original_would():
    original, restored = _actor(), _actor()
    _step(*original, seed=1)
    _step(*restored, seed=1)
    snapshot = Snapshot.take(*restored)
    _step(*restored, seed=9)  # a rejected update
    snapshot.restore(*restored)
    _step(*original, seed=2)
    _step(*restored, seed=2)
    assert _equal(_state(*original), _state(*restored))


def test_a_snapshot_before_the_first_step_restores_an_empty_optimizer_state():
    actor = _actor()
    snapshot = Snapshot.take(*actor)
    _step(*actor, seed=1)
    snapshot.restore(*actor)
    module, optimizer, _ = actor
    assert all(not optimizer.state.get(p) for p in module.parameters())
    fresh = _actor()
    _step(*actor, seed=2)
    _step(*fresh, seed=2)
    assert _equal(_state(*actor), _state(*fresh))


def test_with_frozen_weights_only_the_trained_ones_are_copied():
    module, optimizer, scheduler = _actor()
    module[0].weight.requires_grad_(False)  # a frozen base, as under LoRA
    module[0].bias.requires_grad_(False)
    snapshot = Snapshot.take(module, optimizer, scheduler)
    assert [w.shape for w in snapshot.weights] == [p.shape for p in module[2].parameters()]
    before = _state(module, optimizer, scheduler)
    _step(module, optimizer, scheduler, seed=5)
    snapshot.restore(module, optimizer, scheduler)
    assert _equal(_state(module, optimizer, scheduler), before)
