"""Optional auxiliary head: regress the box/point a tool call is about to write, from the hidden state.

At the token that opens a `bbox_2d` or `point_2d` value (the `[`), the hidden state must already hold the
coordinates the model is about to write digit by digit. A small MLP on the final hidden state (the input of
the LM head) regresses them, normalised to 0..1 of the image the call addresses; its squared error, with
weight `data.argument_head.weight`, is added to the imitation loss (`pixelis_verl.sft.loss`). The gradient
flows into the model: a continuous, scale-aware signal for the arguments whose digits the token loss only
scores one at a time. Off by default; the head's weights are saved with checkpoints (`pixelis_argument_head.*`
in the HF state dict, which plain model loading ignores). With LoRA the head trains in full beside the adapters.

verl's engines hand the loss log-probs and entropy only, so the head lives in an engine subclass registered
under its own model type: `_build_module` attaches the head to the HF model before FSDP wraps it (its
parameters are trained and sharded with the model's) and hooks the LM head's input, computing the
predictions inside the forward; `prepare_model_outputs` lays them out like the log-probs. Run on CPU (the
padded path); the packed (`use_remove_padding`) path follows verl's own layout of log-probs but has not run
on a GPU. Fused LM-head kernels never call the LM head module, so the head requires them off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from verl.utils import tensordict_utils as tu
from verl.workers.engine.base import EngineRegistry
from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead

from pixelis_verl.runtime.upstream import registered_engines
from pixelis_verl.sft.token_weights import CallTokens

MODEL_TYPE = "pixelis_argument_lm"  # the engine registry key of the LM engine with the head
COORDINATES = 4  # x1, y1, x2, y2 (a point fills the first two)
ARGUMENTS = {"bbox_2d": 4, "point_2d": 2}
FRAME_EXTENTS = {"relative_1000": 1000.0}  # frames whose extent is fixed; absolute_resized: the shown image size


@dataclass(frozen=True)
class ArgumentHeadConfig:
    enable: bool = False
    weight: float = 0.1  # of the mean squared error of the normalised coordinates, added to the loss
    coord_frame: str = "absolute_resized"  # the frame the traces' arguments are in (their view.coord_frame)

    def __post_init__(self) -> None:
        if self.coord_frame not in ("absolute_resized", *FRAME_EXTENTS):
            raise ValueError(
                f"data.argument_head.coord_frame must be absolute_resized or relative_1000; got {self.coord_frame!r}"
            )


def argument_head_config(data_config: Any) -> ArgumentHeadConfig:
    """The `data.argument_head` block of an SFT config (absent: off)."""
    from omegaconf import OmegaConf

    from pixelis_verl.typed_config import from_dict

    values = data_config.get("argument_head") or {}
    values = OmegaConf.to_container(values) if OmegaConf.is_config(values) else dict(values)
    return from_dict(ArgumentHeadConfig, values, "data.argument_head")


class ArgumentHead(nn.Module):
    def __init__(self, hidden_size: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(hidden_size, hidden_size // 4), nn.GELU(), nn.Linear(hidden_size // 4, COORDINATES)
        )
        self.predictions: torch.Tensor | None = None

    def capture(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        """Forward pre-hook of the LM head: predict from its input, inside the model's forward."""
        self.predictions = torch.sigmoid(self.mlp(args[0]))


def image_sizes(image_grid_thw: torch.Tensor | None, patch_size: int) -> list[tuple[float, float]]:
    """(width, height) in pixels of each image as the model sees it, from the processor's patch grid."""
    if image_grid_thw is None:
        return []
    return [(float(w * patch_size), float(h * patch_size)) for _, h, w in image_grid_thw.tolist()]


def argument_targets(
    calls: list[CallTokens], length: int, sizes: list[tuple[float, float]], frame: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets, mask), each flat of length 4 x tokens: normalised coordinates at each box/point's opening token."""
    targets = torch.zeros(length, COORDINATES)
    mask = torch.zeros(length, COORDINATES)
    for call in calls:
        index = call.arguments.get("image_index", (0, []))[0] or 0
        for name, count in ARGUMENTS.items():
            value, positions = call.arguments.get(name, (None, []))
            if not positions or not isinstance(value, list) or len(value) != count or not 0 <= index < len(sizes):
                continue
            width, height = (FRAME_EXTENTS[frame],) * 2 if frame in FRAME_EXTENTS else sizes[index]
            scaled = [float(v) / (width if i % 2 == 0 else height) for i, v in enumerate(value)]
            targets[positions[0], :count] = torch.tensor(scaled).clamp(0.0, 1.0)
            mask[positions[0], :count] = 1.0
    return targets.reshape(-1), mask.reshape(-1)


class ArgumentHeadEngine(FSDPEngineWithLMHead):
    """verl's FSDP LM engine with the argument head attached to the model (see the module docstring)."""

    def _build_module(self) -> nn.Module:
        self.model_config.model_type = "language_model"  # verl's builder dispatches on it; ours only differs here
        try:
            module = super()._build_module()
        finally:
            self.model_config.model_type = MODEL_TYPE
        head = ArgumentHead(module.config.get_text_config().hidden_size).to(next(module.parameters()).dtype)
        module.pixelis_argument_head = head
        module.get_output_embeddings().register_forward_pre_hook(head.capture)
        return module

    def _build_lora_module(self, module: nn.Module) -> nn.Module:
        """With LoRA (``model.lora_rank > 0``) the head trains in full beside the adapters: peft would otherwise
        match its linear layers (``target_modules: all-linear``), freeze them and train adapters on them."""
        head = module.pixelis_argument_head
        del module.pixelis_argument_head
        module = super()._build_lora_module(module)
        module.base_model.model.pixelis_argument_head = head  # where the HF model kept it: saved with the model
        return module

    def prepare_model_outputs(self, output: Any, output_args: dict, micro_batch: Any, logits_processor_func: Any):
        model_output = super().prepare_model_outputs(output, output_args, micro_batch, logits_processor_func)
        predictions = self.module.pixelis_argument_head.predictions
        input_ids = micro_batch["input_ids"]
        if tu.get_non_tensor_data(data=micro_batch, key="use_remove_padding", default=True):
            flat = self._gather_and_unpad_packed(predictions.squeeze(0), output_args["pad_size"])
        else:  # padded (batch, max length, 4): keep each sequence's own tokens
            lengths = input_ids.offsets().diff().tolist()
            flat = torch.cat([predictions[i, :length] for i, length in enumerate(lengths)])
        model_output["argument_predictions"] = torch.nested.nested_tensor_from_jagged(
            flat.reshape(-1), input_ids.offsets() * COORDINATES
        )
        return model_output


def register_engine(device: str) -> None:
    """Register the engine for `device` under MODEL_TYPE (once per process)."""
    registered = registered_engines(MODEL_TYPE)
    for backend in ("fsdp", "fsdp2"):
        if device not in registered.get(backend, {}):
            EngineRegistry.register(model_type=MODEL_TYPE, backend=backend, device=device)(ArgumentHeadEngine)
