"""Rendered traces through verl's multi-turn SFT dataset: images in tool messages, loss on assistant tokens
only, and the token weights exactly on the tool names, argument values and the final answer."""

import json

import pytest
import torch
from verl.utils import hf_processor, hf_tokenizer

from pixelis_verl.data.parquet import write_sft_parquet
from pixelis_verl.data.render import answer_text, arguments_json
from pixelis_verl.sft.dataset import CoTASFTDataset
from pixelis_verl.tiny.build import tiny_model_path
from pixelis_verl.tools.session import load_tools, tool_schemas
from tests.data.cota_sets import TOOLS_YAML, make_set

WEIGHTS = {"tool_name": 3.0, "argument_value": 2.0, "answer": 4.0}


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    # golden: one trace per kind (size has 4 calls, event 2); self_correction adds a first miss.
    sets = [make_set(tmp_path_factory.mktemp(v), v) for v in ("golden", "self_correction")]
    return [(trace, s.root) for s in sets for trace in s.traces()]


@pytest.fixture(scope="module")
def dataset(traces, tmp_path_factory):
    path = tmp_path_factory.mktemp("sft") / "train.parquet"
    write_sft_parquet(traces, tool_schemas(load_tools(TOOLS_YAML, traces[0][1])), path)
    model = str(tiny_model_path("qwen2_5_vl"))
    config = {"pad_mode": "no_padding", "max_length": 8192, "truncation": "error", "token_weights": WEIGHTS}
    return CoTASFTDataset(str(path), hf_tokenizer(model), config, processor=hf_processor(model))


def _expected_assistant_text(trace) -> str:
    """What the chat template writes for the trace's assistant turns, each closed by <|im_end|>."""
    turns = [
        f'{s.thought}\n<tool_call>\n{{"name": "{s.tool}", "arguments": {arguments_json(s.arguments)}}}\n</tool_call>'
        for s in trace.steps
    ]
    return "".join(turn + "<|im_end|>\n" for turn in [*turns, answer_text(trace)])


def test_a_rendered_trace_round_trips_with_images_in_tool_messages(dataset, traces):
    tokenizer = dataset.tokenizer
    pad = tokenizer.convert_tokens_to_ids("<|vision_start|>")
    tool_images = 0
    for index, (trace, _) in enumerate(traces):
        item = dataset[index]  # verl's own check: per-turn tokens == the whole conversation's
        images = len(trace.images) + sum(len(s.observation.images) for s in trace.steps)
        tool_images += images - len(trace.images)
        assert int((item["input_ids"] == pad).sum()) == images
        assert item["multi_modal_inputs"]["image_grid_thw"].shape[0] == images
        assert item["position_ids"].shape == (4, item["input_ids"].shape[0])  # M-RoPE: text + 3 vision axes
        masked = item["input_ids"][item["loss_mask"].bool()].tolist()
        assert tokenizer.decode(masked) == _expected_assistant_text(trace)
    assert tool_images > len(traces)  # zooms, masks, tracks and frames all came back as images


def _weighted_runs(dataset, item) -> list[tuple[float, str]]:
    """(weight, decoded text) of each run of consecutive up-weighted tokens."""
    runs, ids, weights = [], item["input_ids"].tolist(), item["loss_weights"].tolist()
    for i, weight in enumerate(weights):
        if weight == 1.0:
            continue
        if runs and runs[-1][2] == i - 1 and runs[-1][0] == weight:
            runs[-1] = (weight, runs[-1][1] + [ids[i]], i)
        else:
            runs.append((weight, [ids[i]], i))
    return [(weight, dataset.tokenizer.decode(run)) for weight, run, _ in runs]


def test_token_weights_land_exactly_on_tool_names_argument_values_and_the_answer(dataset, traces):
    for index, (trace, _) in enumerate(traces):
        item = dataset[index]
        assert item["loss_weights"].shape == item["input_ids"].shape
        expected = []
        for step in trace.steps:
            expected.append((3.0, f'"{step.tool}"'))
            expected += [(2.0, json.dumps(value)) for value in step.arguments.values()]
        expected.append((4.0, trace.answer))
        runs = _weighted_runs(dataset, item)
        assert [w for w, _ in runs] == [w for w, _ in expected], trace.id
        for (_, text), (_, value) in zip(runs, expected, strict=True):
            # A token at a value's edge may also carry the punctuation next to it (the tokenizer merged them).
            before, found, after = text.partition(value)
            assert found and set(before + after) <= set(' ",:{}<>/\n'), (trace.id, text, value)
        assert torch.all(item["loss_weights"][~item["loss_mask"].bool()] == 1.0)  # the prompt's format example too


def test_unknown_token_weight_keys_fail_naming_them(traces, tmp_path):
    model = str(tiny_model_path("qwen2_5_vl"))
    config = {"pad_mode": "no_padding", "token_weights": {"tool_nme": 2.0}}
    with pytest.raises(ValueError, match=r"data.token_weights: unknown key\(s\) \['tool_nme'\]"):
        CoTASFTDataset(str(tmp_path / "none.parquet"), hf_tokenizer(model), config, processor=hf_processor(model))
