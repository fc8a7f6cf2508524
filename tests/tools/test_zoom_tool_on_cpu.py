"""zoom_in through verl's own loading and calling code: the YAML registry, ToolAgentLoop._call_tool, AgentData."""

import asyncio
import io
import logging
import math
from pathlib import Path
from unittest.mock import MagicMock

import numpy as np
import pytest
from PIL import Image
from verl.experimental.agent_loop.tool_agent_loop import AgentData, ToolAgentLoop
from verl.experimental.agent_loop.tool_parser import FunctionCall
from verl.tools.tool_registry import initialize_tools_from_config

from pixelis_verl.tools.coords import COORD_FRAMES
from pixelis_verl.tools.zoom import ZoomInTool
from pixelis_verl.trajectory.steps import OBSERVATION_DIM, STEPS_KEY, observation_feature

TOOLS_YAML = Path(__file__).resolve().parents[2] / "conf" / "tools" / "pixel_tools.yaml"
RED = (255, 0, 0)
DEGENERATE_ERROR = "zoom_in: bbox_2d must be [x1, y1, x2, y2] with x1 < x2 and y1 < y2; got [5, 5, 5, 9]"


@pytest.fixture(scope="module")
def zoom_in() -> ZoomInTool:
    tools = initialize_tools_from_config(str(TOOLS_YAML))
    return next(t for t in tools if t.name == "zoom_in")


def _source() -> Image.Image:
    """1792 px white canvas with one 4x4 red square at (800, 400): a single blurred pixel at 448 px."""
    image = Image.new("RGB", (1792, 1792), (255, 255, 255))
    image.paste(RED, (800, 400, 804, 404))
    return image


def _agent_data(images: list[Image.Image] | None, tools_kwargs: dict | None = None) -> AgentData:
    return AgentData(
        messages=[],
        image_data=images,
        video_data=None,
        audio_data=None,
        mm_processor_kwargs=None,
        metrics={},
        request_id="test-request",
        tools_kwargs=tools_kwargs or {},
    )


def _with_source(source: Image.Image, shown_side: int = 448) -> AgentData:
    buffer = io.BytesIO()
    source.save(buffer, format="PNG")
    shown = source.resize((shown_side, shown_side), Image.Resampling.BICUBIC)
    return _agent_data([shown], {"pixelis": {"source_images": [{"bytes": buffer.getvalue()}]}})


def _execute(tool: ZoomInTool, params, agent_data: AgentData):
    return asyncio.run(tool.execute("instance", params, agent_data=agent_data))


def _has_pure_red(image: Image.Image) -> bool:
    pixels = np.asarray(image).astype(int)
    return bool((np.abs(pixels - RED).sum(axis=-1) < 30).any())


def test_yaml_loads_zoom_in_through_verl_tool_registry(zoom_in):
    assert isinstance(zoom_in, ZoomInTool)
    assert zoom_in.settings.coord_frame == "absolute_resized"
    assert zoom_in.settings.invalid_call_penalty == -0.05


def test_rendered_schema_spells_out_the_box_constraints(zoom_in):
    schema = zoom_in.tool_schema.model_dump(exclude_unset=True, exclude_none=True)  # as ToolAgentLoop renders it
    params = schema["function"]["parameters"]
    bbox = params["properties"]["bbox_2d"]["description"]
    assert "[x1, y1, x2, y2]" in bbox and "4 numbers" in bbox and "x1 < x2 and y1 < y2" in bbox
    assert COORD_FRAMES[zoom_in.settings.coord_frame].help in bbox
    assert "0 = the question image" in params["properties"]["image_index"]["description"]
    assert params["required"] == ["bbox_2d"]


@pytest.mark.parametrize("frame", sorted(COORD_FRAMES))
def test_default_schema_describes_the_configured_coord_frame(frame):
    tool = ZoomInTool(config={"type": "native", "coord_frame": frame}, tool_schema=None)
    description = tool.tool_schema.function.parameters.properties["bbox_2d"].description
    assert tool.name == "zoom_in" and COORD_FRAMES[frame].help in description


def test_unknown_config_key_fails_at_startup():
    with pytest.raises(ValueError, match="coord_fram"):
        ZoomInTool(config={"type": "native", "coord_fram": "relative_1000"}, tool_schema=None)


def test_zoom_crops_from_full_resolution_source(zoom_in):
    agent_data = _with_source(_source())
    response, reward, _ = _execute(zoom_in, {"bbox_2d": [190, 90, 215, 110]}, agent_data)
    assert reward == 0.0
    assert response.text == "Zoomed into [760, 360, 860, 440] (source pixels) of image 0; crop is 252x224."
    assert isinstance(response.image, list) and len(response.image) == 1
    assert _has_pure_red(response.image[0])


