"""The six pixel tools through verl's own path: YAML -> initialize_tools_from_config -> create -> execute -> release."""

import asyncio
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from verl.experimental.agent_loop.tool_agent_loop import AgentData
from verl.tools.tool_registry import initialize_tools_from_config

from pixelis_verl.data.rl_rows import png_bytes as _png
from pixelis_verl.data.synth.moving_object import generate_moving_object_video, write_video
from pixelis_verl.data.synth.scenes import generate_scene
from pixelis_verl.data.synth.tasks import sign_task
from pixelis_verl.tools.coords import COORD_FRAMES
from pixelis_verl.tools.state import STORE
from pixelis_verl.trajectory.steps import STEPS_KEY

CONF = Path(__file__).resolve().parents[2] / "conf" / "tools"
TOOL_NAMES = {"zoom_in", "segment_object_at", "get_properties", "read_text", "track_object", "select_frames"}
VIDEO_SIZE, SHOWN_FRAME = (320, 240), (224, 168)


@pytest.fixture(scope="module")
def media_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def tools(media_root) -> dict:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIXELIS_DATA_ROOT", str(media_root))  # the YAML's data_root reads it at load time
        return {tool.name: tool for tool in initialize_tools_from_config(str(CONF / "pixel_tools.yaml"))}


@pytest.fixture(scope="module")
def video(media_root):
    clip = generate_moving_object_video(0, 0, size=VIDEO_SIZE, num_frames=30, fps=10.0)
    (media_root / "videos").mkdir()
    write_video(clip.frames, media_root / "videos" / "clip.mp4", clip.fps)
    return clip


def _agent_data(images: list[Image.Image] | None, tools_kwargs: dict | None = None, request_id: str = "r") -> AgentData:
    # messages, image_data, video_data, audio_data, mm_processor_kwargs, metrics, request_id, tools_kwargs
    return AgentData([], images, None, None, None, {}, request_id, tools_kwargs or {})


def _video_row(video, request_id: str = "video-row", path: str = "videos/clip.mp4") -> AgentData:
    shown = Image.fromarray(video.frames[0]).resize(SHOWN_FRAME, Image.Resampling.BICUBIC)
    tools_kwargs = {"pixelis": {"video": {"path": path, "question_frames": [0]}}}
    return _agent_data([shown], tools_kwargs, request_id)


def _call(tool, params, agent_data: AgentData):
    """One call as ToolAgentLoop makes it: create, execute, release; returned images join the conversation."""

    async def call():
        instance_id, _ = await tool.create(create_kwargs={})
        try:
            return await tool.execute(instance_id, params, agent_data=agent_data)
        finally:
            await tool.release(instance_id)

    response, reward, metrics = asyncio.run(call())
    if response.image:
        agent_data.image_data.extend(response.image)
    return response, reward, agent_data.extra_fields[STEPS_KEY][-1]


def _shown_box(box, scale: float) -> list[float]:
    return [v * scale for v in box]


@pytest.mark.parametrize(
    "yaml, frame", [("pixel_tools.yaml", "absolute_resized"), ("pixel_tools_qwen3_vl.yaml", "relative_1000")]
)
def test_yaml_registers_all_six_tools_with_schemas_in_the_models_frame(yaml, frame):
    tools = initialize_tools_from_config(str(CONF / yaml))
    assert {tool.name for tool in tools} == TOOL_NAMES
    for tool in tools:
        assert tool.settings.coord_frame == frame
        schema = tool.tool_schema.model_dump(exclude_unset=True, exclude_none=True)  # as ToolAgentLoop renders it
        properties = schema["function"]["parameters"]["properties"]
        assert schema["function"]["description"] and all(p["description"] for p in properties.values())
        for name in ("bbox_2d", "point_2d"):
            if name in properties:
                assert COORD_FRAMES[frame].help in properties[name]["description"]


