"""The tiny Qwen2.5-VL / Qwen3-VL builds: tokenizer, image-only processor, chat template, model, warm start.

Uses the cached builds (`tiny_model_path`); `make install` builds them, otherwise the first test builds them once.
"""

import json
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from PIL import Image, ImageDraw

from pixelis_verl.runtime.processor import install_cpu_processors
from pixelis_verl.tiny.build import CHAT_TEMPLATE_PATH, FAMILIES, MARKER, MAX_VISION_TOKENS, tiny_model_path
from pixelis_verl.tools.session import load_tools, tool_schemas

pytestmark = pytest.mark.timeout(900)  # a cold cache builds and warm-starts the model first

# With torchvision (GPU nodes) upstream processors are used and these CPU-runtime guarantees do not apply.
cpu_runtime_only = pytest.mark.skipif(not install_cpu_processors(), reason="torchvision is installed")


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request):
    return request.param


@pytest.fixture(scope="module")
def model_dir(family):
    return tiny_model_path(family)


@pytest.fixture(scope="module")
def processor(model_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(model_dir)


def _image(size=(448, 448), colour="red"):
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle((200, 120, 230, 150), fill=colour)
    return image


def _pad_count(ids, processor):
    return sum(1 for i in ids if i == processor.image_token_id)


def test_processor_expands_image_pad_to_merged_patch_count(processor):
    text = "<|vision_start|><|image_pad|><|vision_end|>What colour is the square?"
    out = processor(text=[text], images=[_image()], return_tensors="pt")

    (t, h, w) = out["image_grid_thw"][0].tolist()
    merged = t * h * w // processor.image_processor.merge_size**2
    assert out["pixel_values"].shape[0] == t * h * w
    assert _pad_count(out["input_ids"][0].tolist(), processor) == merged
    assert 0 < merged <= MAX_VISION_TOKENS


def test_tokenizer_has_qwen_tokens_and_keeps_tool_tags(model_dir):
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = AutoConfig.from_pretrained(model_dir)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert config.vision_start_token_id == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert config.text_config.vocab_size == len(tokenizer)

    ids = tokenizer.encode('<tool_call>\n{"bbox_2d": [120, 7]}\n</tool_call><|im_end|>', add_special_tokens=False)
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    assert decoded.startswith("<tool_call>") and decoded.endswith("</tool_call>")
    assert [tokenizer.decode([i]) for i in tokenizer.encode("120", add_special_tokens=False)] == ["1", "2", "0"]


@cpu_runtime_only
def test_video_input_raises_clear_error(processor):
    with pytest.raises(ValueError, match="video input is not supported"):
        processor(text=["<|vision_start|><|video_pad|><|vision_end|>"], videos=[[_image()] * 2])


def test_model_loads_and_trains_and_generates_with_an_image(model_dir, processor):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    assert model.dtype == torch.float32 and sum(p.numel() for p in model.parameters()) < 5e6
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[_image()], return_tensors="pt")

    loss = model(**inputs, labels=inputs["input_ids"]).loss
    loss.backward()
    assert torch.isfinite(loss) and model.lm_head.weight.grad.abs().sum() > 0
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


