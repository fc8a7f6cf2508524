"""The optional argument head: its targets sit at each box/point's opening token, normalised to the image
the call addresses, and its squared error joins the loss with its weight."""

import pytest
import torch
from tensordict import TensorDict
from verl.utils import hf_processor, hf_tokenizer
from verl.utils import tensordict_utils as tu

from pixelis_verl.data.parquet import write_sft_parquet
from pixelis_verl.sft.argument_head import COORDINATES, ArgumentHeadConfig
from pixelis_verl.sft.dataset import CoTASFTDataset
from pixelis_verl.sft.loss import weighted_sft_loss
from pixelis_verl.tiny.build import tiny_model_path
from pixelis_verl.tools.session import load_tools, tool_schemas
from tests.data.cota_sets import TOOLS_YAML, make_set


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    traces = make_set(tmp_path_factory.mktemp("golden"), "golden", num=5)  # text, colour, shape, sign, size
    items = [(t, traces.root) for t in traces.traces()]
    path = tmp_path_factory.mktemp("sft") / "train.parquet"
    write_sft_parquet(items, tool_schemas(load_tools(TOOLS_YAML, traces.root)), path)
    model = str(tiny_model_path("qwen2_5_vl"))
    config = {"pad_mode": "no_padding", "max_length": 8192, "argument_head": {"enable": True}}
    dataset = CoTASFTDataset(str(path), hf_tokenizer(model), config, processor=hf_processor(model))
    return [t for t, _ in items], dataset


def test_targets_are_the_normalised_coordinates_at_the_opening_token(examples):
    traces, dataset = examples
    patch = dataset.processor.image_processor.patch_size
    for index, trace in enumerate(traces):
        item = dataset[index]
        grid = item["multi_modal_inputs"]["image_grid_thw"][0].tolist()
        width, height = grid[2] * patch, grid[1] * patch  # the question image as the model sees it
        mask = item["argument_mask"].reshape(-1, COORDINATES)
        targets = item["argument_targets"].reshape(-1, COORDINATES)
        positions = mask.sum(-1).nonzero().flatten().tolist()
        boxes = [s.arguments.get("bbox_2d") or s.arguments.get("point_2d") for s in trace.steps]
        boxes = [b for b in boxes if b]
        assert len(positions) == len(boxes), trace.id
        for position, box in zip(positions, boxes, strict=True):
            assert dataset.tokenizer.decode(item["input_ids"][position]).strip().startswith("["), trace.id
            expected = [v / (width if i % 2 == 0 else height) for i, v in enumerate(box)]
            assert mask[position].tolist() == [1.0] * len(box) + [0.0] * (COORDINATES - len(box))
            torch.testing.assert_close(targets[position, : len(box)], torch.tensor(expected).clamp(0, 1))


def test_the_head_error_joins_the_loss_with_its_weight():
    mask = torch.nested.as_nested_tensor([torch.tensor([0, 1, 1])], layout=torch.jagged)
    log_probs = torch.nested.as_nested_tensor([torch.tensor([-1.0, -2.0, -3.0])], layout=torch.jagged)
    targets = torch.tensor([0.0] * 4 + [0.5, 0.5, 0.0, 0.0] + [0.0] * 4)
    predictions = targets.clone()
    predictions[4] = 0.7  # off by 0.2 on one masked coordinate
    argument_mask = torch.tensor([0.0] * 4 + [1.0, 1.0, 0.0, 0.0] + [0.0] * 4)

    def nested(t):
        return torch.nested.nested_tensor_from_jagged(t, torch.tensor([0, 12]))

    data = TensorDict(
        {"loss_mask": mask, "loss_weights": torch.nested.as_nested_tensor([torch.ones(3)], layout=torch.jagged),
         "argument_targets": nested(targets), "argument_mask": nested(argument_mask)},
        batch_size=[1],
    )  # fmt: skip
    tu.assign_non_tensor(data, dp_size=1, batch_num_tokens=2)
    output = {"log_probs": log_probs, "argument_predictions": nested(predictions)}
    plain, _ = weighted_sft_loss(None, output, data)
    with_head, _ = weighted_sft_loss(None, output, data, argument_weight=0.5)
    torch.testing.assert_close(with_head - plain, torch.tensor(0.5 * 0.2**2 / 2))


def test_an_unknown_frame_fails_naming_the_key():
    with pytest.raises(ValueError, match="data.argument_head.coord_frame must be"):
        ArgumentHeadConfig(enable=True, coord_frame="absolute_source")


def test_the_engine_hooks_the_head_overrides_exist_in_the_pin():
    """A verl bump that renamed one would skip our override silently (with LoRA: adapters on the head, frozen)."""
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead

    for hook in ("_build_module", "_build_lora_module", "prepare_model_outputs", "_gather_and_unpad_packed"):
        assert callable(getattr(FSDPEngineWithLMHead, hook, None)), hook
