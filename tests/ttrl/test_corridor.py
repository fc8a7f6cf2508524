"""The KL-to-EMA corridor: with a step size far too large, it rolls updates back, shrinks the step and keeps
every accepted update's KL to the EMA reference inside the bound; without it the KL explodes."""

import copy

import pytest
import torch
from torch import nn

from pixelis_verl.ttrl.corridor import CorridorConfig, EMAReference, KLCorridor, token_kl

VOCAB, FEATURES, TOKENS = 32, 16, 64


def _setup():
    torch.manual_seed(0)
    policy = nn.Linear(FEATURES, VOCAB)
    contexts = torch.randn(TOKENS, FEATURES)
    labels = torch.randint(0, VOCAB, (TOKENS,))  # the pseudo-labels an update moves towards
    return policy, contexts, labels


def _logprobs(model: nn.Module, contexts, labels) -> torch.Tensor:
    return torch.log_softmax(model(contexts), dim=-1).gather(-1, labels[:, None])[:, 0]


def _run(corridor: KLCorridor | None, config: CorridorConfig, lr: float, updates: int = 20):
    policy, contexts, labels = _setup()
    reference, ema = copy.deepcopy(policy), EMAReference(policy, config.ema_decay)
    mask, kls, decisions = torch.ones(TOKENS), [], []
    for _ in range(updates):
        before = copy.deepcopy(policy.state_dict())
        scale = corridor.scale if corridor else 1.0
        loss = -_logprobs(policy, contexts, labels).mean()
        policy.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in policy.parameters():
                p -= lr * scale * p.grad
        ema.load_into(reference)
        with torch.no_grad():
            kl = token_kl(_logprobs(policy, contexts, labels), _logprobs(reference, contexts, labels), mask,
                          config.estimator)  # fmt: skip
        decision = corridor.decide(kl) if corridor else None
        if decision is not None and decision.action == "rollback":
            policy.load_state_dict(before)
        else:
            ema.update(policy)
            kls.append(kl)
        decisions.append(decision)
    return kls, decisions, corridor


def test_the_corridor_bounds_kl_under_a_huge_step_size():
    config = CorridorConfig(lower=0.002, upper=0.05)
    free, _, _ = _run(None, config, lr=50.0)
    assert max(free) > 10 * config.upper  # unchecked, one step leaves the reference far behind
    kls, decisions, corridor = _run(KLCorridor(config), config, lr=50.0)
    assert kls and max(kls) <= config.upper  # every accepted update stays inside
    assert corridor.counts["rollback"] >= 1 and corridor.scale < 1.0
    assert decisions[0].action == "rollback" and decisions[0].scale == pytest.approx(0.5)


def test_a_quiet_policy_lets_the_step_size_grow_back_to_its_cap():
    config = CorridorConfig(lower=0.5, upper=1.0)  # every KL here is "quiet"
    corridor = KLCorridor(config, scale=0.1)
    for _ in range(20):
        decision = corridor.decide(0.01)
    assert decision.action == "grow" and decision.scale == config.max_scale


def test_bad_bounds_fail_naming_the_key():
    with pytest.raises(ValueError, match="ttrl.corridor: need 0 <= lower < upper"):
        CorridorConfig(lower=0.1, upper=0.05)
