"""Synthetic task rows read back by verl's RLHFDataset, and handed to the tools the way the agent loop does."""

import asyncio
import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from PIL import Image
from verl.experimental.agent_loop.tool_agent_loop import AgentData
from verl.tools.tool_registry import initialize_tools_from_config
from verl.utils.dataset.rl_dataset import RLHFDataset

from pixelis_verl.data.rl_rows import (
    DATA_SOURCE,
    SHOWN_MAX_PIXELS,
    SYSTEM_PROMPT,
    TOOL_FREE_SYSTEM_PROMPT,
    write_task_parquet,
)
from pixelis_verl.data.synth.tasks import generate_tasks
from pixelis_verl.data.synth.zoom_tasks import COLOURS
from pixelis_verl.ops.sizes import fit_size
from pixelis_verl.trajectory.steps import STEPS_KEY

TOOLS_YAML = Path(__file__).resolve().parents[2] / "conf" / "tools" / "pixel_tools.yaml"
SEED, NUM = 3, 7
KINDS = ("text", "colour", "shape", "sign", "size", "motion", "event")


@pytest.fixture(scope="module")
def parquet(tmp_path_factory) -> Path:
    return write_task_parquet(tmp_path_factory.mktemp("data") / "tasks.parquet", NUM, SEED, "train", KINDS)


@pytest.fixture(scope="module")
def dataset(parquet, tmp_path_factory) -> RLHFDataset:
    config = OmegaConf.create(
        {
            "cache_dir": str(tmp_path_factory.mktemp("verl_cache")),
            "prompt_key": "prompt",
            "image_key": "images",
            # The length filter renders prompts through a real Qwen-VL processor (qwen_vl_utils needs
            # torchvision); the row -> raw_prompt conversion tested here needs neither.
            "filter_overlong_prompts": False,
        }
    )
    processor = SimpleNamespace(image_processor=SimpleNamespace(patch_size=14))
    return RLHFDataset(data_files=str(parquet), tokenizer=None, config=config, processor=processor)


def test_parquet_rows_follow_verls_rl_schema(parquet):
    frame = pd.read_parquet(parquet)
    assert set(frame.columns) == {
        "data_source",
        "prompt",
        "images",
        "ability",
        "reward_model",
        "agent_name",
        "extra_info",
    }
    tasks = generate_tasks(NUM, SEED, KINDS)
    for i, (row, task) in enumerate(zip(frame.to_dict("records"), tasks, strict=True)):
        assert (
            row["data_source"] == DATA_SOURCE
            and row["ability"] == "pixel_vqa"
            and row["agent_name"] == "pixelis_tool_agent"
        )
        system, user = row["prompt"]
        assert system == {"role": "system", "content": SYSTEM_PROMPT}
        assert user == {"role": "user", "content": "<image>\n" + task.question}
        (image,) = row["images"]
        assert image["max_pixels"] == SHOWN_MAX_PIXELS
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(image["bytes"]))), np.asarray(task.image))
        assert row["reward_model"] == {"style": "rule", "ground_truth": task.answer}
        extra = row["extra_info"]
        assert extra["index"] == i and extra["split"] == "train" and extra["answer"] == task.answer
        assert extra["question"] == task.question and list(extra["target_box"]) == list(task.target_box)
        assert extra["kind"] == KINDS[i]
        pixelis = extra["tools_kwargs"]["pixelis"]
        if task.frames:  # video rows: the mp4 under the data root, the question image is frame 0
            assert len(pixelis["source_images"]) == 0 and list(pixelis["video"]["question_frames"]) == [0]
            assert (parquet.parent / pixelis["video"]["path"]).is_file()
        else:
            (source,) = pixelis["source_images"]
            assert source["bytes"] == image["bytes"] and pixelis["video"] is None


def test_tool_free_rows_offer_no_tools_and_the_tool_free_prompt_while_selected_rows_offer_their_kinds(tmp_path):
    def rows(**kwargs):
        return pd.read_parquet(write_task_parquet(tmp_path / "t.parquet", 2, SEED, "train", ["card"], **kwargs))

    selected, free = rows(select_tools=True), rows(select_tools=True, tool_free=True)
    assert [list(r["extra_info"]["tool_selection"]) for _, r in selected.iterrows()] == [["zoom_in"]] * 2
    for _, row in free.iterrows():
        assert list(row["extra_info"]["tool_selection"]) == []  # the agent loop reads [] as "no tools"
        assert row["prompt"][0] == {"role": "system", "content": TOOL_FREE_SYSTEM_PROMPT}


