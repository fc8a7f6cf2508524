"""The masked imitation loss: verl's SFT loss with a weight per token.

verl's `sft_loss` is the negative log-likelihood of the assistant tokens (`loss_mask`), summed and divided
by the batch's assistant-token count. Ours multiplies each token's term by `loss_weights` from the dataset
(tool names and argument values up-weighted) and keeps the same normaliser, so with all weights 1 it is
verl's loss exactly, and the gradient scale does not depend on how many calls a batch holds. Installed by
`pixelis_verl.sft.trainer` in place of verl's (the SFT trainer has no loss option). The optional argument
head's regression term is added here too.
"""

from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDict
from verl.utils import tensordict_utils as tu
from verl.utils.dataset.dataset_utils import DatasetPadMode
from verl.utils.torch_functional import masked_sum


def weighted_sft_loss(
    config: Any, model_output: dict[str, Any], data: TensorDict, dp_group: Any = None, argument_weight: float = 0.0
):
    """(loss, metrics) for one micro-batch of packed (no-padding) sequences.

    With `argument_weight` (the auxiliary argument head, `pixelis_verl.sft.argument_head`), adds that weight
    times the head's squared error on the normalised box/point coordinates, under the same normaliser.
    """
    pad_mode = tu.get_non_tensor_data(data=data, key="pad_mode", default=DatasetPadMode.NO_PADDING)
    if pad_mode != DatasetPadMode.NO_PADDING:
        raise ValueError(f"data.pad_mode must be no_padding for the weighted SFT loss; got {pad_mode}")
    log_prob = model_output["log_probs"].values()
    # The mask and weights belong to the token predicted; shift left by one to align with the log-probs.
    mask = torch.roll(data["loss_mask"].values(), shifts=-1, dims=0)
    weights = torch.roll(data["loss_weights"].values().to(log_prob.dtype), shifts=-1, dims=0)
    scale = data["dp_size"] / data["batch_num_tokens"]
    loss = -masked_sum(log_prob * weights, mask) * scale
    if argument_weight:
        error = (model_output["argument_predictions"].values() - data["argument_targets"].values()) ** 2
        loss = loss + argument_weight * masked_sum(error, data["argument_mask"].values()) * scale
    return loss, {}
