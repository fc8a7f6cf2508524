"""A stream request as verl's agent loop and the policy's embedding pass take it."""

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image
from verl.utils import hf_processor

from pixelis_verl.data.synth.moving_object import write_video
from pixelis_verl.runtime.upstream import rl_rows
from pixelis_verl.tiny.build import tiny_model_path
from pixelis_verl.ttrl.requests import embedding_inputs, request_row
from pixelis_verl.ttrl.stream import Request

DATA = OmegaConf.create({"prompt_key": "prompt", "image_key": "images"})


@pytest.fixture(scope="module")
def processor():
    return hf_processor(str(tiny_model_path("qwen3_vl")))


def test_an_image_request_becomes_a_verl_row_with_its_tools_and_no_label(processor):
    request = Request("r1", "Which colour?", [Image.new("RGB", (64, 48), "red")], options=["red", "blue"],
                      tools=["zoom_in"])  # fmt: skip
    row = request_row(request, 0, None, 65536, exemplars=[("zoom_in", "read_text")])
    item = rl_rows([row], DATA, processor)[0]
    user = item["raw_prompt"][1]["content"]
    assert user[0]["type"] == "image" and user[0]["image"].size == (64, 48)
    assert "(A) red\n(B) blue" in user[1]["text"] and "zoom_in -> read_text" in user[1]["text"]
    assert item["reward_model"]["ground_truth"] is None and item["extra_info"]["tool_selection"] == ["zoom_in"]
    assert len(item["tools_kwargs"]["pixelis"]["source_images"]) == 1


def test_a_video_request_names_its_file_inside_the_data_root(tmp_path):
    (tmp_path / "clips").mkdir()
    video = write_video([np.zeros((8, 8, 3), np.uint8)] * 2, tmp_path / "clips" / "a.mp4", fps=2)
    request = Request("v1", "Which way?", [Image.new("RGB", (8, 8))], video=video)
    row = request_row(request, 0, str(tmp_path), 65536)
    assert row["extra_info"]["tools_kwargs"]["pixelis"]["video"] == {"path": "clips/a.mp4", "question_frames": [0]}


def test_embedding_inputs_carry_verls_mrope_position_ids(processor):
    request = Request("r1", "What is written here?", [Image.new("RGB", (640, 480), "white")])
    inputs = embedding_inputs(processor, request, 65536)
    length = inputs["input_ids"].shape[1]
    assert inputs["position_ids"].shape == (4, 1, length)  # a text row and three vision rows, rows first
    assert "pixel_values" in inputs and "mm_token_type_ids" not in inputs