def test_segment_then_measure_an_object_by_mask_id_and_by_box(tools):
    scene = generate_scene(0, 1)
    target = scene.objects[0]
    agent_data = _agent_data(
        [scene.image.resize((320, 240))], {"pixelis": {"source_images": [{"bytes": _png(scene.image)}]}}
    )
    x, y = target.centroid
    response, reward, step = _call(tools["segment_object_at"], {"point_2d": [x / 2, y / 2]}, agent_data)
    assert reward == 0.0 and step["ok"] and response.text.startswith("mask_id m1: ")
    assert len(response.image) == 1 and step["observation"] is not None and step["input_observation"] is not None
    x1, y1, x2, y2 = step["region"]  # the action's "where", as fractions of the image
    assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1 and x1 <= x / scene.image.width <= x2
    response, reward, step = _call(tools["get_properties"], {"mask_id": "m1"}, agent_data)
    assert reward == 0.0 and f"colour {target.colour} " in response.text and step["observation"] is None
    response, _, _ = _call(tools["get_properties"], {"bbox_2d": _shown_box(target.box, 0.5)}, agent_data)
    assert f"colour {target.colour} " in response.text


def test_read_text_reads_a_small_sign_at_full_resolution(tools):
    task = sign_task(0, 3)
    agent_data = _agent_data(
        [task.image.resize((448, 448))], {"pixelis": {"source_images": [{"bytes": _png(task.image)}]}}
    )
    x1, y1, x2, y2 = task.target_box
    response, reward, step = _call(
        tools["read_text"], {"bbox_2d": [x1 / 2 - 4, y1 / 2 - 4, x2 / 2 + 4, y2 / 2 + 4]}, agent_data
    )
    assert reward == 0.0 and step["ok"]
    assert f'1. "{task.answer}' in response.text  # the sign's outline may be read as a bracket after it


def test_select_frames_returns_frames_with_timestamps_that_later_calls_know(tools, video):
    agent_data = _video_row(video)
    response, reward, step = _call(tools["select_frames"], {"start_s": 0, "end_s": 2.95, "num_frames": 4}, agent_data)
    assert reward == 0.0 and len(response.image) == 4
    assert "frame 0 (0.00 s)" in response.text and "frame 29 (2.90 s)" in response.text
    assert step["span"] == [0.0, 1.0] and step["input_observation"] is None  # the action's "when": all the video
    frames = [tools["select_frames"].frame_of(agent_data, i) for i in range(5)]
    assert frames == [0, 0, 10, 19, 29]


def test_track_object_follows_the_moving_object_from_a_box_on_the_question_frame(tools, video):
    agent_data = _video_row(video)
    scale = SHOWN_FRAME[0] / VIDEO_SIZE[0]
    response, reward, step = _call(tools["track_object"], {"bbox_2d": _shown_box(video.boxes[0], scale)}, agent_data)
    assert reward == 0.0 and step["ok"], response.text
    assert response.text.startswith("Tracked frames 0..29: ") and f" {video.direction}" in response.text
    assert len(response.image) == 3


def test_track_object_from_a_mask_made_on_a_returned_frame(tools, video):
    agent_data = _video_row(video)
    _call(tools["select_frames"], {"start_frame": 10, "end_frame": 10, "num_frames": 1}, agent_data)
    frame_image = agent_data.image_data[1]
    x1, y1, x2, y2 = video.boxes[10]
    sx, sy = frame_image.width / VIDEO_SIZE[0], frame_image.height / VIDEO_SIZE[1]
    point = [(x1 + x2) / 2 * sx, (y1 + y2) / 2 * sy]
    response, _, step = _call(tools["segment_object_at"], {"point_2d": point, "image_index": 1}, agent_data)
    assert step["ok"], response.text
    response, reward, step = _call(tools["track_object"], {"mask_id": "m1", "end_frame": 20}, agent_data)
    assert reward == 0.0 and response.text.startswith("Tracked frames 10..20: ")


