"""A correct ``maybe_fix_3d_position_ids`` for Qwen-VL M-RoPE position ids in verl's TensorDicts.

Each sample's M-RoPE position ids are ``(4, L)`` (one text row, three vision rows). verl packs a
batch of them with ``torch.nested.as_nested_tensor(..., layout=torch.jagged)``, and torch makes the
*first dimension that differs* ragged. When every ``L`` in a batch is equal (common in GRPO: a group
shares its prompt and responses often hit the length cap) or the batch has one sample, the size-4
axis becomes the ragged one instead. verl 0.9.1's helper then forces ``_ragged_idx = 2`` without
checking, which crashes ``update_actor`` and, worse, silently corrupts old/ref log-probs when the
error is swallowed by ``chunk_tensordict``. Upstream: verl issue #7899, fix PR #7901 (unreleased).

The three layouts that reach the helper, as ``(_ragged_idx, values.shape, offsets)``:
- correct:                  ``(2, (4, sum L), [0, L0, L0+L1, ...])``
- equal lengths (or B=1):   ``(1, (4B, L),    [0, 4, 8, ...])``
- after consolidate+pickle: ``(1, (4, sum L), [0, L0, L0+L1, ...])`` — right data, reset index.
Where the last two coincide (``B=1``, ``L`` equal to the row count) both readings give the same tensor.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict

_ROPE_ROWS_KEY = "position_ids"
# M-RoPE uses 3 vision rows plus verl's text row; never more. This is what tells the two
# ragged_idx=1 layouts apart: only the pickled one can have so few rows of values.
_MAX_ROPE_ROWS = 4


def normalize_3d_position_ids(pos: torch.Tensor) -> torch.Tensor:
    """Return ``pos`` as a jagged ``(B, rows, j)`` nested tensor with the sequence axis ragged."""
    if pos._ragged_idx == 2:
        return pos
    values, offsets = pos._values, pos._offsets
    batch = offsets.numel() - 1
    pickled = values.shape[0] <= _MAX_ROPE_ROWS and int(offsets[-1]) == values.shape[1]
    if pickled:  # consolidate+pickle reset the index; the values are already laid out per sequence
        samples = list(values.split(offsets.diff().tolist(), dim=1))
    else:  # equal lengths: the rows axis was made ragged, each sample is a (rows, L) block of values
        rows = values.shape[0] // batch
        samples = [values[i * rows : (i + 1) * rows] for i in range(batch)]
    lengths = torch.tensor([s.shape[1] for s in samples], device=values.device)
    new_offsets = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
    return torch.nested.nested_tensor_from_jagged(torch.cat(samples, dim=1), offsets=new_offsets, jagged_dim=2)


def maybe_fix_3d_position_ids(data: TensorDict) -> None:
    """Drop-in for ``verl.utils.tensordict_utils.maybe_fix_3d_position_ids`` that checks the layout."""
    if _ROPE_ROWS_KEY not in data.keys():
        return
    pos = data[_ROPE_ROWS_KEY]
    if pos.is_nested and pos.dim() == 3:
        data[_ROPE_ROWS_KEY] = normalize_3d_position_ids(pos)