@pytest.mark.parametrize("image_index", [0, 0.0, "0", None])
def test_image_index_accepts_integer_forms_and_null_as_default(zoom_in, image_index):
    params = {"bbox_2d": [1, 2, 30, 40], "image_index": image_index}
    response, reward, _ = _execute(zoom_in, params, _with_source(_source()))
    assert reward == 0.0 and " of image 0; " in response.text


def test_zoom_without_source_crops_the_shown_image(zoom_in):
    shown = _source().resize((448, 448), Image.Resampling.BICUBIC)
    response, _, _ = _execute(zoom_in, {"bbox_2d": [190, 90, 215, 110]}, _agent_data([shown]))
    assert response.text.startswith("Zoomed into [190, 90, 215, 110] (source pixels) of image 0")
    assert not _has_pure_red(response.image[0])  # the 4 px square was blurred away in the shown image


@pytest.mark.parametrize("entry_kind", ["path_dict", "path_str", "parquet_unified"])
def test_zoom_reads_the_source_from_a_path(tmp_path, entry_kind):
    zoom_in = ZoomInTool(config={"type": "native", "data_root": str(tmp_path)}, tool_schema=None)
    path = tmp_path / "source.png"
    _source().save(path)
    entry = {
        "path_dict": {"path": str(path)},
        "path_str": "source.png",  # relative to the data root
        "parquet_unified": {"bytes": None, "path": str(path)},
    }
    shown = _source().resize((448, 448))
    agent_data = _agent_data([shown], {"pixelis": {"source_images": [entry[entry_kind]]}})
    response, _, _ = _execute(zoom_in, {"bbox_2d": [190, 90, 215, 110]}, agent_data)
    assert response.text.startswith("Zoomed into [760, 360, 860, 440] (source pixels)")
    assert _has_pure_red(response.image[0])


@pytest.mark.parametrize(
    "frame, box",
    [
        ("absolute_resized", [100, 50, 200, 100]),
        ("relative_1000", [200, 100, 400, 200]),
        ("absolute_source", [200, 100, 400, 200]),
    ],
)
def test_every_coord_frame_zooms_into_the_same_source_pixels(tmp_path, frame, box):
    tool = ZoomInTool(config={"type": "native", "coord_frame": frame, "data_root": str(tmp_path)}, tool_schema=None)
    source = Image.new("RGB", (1000, 1000), (255, 255, 255))
    source.save(tmp_path / "source.png")
    tools_kwargs = {"pixelis": {"source_images": [str(tmp_path / "source.png")]}}
    agent_data = _agent_data([source.resize((500, 500))], tools_kwargs)
    _execute(tool, {"bbox_2d": box}, agent_data)
    assert agent_data.extra_fields[STEPS_KEY][-1]["box_source"] == [200, 100, 400, 200]


def test_zoom_into_a_returned_crop_uses_that_crops_pixels(zoom_in):
    agent_data = _with_source(_source())
    response, _, _ = _execute(zoom_in, {"bbox_2d": [190, 90, 215, 110]}, agent_data)
    agent_data.image_data.extend(response.image)  # what ToolAgentLoop does after the call
    half_w, half_h = response.image[0].width // 2, response.image[0].height // 2
    second, reward, _ = _execute(zoom_in, {"bbox_2d": [0, 0, half_w, half_h], "image_index": 1}, agent_data)
    assert reward == 0.0
    assert second.text.startswith(f"Zoomed into [0, 0, {half_w}, {half_h}] (source pixels) of image 1")


@pytest.mark.parametrize(
    "params, message",
    [
        ({}, "zoom_in: bbox_2d is required"),
        ({"bbox_2d": [5, 5, 5, 9]}, DEGENERATE_ERROR),
        ({"bbox_2d": "[1, 2, 3]"}, "zoom_in: bbox_2d must be a list of 4 numbers"),
        ({"bbox_2d": [0, 0, "wide", 4]}, "zoom_in: bbox_2d must be a list of 4 numbers"),
        ({"bbox_2d": [0, 0, math.nan, 4]}, "zoom_in: bbox_2d must contain finite numbers"),
        ({"bbox_2d": [500, 500, 600, 600]}, "zoom_in: bbox_2d [500, 500, 600, 600] lies outside image 0"),
        ({"bbox_2d": [1, 2, 3, 4], "image_index": 3}, "zoom_in: image_index must be an integer from 0 to 0"),
        ({"bbox_2d": [1, 2, 3, 4], "image_index": True}, "zoom_in: image_index must be an integer"),
        ({"bbox_2d": [1, 2, 3, 4], "image_index": -1}, "zoom_in: image_index must be an integer"),
        ([1, 2, 3, 4], "zoom_in: arguments must be a JSON object"),
    ],
)
def test_bad_arguments_get_a_readable_error_and_the_penalty(zoom_in, params, message):
    agent_data = _with_source(_source())
    response, reward, _ = _execute(zoom_in, params, agent_data)
    assert response.text.startswith(message) and response.image is None
    assert reward == -0.05
    step = agent_data.extra_fields[STEPS_KEY][-1]
    assert step["ok"] is False and step["error"] == response.text and step["error_kind"] == "argument"


