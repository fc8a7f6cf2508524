"""The weighted imitation loss is verl's SFT loss when every weight is 1, and weights each token's term otherwise."""

import torch
from tensordict import TensorDict
from verl.utils import tensordict_utils as tu
from verl.workers.utils.losses import sft_loss

from pixelis_verl.sft.loss import weighted_sft_loss


def _nested(rows: list[list[float]], dtype=torch.float32) -> torch.Tensor:
    return torch.nested.as_nested_tensor([torch.tensor(r, dtype=dtype) for r in rows], layout=torch.jagged)


def _batch(weights: list[list[float]]):
    torch.manual_seed(0)
    mask = [[0, 0, 1, 1, 1], [0, 1, 1, 0]]  # loss on the tokens predicted at these positions
    log_probs = _nested([torch.rand(5).log().tolist(), torch.rand(4).log().tolist()])
    data = TensorDict({"loss_mask": _nested(mask, torch.int64), "loss_weights": _nested(weights)}, batch_size=[2])
    tokens = sum(sum(row) for row in mask)
    tu.assign_non_tensor(data, dp_size=1, batch_num_tokens=tokens)
    return {"log_probs": log_probs}, data, log_probs, mask


def test_unit_weights_give_verls_sft_loss():
    output, data, _, _ = _batch([[1.0] * 5, [1.0] * 4])
    ours, _ = weighted_sft_loss(None, output, data)
    theirs, _ = sft_loss(None, output, data)
    torch.testing.assert_close(ours, theirs)


def test_each_tokens_term_is_scaled_by_its_weight():
    weights = [[1.0, 1.0, 1.0, 3.0, 1.0], [1.0, 2.0, 1.0, 1.0]]
    output, data, log_probs, mask = _batch(weights)
    loss, _ = weighted_sft_loss(None, output, data)
    expected, tokens = 0.0, 0
    for lp, m, w in zip(log_probs.unbind(), mask, weights, strict=True):
        for t in range(len(m) - 1):  # the log-prob at t is of token t + 1
            if m[t + 1]:
                expected -= w[t + 1] * float(lp[t])
                tokens += 1
    torch.testing.assert_close(loss, torch.tensor(expected / tokens))
