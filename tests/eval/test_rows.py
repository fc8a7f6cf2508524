"""Benchmark rows: both arms share everything but the tools; bad data fails before anything runs."""

import json

import pytest
from PIL import Image

from pixelis_verl.config import RecipeError, compose_recipe, resolve
from pixelis_verl.data.rl_rows import SYSTEM_PROMPT, TOOL_FREE_SYSTEM_PROMPT
from pixelis_verl.evaluate import benchmark_rows, load_items


def _cfg(data_path, *overrides):
    return resolve(compose_recipe("eval_jsonl", ["model.path=/m", f"data.path={data_path}", *overrides]))


def _benchmark(root):
    root.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), "red").save(root / "a.png")
    records = [
        {"id": "q1", "question": "What colour?", "answer": "red", "image": "a.png", "category": "colour"},
        {"id": "q2", "question": "Which colour?", "answer": "A", "metric": "choice",
         "options": ["red", "blue", "green"], "image": "a.png"},
    ]  # fmt: skip
    (root / "benchmark.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def test_both_arms_share_question_images_and_answer_but_not_tools(tmp_path):
    cfg = _cfg(_benchmark(tmp_path / "bench"), "eval.protocol.options=published")
    rows = benchmark_rows(cfg, load_items(cfg))
    assert [(r["extra_info"]["id"], r["extra_info"]["arm"]) for r in rows] == [
        ("q1", "tools"), ("q2", "tools"), ("q1", "no_tools"), ("q2", "no_tools")
    ]  # fmt: skip
    for tools, control in ((rows[0], rows[2]), (rows[1], rows[3])):
        assert tools["prompt"][1] == control["prompt"][1] and tools["images"] == control["images"]
        assert tools["reward_model"] == control["reward_model"]
        assert (
            tools["prompt"][0]["content"] == SYSTEM_PROMPT
            and control["prompt"][0]["content"] == TOOL_FREE_SYSTEM_PROMPT
        )
        assert tools["extra_info"]["tool_selection"] is None and control["extra_info"]["tool_selection"] == []
        assert (tools["data_source"], control["data_source"]) == ("jsonl/tools", "jsonl/no_tools")
    assert "(A) red\n(B) blue\n(C) green\nAnswer with the option's letter." in rows[1]["prompt"][1]["content"]
    # the tools read the file inside their data root (the benchmark folder); the model sees its bytes unchanged
    assert rows[0]["extra_info"]["tools_kwargs"]["pixelis"]["source_images"] == [{"path": "a.png"}]
    assert rows[0]["images"][0]["bytes"] == (tmp_path / "bench" / "a.png").read_bytes()


def test_circular_protocol_writes_one_row_per_rotation_and_limit_cuts_questions(tmp_path):
    cfg = _cfg(_benchmark(tmp_path / "bench"), "eval.protocol.options=circular", "eval.control=false")
    rows = benchmark_rows(cfg, load_items(cfg))
    assert len(rows) == 1 + 3
    assert [r["reward_model"]["ground_truth"] for r in rows[1:]] == ["A", "C", "B"]  # where "red" sits
    cfg = _cfg(tmp_path / "bench", "eval.protocol.limit=1")
    assert [i.id for i in load_items(cfg)] == ["q1"]


def test_a_frame_folder_video_shows_frames_inside_its_window_and_the_tools_read_it_at_its_rate(tmp_path):
    clip = tmp_path / "video/tvqa/frames_fps3_hq/clip_00"
    clip.mkdir(parents=True)
    for n in range(30):  # 10 s at 3 fps
        Image.new("RGB", (32, 24), (8 * n, 0, 0)).save(clip / f"{n + 1:05d}.jpg")
    record = {"video": "clip_00", "question": "What happened?", "candidates": ["a", "b"], "answer": "b",
              "start": 2.0, "end": 5.0}  # fmt: skip
    (tmp_path / "json").mkdir()
    (tmp_path / "json/episodic_reasoning.json").write_text(json.dumps([record]))
    cfg = resolve(compose_recipe("eval_mvbench", ["model.path=/m", f"data.path={tmp_path}", "eval.control=false"]))
    (row,) = [r for r in benchmark_rows(cfg, load_items(cfg)) if r["extra_info"]["rotation"] == 0]
    video = row["extra_info"]["tools_kwargs"]["pixelis"]["video"]
    assert (video["path"], video["fps"]) == ("video/tvqa/frames_fps3_hq/clip_00", 3.0)
    assert video["question_frames"][0] == 6 and video["question_frames"][-1] == 15  # 2 s and 5 s at 3 fps


def test_missing_or_malformed_benchmark_fails_naming_the_path(tmp_path):
    with pytest.raises(RecipeError, match="data.path: .* is not a folder"):
        load_items(_cfg(tmp_path / "nowhere"))
    root = _benchmark(tmp_path / "bench")
    (root / "benchmark.jsonl").write_text('{"id": "q1", "question": "?"}\n')
    with pytest.raises(RecipeError, match=r"benchmark.jsonl: line 1: missing key\(s\) \['answer'\]"):
        load_items(_cfg(root))