@cpu_runtime_only
@pytest.mark.parametrize("trust_remote_code", [True, False])
def test_hf_processor_returns_image_only_processor_in_fresh_process(model_dir, trust_remote_code):
    # A fresh interpreter, like a Ray worker: verl's plugin entry point (or the model's auto_map) must do the work.
    code = (
        "import sys; from verl.utils import hf_processor; "
        f"p = hf_processor(sys.argv[1], trust_remote_code={trust_remote_code}); "
        "print(type(p).__module__, type(p).__name__, p.chat_template is not None)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code, str(model_dir)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    module, name, has_template = done.stdout.split()[-3:]
    assert module.startswith("pixelis_verl.runtime.processor"), done.stdout + done.stderr[-2000:]
    assert name == {"qwen2_5_vl": "Qwen2_5_VLProcessor", "qwen3_vl": "Qwen3VLProcessor"}[model_dir.name]
    assert has_template == "True"


def _schemas(family: str, data_root) -> list[dict]:
    """The family's six tool schemas as verl's agent loop renders them."""
    return list(tool_schemas(load_tools(FAMILIES[family].tool_config_path(), data_root)).values())


def test_processor_and_tokenizer_carry_the_tool_template(model_dir, processor):
    from transformers import AutoTokenizer

    template = CHAT_TEMPLATE_PATH.read_text()
    assert processor.chat_template == template
    assert processor.tokenizer.chat_template == template
    assert AutoTokenizer.from_pretrained(model_dir).chat_template == template  # verl's hf_tokenizer path


def test_tool_call_and_image_tool_response_merge_like_a_full_render(model_dir, processor, tmp_path):
    """The token stream ToolAgentLoop builds turn by turn equals one render of the whole conversation."""
    from transformers import AutoConfig
    from verl.utils.tokenizer.continuous_token_wiring import create_continuous_token_builder

    tokenizer = processor.tokenizer
    model_type = AutoConfig.from_pretrained(model_dir).model_type
    builder = create_continuous_token_builder(tokenizer, hf_model_type=model_type, processor=processor)
    tools = _schemas(model_type, tmp_path)
    image, crop = _image(), _image((96, 64), "blue")
    prompt = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "What colour?"}]},
    ]
    call = {"name": "zoom_in", "arguments": {"bbox_2d": [10, 20, 110, 90]}}
    generated = tokenizer.encode(
        '<tool_call>\n{"name": "zoom_in", "arguments": {"bbox_2d": [10, 20, 110, 90]}}\n</tool_call><|im_end|>',
        add_special_tokens=False,
    )
    after_call = prompt + [{"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": call}]}]
    tool_turns = [  # two results of one assistant turn share one user turn
        {"role": "tool", "content": [{"type": "image", "image": crop}, {"type": "text", "text": "crop"}]},
        {"role": "tool", "content": "mask_id 3"},
    ]

    ids = builder.build_initial_tokens(prompt, tools=tools, images=[image])
    ids = builder.merge_assistant_tokens(ids, generated).token_ids
    ids = builder.merge_context_tokens(after_call, after_call + tool_turns, ids, tools=tools).token_ids

    full_text = processor.apply_chat_template(
        after_call + tool_turns, tools=tools, add_generation_prompt=True, tokenize=False
    )
    full = processor(text=[full_text], images=[image, crop], return_tensors="pt")
    assert ids == full["input_ids"][0].tolist()
    merged = full["image_grid_thw"].prod(-1) // processor.image_processor.merge_size**2
    assert _pad_count(ids, processor) == int(merged.sum())
    text = tokenizer.decode(ids)
    assert text.count("<tool_response>\n<|vision_start|><|image_pad|>") == 1
    assert text.count("<|im_start|>user") == 2  # the question, then both tool results in one turn


def test_chat_template_renders_hermes_tool_call_and_tool_response(processor, tmp_path):
    tools = _schemas("qwen2_5_vl", tmp_path)
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q"}]},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "zoom_in", "arguments": '{"a": 1}'}}],
        },
        {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": "crop"}]},
        {"role": "tool", "content": "second"},
    ]
    text = processor.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)
    assert '<tools>\n{"type": "function", "function": {"name": "zoom_in"' in text
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "zoom_in", "arguments": {"a": 1}}\n</tool_call><|im_end|>' in text
    )
    assert text.endswith(
        "<|im_start|>user\n<tool_response>\n<|vision_start|><|image_pad|><|vision_end|>crop\n</tool_response>\n"
        "<tool_response>\nsecond\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
    )


def test_warm_start_reports_tool_call_rates(model_dir):
    report = json.loads((model_dir / "warm_start.json").read_text())
    marker = json.loads((model_dir / MARKER).read_text())
    assert marker["warm_start"] is True
    assert report["n_eval"] > 0 and report["steps"] > 0
    for key in ("greedy_well_formed_rate", "sampled_well_formed_rate"):
        assert 0.0 <= report[key] <= 1.0
    assert max(report["greedy_well_formed_rate"], report["sampled_well_formed_rate"]) > 0, report