def test_conversation_without_images_gets_a_readable_error(zoom_in):
    response, reward, _ = _execute(zoom_in, {"bbox_2d": [1, 2, 3, 4]}, _agent_data(None))
    assert response.text == "zoom_in: there is no image to look at in this conversation" and reward == -0.05


def test_invalid_call_penalty_is_configurable():
    tool = ZoomInTool(config={"type": "native", "invalid_call_penalty": -0.5}, tool_schema=None)
    _, reward, _ = _execute(tool, {"bbox_2d": [5, 5, 5, 9]}, _with_source(_source()))
    assert reward == -0.5


def test_internal_errors_are_logged_and_answered_without_raising(zoom_in, monkeypatch, caplog):
    def broken_zoom(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("pixelis_verl.tools.zoom.zoom", broken_zoom)
    agent_data = _with_source(_source())
    with caplog.at_level(logging.ERROR, logger="pixelis_verl.tools.base"):
        response, reward, _ = _execute(zoom_in, {"bbox_2d": [1, 2, 30, 40]}, agent_data)
    assert response.text == "zoom_in: internal error (RuntimeError); the call was not executed"
    assert reward == -0.05
    assert agent_data.extra_fields[STEPS_KEY][-1]["error_kind"] == "internal"
    assert any(record.exc_info and "simulated bug" in str(record.exc_info[1]) for record in caplog.records)


def test_every_call_appends_a_step_record(zoom_in):
    agent_data = _with_source(_source())
    _execute(zoom_in, {"bbox_2d": [190, 90, 215, 110], "label": "red dot"}, agent_data)
    _execute(zoom_in, {"bbox_2d": [5, 5, 5, 9]}, agent_data)
    ok, bad = agent_data.extra_fields[STEPS_KEY]
    assert ok["tool"] == "zoom_in" and ok["args"] == {"bbox_2d": [190, 90, 215, 110], "label": "red dot"}
    assert ok["ok"] is True and ok["error"] is None and ok["reward"] == 0.0
    assert ok["image_index"] == 0 and ok["box_source"] == [760, 360, 860, 440]
    assert len(ok["observation"]) == OBSERVATION_DIM and all(0.0 <= v <= 1.0 for v in ok["observation"])
    assert ok["latency_ms"] >= 0.0
    assert bad["ok"] is False and bad["observation"] is None and bad["box_source"] is None
    assert set(ok) == set(bad)


def test_observation_feature_is_deterministic_and_tells_images_apart():
    source = _source()
    assert observation_feature(source) == observation_feature(source.copy())
    assert observation_feature(source) != observation_feature(Image.new("RGB", (64, 64), RED))


def _tool_agent_loop(tools: list) -> ToolAgentLoop:
    """A ToolAgentLoop with only what _call_tool reads, as in verl's test_call_tool_on_cpu.py."""
    loop = MagicMock(spec=ToolAgentLoop)
    loop.tools = {tool.name: tool for tool in tools}
    loop.max_tool_response_length = 256  # verl's default multi_turn.max_tool_response_length
    loop.tool_response_truncate_side = "middle"
    loop._call_tool = ToolAgentLoop._call_tool.__get__(loop, ToolAgentLoop)
    return loop


def test_zoom_in_through_tool_agent_loop_call_tool(zoom_in):
    loop = _tool_agent_loop([zoom_in])
    agent_data = _with_source(_source())
    good = FunctionCall(name="zoom_in", arguments='{"bbox_2d": [190, 90, 215, 110]}')
    response, reward, _ = asyncio.run(loop._call_tool(good, agent_data.tools_kwargs, agent_data))
    assert reward == 0.0 and len(response.image) == 1 and _has_pure_red(response.image[0])

    bad = FunctionCall(name="zoom_in", arguments='{"bbox_2d": [5, 5, 5, 9], "image_index": 0}')
    response, reward, _ = asyncio.run(loop._call_tool(bad, agent_data.tools_kwargs, agent_data))
    assert reward == -0.05 and response.image is None
    assert response.text == DEGENERATE_ERROR
    assert [step["ok"] for step in agent_data.extra_fields[STEPS_KEY]] == [True, False]
