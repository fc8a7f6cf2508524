"""Converters: each public format becomes valid traces; bad records are dropped with counted reasons."""

import io
import json
from pathlib import Path

import pandas as pd
from PIL import Image

from pixelis_verl.data.__main__ import main as data_cli
from pixelis_verl.data.convert import DROPPED_FILE, convert_source
from pixelis_verl.data.cota import TraceSet, validate_trace
from pixelis_verl.data.replay import replay_mismatches
from pixelis_verl.data.synth.moving_object import generate_moving_object_video
from pixelis_verl.data.synth.tasks import sign_task
from pixelis_verl.tools.session import load_tools, tool_schemas
from tests.data.cota_sets import TOOLS_YAML, VIEW


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _convert(name: str, source: Path, out: Path, **kwargs):
    traces = TraceSet(out)
    tools = load_tools(TOOLS_YAML, out)
    report = convert_source(name, source, traces, {"view": VIEW, "tools": tools, **kwargs}, progress=False)
    schemas = tool_schemas(tools)
    converted = list(traces.traces())
    for trace in converted:
        assert validate_trace(trace, traces.root, schemas) == [] and replay_mismatches(trace, traces.root, tools) == []
    return report, converted, traces


def _deepeyes_row(question: str, answer, images, source="vstar") -> dict:
    user = (
        f"<image>\n{question}\nThink first, call **image_zoom_in_tool** if needed, then answer. Format strictly as: ..."
    )
    return {
        "data_source": source,
        "prompt": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": user}],
        "images": images,
        "ability": "vqa",
        "env_name": "visual_toolbox_v2",
        "reward_model": {"ground_truth": answer, "style": "model"},
        "extra_info": {"question": None, "index": 0},
    }


def test_deepeyes_rows_become_rl_questions_and_bad_rows_are_counted(tmp_path):
    image = [{"bytes": _png(sign_task(0, 0).image), "path": None}]
    rows = [
        _deepeyes_row("Is the sign on the left or the right?", "The sign is on the left.", image),
        _deepeyes_row("What is 3 + 4?", "7", image, source="thinklite_eureka"),
        _deepeyes_row("No answer here?", None, image),
        _deepeyes_row("Broken image?", "yes", [{"bytes": b"not a png", "path": None}]),
        _deepeyes_row("No image?", "yes", []),
    ]
    pd.DataFrame(rows).to_parquet(tmp_path / "data_0.1.2_visual_toolbox_v2.parquet")
    report, traces, out = _convert("deepeyes", tmp_path / "data_0.1.2_visual_toolbox_v2.parquet", tmp_path / "out")
    assert report.kept == 2 and dict(report.dropped) == {
        "no ground truth": 1,
        "unreadable image (UnidentifiedImageError)": 1,
        "no image": 1,
    }
    assert [t.question for t in traces] == ["Is the sign on the left or the right?", "What is 3 + 4?"]
    assert [t.answer_metric for t in traces] == ["anls", "exact"] and not traces[0].steps
    dropped = [json.loads(line) for line in (out.root / DROPPED_FILE).read_text().splitlines()]
    assert [d["source_id"] for d in dropped] == [f"data_0.1.2_visual_toolbox_v2-{i}" for i in (2, 3, 4)]


def _pixel_reasoner_records(root: Path) -> list:
    task = sign_task(0, 1)
    (root / "images").mkdir()
    task.image.save(root / "images" / "1-0.jpg")
    w, h = task.image.size
    box = [round(v / s, 3) for v, s in zip(task.target_box, (w, h, w, h), strict=True)]
    call = json.dumps({"name": "crop_image", "arguments": {"bbox_2d": box, "target_image": 1}})
    question = "What does the small sign say?\n\nGuidelines: Understand the given visual information ..."

    def record(qid, user_media, calls, final):
        turns = [{"role": "system", "content": [{"text": "tools ..."}]},
                 {"role": "user", "content": [{"text": question}, user_media]}]  # fmt: skip
        shown = {"role": "user", "content": [{"text": "Here is the cropped image"}, {"image": "images/x.jpg"}]}
        for text in calls:
            turns += [{"role": "assistant", "content": [{"text": text}]}, shown]
        turns.append({"role": "assistant", "content": [{"text": final}]})
        return {"qid": qid, "message_list": turns}

    video = generate_moving_object_video(0, 1, size=(160, 120), num_frames=16)
    (root / "videos" / "7").mkdir(parents=True)
    frames = []
    for i, frame in enumerate(video.frames):
        Image.fromarray(frame).save(root / "videos" / "7" / f"{i}.png")
        frames.append(f"videos/7/{i}.png")
    look = json.dumps({"name": "select_frames", "arguments": {"target_frames": [5, 7, 9, 11]}})
    rotate = json.dumps({"name": "rotate", "arguments": {}})
    return [
        record("1", {"image": "images/1-0.jpg"}, [f"Now I will zoom in to look clearer. <tool_call>{call}</tool_call>"],
               f"The sign reads it. \\boxed{{{task.answer}}}"),
        record("7", {"video": frames}, [f"Let me look at the middle. <tool_call>{look}</tool_call>"], "\\boxed{B}"),
        record("2", {"image": "images/1-0.jpg"}, [], "I cannot tell."),
        record("3", {"image": "images/1-0.jpg"}, [f"<tool_call>{rotate}</tool_call>"], "\\boxed{A}"),
        record("4", {"image": "images/1-0.jpg"}, ["<tool_call>{not json</tool_call>"], "\\boxed{A}"),
        "not a record",
    ]  # fmt: skip


