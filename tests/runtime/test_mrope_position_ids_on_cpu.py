"""The M-RoPE position-ids fix, through verl's own packing and indexing helpers (verl #7899)."""

import pickle

import pytest
import torch
import verl  # noqa: F401  (loads the plugin, which installs the fix)
from tensordict import TensorDict
from verl.utils import tensordict_utils as tu
from verl.workers.utils.padding import left_right_2_no_padding

from pixelis_verl.runtime.mrope_position_ids import maybe_fix_3d_position_ids


def _left_right_padded_batch(lengths: list[int], total: int) -> tuple[TensorDict, list[torch.Tensor]]:
    """Right-padded batch of (4, L) M-RoPE ids with distinct values, plus the dense ground truth."""
    batch = len(lengths)
    position_ids = torch.zeros(batch, 4, total, dtype=torch.long)
    attention_mask = torch.zeros(batch, total, dtype=torch.long)
    truth = []
    for i, length in enumerate(lengths):
        ids = torch.arange(4 * length).reshape(4, length) + 1000 * i
        position_ids[i, :, :length] = ids
        attention_mask[i, :length] = 1
        truth.append(ids)
    data = TensorDict(
        {
            "input_ids": torch.randint(0, 100, (batch, total)),
            "attention_mask": attention_mask,
            "response_mask": attention_mask[:, -2:].clone(),
            "position_ids": position_ids,
        },
        batch_size=[batch],
    )
    return data, truth


@pytest.mark.parametrize("lengths", [[5, 5, 5, 5], [7], [3, 6], [4], [2, 2]], ids=str)
def test_position_ids_survive_verl_packing_and_indexing(lengths):
    data, truth = _left_right_padded_batch(lengths, total=max(lengths) + 1)
    data = left_right_2_no_padding(data)
    tu.maybe_fix_3d_position_ids(data)  # verl's name now points at our fix
    pos = data["position_ids"]
    assert pos._ragged_idx == 2
    assert all(torch.equal(a, b) for a, b in zip(pos.unbind(), truth, strict=True))

    reversed_order = list(range(len(lengths)))[::-1]
    picked = tu.index_select_tensor_dict(data, reversed_order)
    assert all(torch.equal(a, truth[i]) for a, i in zip(picked["position_ids"].unbind(), reversed_order, strict=True))


def test_equal_length_batch_is_not_corrupted_after_pickle():
    data, truth = _left_right_padded_batch([6, 6], total=6)
    data = left_right_2_no_padding(data)
    restored = pickle.loads(pickle.dumps(data.consolidate()))
    maybe_fix_3d_position_ids(restored)
    assert all(torch.equal(a, b) for a, b in zip(restored["position_ids"].unbind(), truth, strict=True))


def test_verl_modules_use_the_fixed_helper():
    from verl.workers import engine_workers
    from verl.workers.engine import base

    assert engine_workers.maybe_fix_3d_position_ids is maybe_fix_3d_position_ids
    assert base.maybe_fix_3d_position_ids is maybe_fix_3d_position_ids
