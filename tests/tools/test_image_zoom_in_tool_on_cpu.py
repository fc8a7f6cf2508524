"""Qwen3-VL's own zoom tool, `image_zoom_in_tool`, through verl's tool registry: Qwen-Agent's name and arguments,
the same crop as `zoom_in`, its 32-pixel minimum box and its upscale."""

import asyncio
import io
from pathlib import Path

import pytest
from PIL import Image
from verl.experimental.agent_loop.tool_agent_loop import AgentData
from verl.tools.tool_registry import initialize_tools_from_config

from pixelis_verl.ops.zoom import grow_to_min_side
from pixelis_verl.tools.zoom import ImageZoomInTool, ZoomInTool
from pixelis_verl.trajectory.steps import STEPS_KEY

TOOLS = Path(__file__).resolve().parents[2] / "conf" / "tools"


def _load(file: str, name: str):
    return next(t for t in initialize_tools_from_config(str(TOOLS / file)) if t.name == name)


@pytest.fixture(scope="module")
def native() -> ImageZoomInTool:
    return _load("qwen3_vl_native_zoom.yaml", "image_zoom_in_tool")


def _agent_data(source: Image.Image) -> AgentData:
    buffer = io.BytesIO()
    source.save(buffer, format="PNG")
    return AgentData(
        messages=[], image_data=[source.resize((512, 384))], video_data=None, audio_data=None,
        mm_processor_kwargs=None, metrics={}, request_id="native-zoom",
        tools_kwargs={"pixelis": {"source_images": [{"bytes": buffer.getvalue()}]}},
    )  # fmt: skip


def _source() -> Image.Image:
    image = Image.new("RGB", (2000, 1500), (255, 255, 255))
    image.paste((255, 0, 0), (1000, 600, 1200, 750))
    return image


def _call(tool, params, agent_data):
    response, reward, _ = asyncio.run(tool.execute("instance", params, agent_data=agent_data))
    return response, reward, agent_data.extra_fields[STEPS_KEY][-1]


def test_schema_is_qwen_agents(native):
    schema = native.tool_schema.model_dump(exclude_unset=True, exclude_none=True)["function"]
    assert schema["name"] == "image_zoom_in_tool"
    assert schema["parameters"]["required"] == ["bbox_2d", "label", "img_idx"]
    assert set(schema["parameters"]["properties"]) == {"bbox_2d", "label", "img_idx"}


def test_same_box_gives_the_same_crop_as_zoom_in():
    zoom_in = _load("pixel_tools_qwen3_vl.yaml", "zoom_in")  # relative_1000 too
    box = [500, 400, 600, 500]  # 0..1000 of the 2000x1500 source: [1000, 600, 1200, 750]
    ours, _, ours_step = _call(zoom_in, {"bbox_2d": box}, _agent_data(_source()))
    native = _load("qwen3_vl_native_zoom.yaml", "image_zoom_in_tool")
    theirs, reward, step = _call(native, {"bbox_2d": box, "label": "red card", "img_idx": 0}, _agent_data(_source()))
    assert reward == 0.0 and step["ok"] and step["tool"] == "image_zoom_in_tool"
    assert step["box_source"] == ours_step["box_source"] == [1000, 600, 1200, 750]
    assert theirs.text.startswith("red card: Zoomed into [1000, 600, 1200, 750]")
    # Qwen-Agent's smart_resize (factor 32, min_pixels 256*32*32) upscales the 200x150 crop; zoom_in bounds it lower
    (crop,) = theirs.image
    assert crop.width % 32 == crop.height % 32 == 0 and crop.width * crop.height >= 256 * 32 * 32
    assert crop.resize(ours.image[0].size).getpixel((10, 10)) == ours.image[0].getpixel((10, 10)) == (255, 0, 0)


def test_a_box_under_32_pixels_grows_around_its_centre_to_32(native):
    box = [500, 400, 505, 404]  # 10 x 6 source pixels at (1000, 600)
    _, reward, step = _call(native, {"bbox_2d": box, "label": "dot", "img_idx": 0}, _agent_data(_source()))
    x1, y1, x2, y2 = step["box_source"]
    assert reward == 0.0 and min(x2 - x1, y2 - y1) >= 32 and (x1 + x2) / 2 == pytest.approx(1005, abs=1)
    # as in Qwen-Agent, a grown box is clipped, not shifted: one that then stays under 32 px is not used
    assert grow_to_min_side((0.0, 0.0, 4.0, 4.0), (2000, 1500), 32) == (0.0, 0.0, 4.0, 4.0)
    assert grow_to_min_side((100.0, 100.0, 104.0, 108.0), (2000, 1500), 32) == (86.0, 72.0, 118.0, 136.0)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"bbox_2d": [1, 2, 30, 40], "label": "x"}, "image_zoom_in_tool: img_idx is required"),
        ({"bbox_2d": [1, 2, 30, 40], "label": 7, "img_idx": 0}, "image_zoom_in_tool: label must be a string"),
        ({"bbox_2d": [1, 2, 30, 40], "label": "x", "img_idx": 2}, "image_zoom_in_tool: img_idx must be an integer"),
        ({"label": "x", "img_idx": 0}, "image_zoom_in_tool: bbox_2d is required"),
    ],
)
def test_bad_arguments_get_a_one_line_error(native, params, message):
    response, reward, step = _call(native, params, _agent_data(_source()))
    assert response.text.startswith(message) and "\n" not in response.text and reward == -0.05
    assert step["ok"] is False


def test_the_alias_takes_no_frame_but_qwen3_vls():
    with pytest.raises(ValueError, match="coord_frame must be relative_1000"):
        ImageZoomInTool(config={"type": "native", "coord_frame": "absolute_resized"}, tool_schema=None)
    assert issubclass(ImageZoomInTool, ZoomInTool)


def test_the_qwen3_vl_native_model_group_offers_only_qwen3_vls_zoom():
    from pixelis_verl.config import compose_recipe, resolve

    cfg = resolve(compose_recipe("eval_vstar", ["model@_global_=qwen3_vl_8b_native", "model.path=/m", "data.path=/d"]))
    path = cfg.actor_rollout_ref.rollout.multi_turn.tool_config_path
    assert [t.name for t in initialize_tools_from_config(path)] == ["image_zoom_in_tool"]
    assert cfg.data.image_patch_size == 16  # the rest is qwen3_vl_8b