def test_pixel_reasoner_calls_are_rerun_with_our_tools(tmp_path):
    source = tmp_path / "pr"
    source.mkdir()
    (source / "release.json").write_text(json.dumps(_pixel_reasoner_records(source)))
    report, traces, _ = _convert("pixel_reasoner", source / "release.json", tmp_path / "out")
    assert report.kept == 2
    assert dict(report.dropped) == {
        "no \\boxed answer": 1, "unknown operation rotate": 1, "malformed tool call": 1, "no message_list": 1,
    }  # fmt: skip
    image, video = traces
    assert image.question == "What does the small sign say?" and image.answer == sign_task(0, 1).answer
    assert [s.tool for s in image.steps] == ["zoom_in"] and image.steps[
        0
    ].thought == "Now I will zoom in to look clearer."
    assert image.steps[0].observation.text.startswith("Zoomed into") and image.steps[0].observation.images
    assert video.video is not None and [s.tool for s in video.steps] == ["select_frames"]
    assert video.steps[0].arguments == {"start_frame": 4, "end_frame": 10, "num_frames": 4}


def test_vqa_jsonl_with_options_and_bad_lines(tmp_path):
    sign_task(0, 2).image.save(tmp_path / "a.png")
    lines = [
        json.dumps(
            {"id": "q1", "image": "a.png", "question": "What colour?", "answer": "A", "options": ["red", "blue"]}
        ),
        "{broken",
        json.dumps({"id": "q3", "image": "a.png", "question": "Where?"}),
        json.dumps({"id": "q4", "image": "missing.png", "question": "Where?", "answer": "left"}),
        json.dumps({"id": "q5", "image": "../a.png", "question": "Where?", "answer": "left"}),
    ]
    (tmp_path / "vqa.jsonl").write_text("\n".join(lines) + "\n")
    report, traces, _ = _convert("vqa_jsonl", tmp_path / "vqa.jsonl", tmp_path / "out")
    assert report.kept == 1 and dict(report.dropped) == {
        "not a JSON object": 1, "no answer": 1, "missing media file": 1, "media path outside the media root": 1,
    }  # fmt: skip
    assert traces[0].question == "What colour?\nA. red\nB. blue" and traces[0].options == ["red", "blue"]


def test_cli_synthesises_validates_fuses_and_reports(tmp_path, capsys):
    model = ["--model", "tiny:qwen2_5_vl", "--max-pixels", "50176"]  # tiny_qwen2_5_vl's shown_max_pixels
    assert data_cli(["synth", "--out", str(tmp_path / "a"), "--num", "6", "--seed", "1", *model]) == 0
    assert (
        data_cli(["synth", "--out", str(tmp_path / "b"), "--num", "4", "--seed", "2", "--kinds", "text", *model]) == 0
    )
    assert data_cli(["validate", str(tmp_path / "a"), "--execute"]) == 0
    assert "validate: 6 valid, 0 problem(s)" in capsys.readouterr().out
    fuse = ["fuse", "--source", f"{tmp_path / 'a'}:3", "--source", f"{tmp_path / 'b'}:1", "--out", str(tmp_path / "f")]
    assert data_cli([*fuse, "--val-fraction", "0.3", "--rl-fraction", "0.4"]) == 0
    assert "fuse: train" in capsys.readouterr().out
    sft = [pd.read_parquet(tmp_path / "f" / f"sft_{s}.parquet") for s in ("train", "val")]
    rl = [pd.read_parquet(tmp_path / "f" / f"rl_{s}.parquet") for s in ("train", "val")]
    assert len(sft[0]) + len(rl[0]) + len(sft[1]) == 8 and len(rl[1]) == len(sft[1])  # 6 + 6/3 by weight
    assert not set(sft[0]["id"]) & set(sft[1]["id"])
    rl_ids = {r["trace_id"] for r in rl[0]["extra_info"]}
    assert not rl_ids & set(sft[0]["id"])  # RL prompts are other questions than the SFT traces
    assert data_cli(["stats", str(tmp_path / "a")]) == 0
    assert json.loads(capsys.readouterr().out)["traces"] == 6
    (tmp_path / "a" / "traces.jsonl").write_text('{"id": "x"}\n')
    assert data_cli(["validate", str(tmp_path / "a")]) == 1
    assert "missing field 'view'" in capsys.readouterr().err
