"""verl's multi-turn SFT dataset, reading our SFT parquet and adding per-token loss weights.

Two additions to `MultiTurnSFTDataset`, selected with `data.custom_cls` (verl's own hook for a dataset):
- the `tools` column is a JSON string (see `pixelis_verl.data.render` for why), decoded here;
- every item carries `loss_weights`, a float per token (`pixelis_verl.sft.token_weights`), which verl's
  collator batches like `loss_mask` and the loss (`pixelis_verl.sft.loss`) reads; with
  `data.argument_head.enable`, also the auxiliary head's `argument_targets` and `argument_mask`
  (`pixelis_verl.sft.argument_head`).
Everything else, the chat template, `<image>` placeholders in any message, the assistant-only loss mask and
the check that per-turn tokenisation equals the whole conversation's, is verl's.
"""

from __future__ import annotations

import json
from typing import Any

from omegaconf import OmegaConf
from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

from pixelis_verl.sft.argument_head import argument_head_config, argument_targets, image_sizes
from pixelis_verl.sft.token_weights import TokenWeights, answer_tokens, token_weights, tool_calls
from pixelis_verl.typed_config import from_dict


class CoTASFTDataset(MultiTurnSFTDataset):
    def __init__(self, parquet_files: Any, tokenizer: Any, config: Any, processor: Any = None, max_samples: int = -1):
        values = config.get("token_weights") or {}
        values = OmegaConf.to_container(values) if OmegaConf.is_config(values) else dict(values)
        self.token_weights = from_dict(TokenWeights, values, "data.token_weights")
        self.argument_head = argument_head_config(config)
        super().__init__(parquet_files, tokenizer, config, processor=processor, max_samples=max_samples)

    def _read_files_and_process(self) -> None:
        super()._read_files_and_process()
        if self.tools is not None:
            self.tools = [json.loads(t) if isinstance(t, str) else t for t in self.tools]

    def __getitem__(self, item: int) -> dict[str, Any]:
        row = super().__getitem__(item)
        calls = tool_calls(row["input_ids"], row["loss_mask"], self.tokenizer)  # decoded once, used twice
        length = row["input_ids"].shape[-1]
        weighs_answer = self.token_weights.answer != 1
        answer = answer_tokens(row["input_ids"], row["loss_mask"], self.tokenizer) if weighs_answer else []
        row["loss_weights"] = token_weights(calls, length, self.token_weights, answer)
        if self.argument_head.enable:
            grid = row.get("multi_modal_inputs", {}).get("image_grid_thw")
            sizes = image_sizes(grid, self.processor.image_processor.patch_size if self.processor else 0)
            targets = argument_targets(calls, length, sizes, self.argument_head.coord_frame)
            row["argument_targets"], row["argument_mask"] = targets
        return row