def test_rlhf_dataset_turns_a_row_into_raw_prompt_and_tools_kwargs(dataset):
    assert len(dataset) == NUM
    item = dataset[1]
    system, user = item["raw_prompt"]
    assert system["content"] == [{"type": "text", "text": SYSTEM_PROMPT}]  # every message goes structured
    image, text = user["content"]
    assert image["type"] == "image" and image["image"].size == (896, 896) and image["max_pixels"] == SHOWN_MAX_PIXELS
    assert text == {"type": "text", "text": "\n" + item["extra_info"]["question"]}
    assert item["index"] == 1 and item["agent_name"] == "pixelis_tool_agent"
    assert item["tools_kwargs"]["pixelis"]["source_images"][0]["bytes"] == image["bytes"]


def _shown(image: Image.Image, max_pixels: int) -> Image.Image:
    """The model's view: qwen_vl_utils.fetch_image's smart_resize + PIL resize (Qwen2.5-VL factor 28)."""
    return image.resize(fit_size(*image.size, min_pixels=4 * 28 * 28, max_pixels=max_pixels, factor=28))


def test_zoom_in_on_a_dataset_row_recovers_the_target_from_the_source(dataset):
    zoom_in = next(t for t in initialize_tools_from_config(str(TOOLS_YAML)) if t.name == "zoom_in")
    item = dataset[1]  # a colour task: "What colour is the small circle?"
    assert item["extra_info"]["kind"] == "colour"
    image = item["raw_prompt"][1]["content"][0]
    shown = _shown(image["image"], image["max_pixels"])
    assert shown.size == (448, 448)
    agent_data = AgentData(
        messages=item["raw_prompt"],
        image_data=[shown],
        video_data=None,
        audio_data=None,
        mm_processor_kwargs=None,
        metrics={},
        request_id="row-1",
        tools_kwargs=item["tools_kwargs"],
    )
    x1, y1, x2, y2 = item["extra_info"]["target_box"]
    box = [(x1 - 8) / 2, (y1 - 8) / 2, (x2 + 8) / 2, (y2 + 8) / 2]  # around the target, in shown pixels
    response, reward, _ = asyncio.run(zoom_in.execute("id", {"bbox_2d": box}, agent_data=agent_data))
    assert reward == 0.0
    bx1, by1, bx2, by2 = agent_data.extra_fields[STEPS_KEY][0]["box_source"]
    assert bx1 <= x1 and by1 <= y1 and bx2 >= x2 and by2 >= y2
    crop = np.asarray(response.image[0]).astype(int)
    colour = COLOURS[item["reward_model"]["ground_truth"]]
    assert (np.abs(crop - colour).sum(axis=-1) < 30).mean() > 0.05


def test_select_frames_on_a_video_row_reads_the_rows_video(dataset, parquet, monkeypatch):
    monkeypatch.setenv("PIXELIS_DATA_ROOT", str(parquet.parent))
    select_frames = next(t for t in initialize_tools_from_config(str(TOOLS_YAML)) if t.name == "select_frames")
    item = dataset[5]  # a motion task
    assert item["extra_info"]["kind"] == "motion"
    image = item["raw_prompt"][1]["content"][0]
    agent_data = AgentData(
        messages=item["raw_prompt"],
        image_data=[_shown(image["image"], image["max_pixels"])],
        video_data=None,
        audio_data=None,
        mm_processor_kwargs=None,
        metrics={},
        request_id="row-5",
        tools_kwargs=item["tools_kwargs"],
    )
    response, reward, _ = asyncio.run(select_frames.execute("id", {"num_frames": 3}, agent_data=agent_data))
    assert reward == 0.0 and len(response.image) == 3, response.text
    assert "frame 0 (0.00 s)" in response.text and "frame 29 (2.90 s)" in response.text