@pytest.mark.parametrize("tool", ["select_frames", "track_object"])
def test_video_tools_on_an_image_row_get_a_readable_modality_error(tools, tool):
    agent_data = _agent_data([Image.new("RGB", (64, 64))])
    response, reward, step = _call(tools[tool], {"bbox_2d": [1, 1, 9, 9]}, agent_data)
    assert reward == -0.05 and step["error_kind"] == "modality"
    assert response.text == f"{tool}: this conversation has no video; the tool works on videos only"


def test_unknown_mask_ids_name_the_known_ones(tools):
    agent_data = _agent_data([Image.new("RGB", (64, 64))], request_id="no-masks")
    response, reward, _ = _call(tools["get_properties"], {"mask_id": "m7"}, agent_data)
    assert (
        response.text == 'get_properties: unknown mask_id "m7"; known mask ids: none yet; call segment_object_at first'
    )


def test_media_outside_the_data_root_is_explained_without_a_penalty(tools, video):
    agent_data = _video_row(video, path="/etc/hostname")
    response, reward, step = _call(tools["select_frames"], {}, agent_data)
    assert reward == 0.0 and step["error_kind"] == "media" and "outside the data root" in response.text


def test_release_of_a_trajectory_frees_its_masks(tools):
    scene = generate_scene(0, 2)
    agent_data = _agent_data([scene.image], request_id="to-release")
    _call(tools["segment_object_at"], {"point_2d": list(scene.objects[0].centroid)}, agent_data)
    assert "m1" in STORE.get("to-release").masks
    STORE.release("to-release")
    assert "to-release" not in STORE


# Fuzzing: whatever JSON a model emits, every tool answers and records the step; nothing escapes.
_leaf = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=10)
_json = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
_number = st.floats(-50, 400) | st.integers(-50, 400) | st.integers(-50, 400).map(str) | _leaf
_plausible_box = st.tuples(st.integers(-50, 300), st.integers(1, 200), st.floats(-50, 300), st.floats(0.01, 200)).map(
    lambda t: [t[0], t[2], t[0] + t[1], t[2] + t[3]]
)
_box = (
    _plausible_box
    | _plausible_box.map(json.dumps)
    | _plausible_box.map(lambda box: [str(v) for v in box])
    | st.lists(_number, min_size=0, max_size=6)
    | _json
)
_point = st.lists(_number, min_size=2, max_size=2) | _json
_params = (
    st.fixed_dictionaries(
        {},
        optional={
            "bbox_2d": _box,
            "point_2d": _point,
            "image_index": st.integers(-2, 4) | _leaf,
            "mask_id": st.sampled_from(["m1", "m2", 1, "x"]) | _leaf,
            "start_frame": st.integers(-5, 40) | _leaf,
            "end_frame": st.integers(-5, 40) | _leaf,
            "start_s": st.floats(-1, 5) | _leaf,
            "end_s": st.floats(-1, 5) | _leaf,
            "num_frames": st.integers(-1, 12) | _leaf,
        },
    )
    | _json
)


@pytest.mark.parametrize("name", sorted(TOOL_NAMES))
def test_no_argument_makes_a_tool_raise(tools, video, name):
    scene = generate_scene(0, 3, size=(240, 180), num_objects=(2, 2))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(params=_params, on_video=st.booleans())
    def check(params, on_video):
        agent_data = _video_row(video, request_id="fuzz") if on_video else _agent_data([scene.image], request_id="fuzz")
        if not isinstance(params, dict) or "mask_id" in params:  # sometimes a mask exists to be named
            _call(tools["segment_object_at"], {"point_2d": [50, 50]}, agent_data)
        response, reward, step = _call(tools[name], params, agent_data)
        STORE.release("fuzz")
        assert step["ok"] == (step["error"] is None)
        if not step["ok"]:
            assert step["error_kind"] in ("argument", "modality", "media"), step["error"]
            assert response.text == step["error"] and response.text.startswith(f"{name}: ")
            assert "\n" not in response.text and len(response.text) <= 256

    check()
