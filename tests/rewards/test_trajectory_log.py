"""Trajectory records: every k-th trajectory, media stored once by content, torn lines skipped on read."""

import json

import pytest

from pixelis_verl.rewards.trajectory_log import TrajectoryLog, read_trajectories
from pixelis_verl.trajectory.parse import build_trajectory

RESPONSE = (
    'Look closer.<tool_call>{"name": "zoom_in", "arguments": {"bbox_2d": [0, 0, 10, 10]}}</tool_call><|im_end|>\n'
    "<|im_start|>user\n<tool_response>a crop</tool_response><|im_end|>\n<|im_start|>assistant\n<answer>red</answer>"
)


def _trajectory(png: bytes, index: int):
    extra = {
        "index": index, "question": "What colour?", "answer_metric": "exact", "pixelis_seconds": 1.5,
        "tools_kwargs": {"pixelis": {"source_images": [{"bytes": png}], "video": None}},
        "pixelis_steps": [{"tool": "zoom_in", "args": {"bbox_2d": [0, 0, 10, 10]}, "ok": True, "error": None,
                           "box_source": [0, 0, 20, 20], "observation": [0.1] * 16}],
    }  # fmt: skip
    return build_trajectory(RESPONSE, "red", extra, response_tokens=42, max_response_tokens=100)


def test_every_kth_trajectory_is_written_with_what_the_viewer_needs(tmp_path):
    log = TrajectoryLog(tmp_path, every=2)
    for i in range(5):
        log.maybe_write(_trajectory(b"\x89PNG-same", i), {"acc": 1.0, "pred": "red", "score": 1.2}, "demo/tools")
    records = read_trajectories(tmp_path)
    assert [r["item"]["index"] for r in records] == [0, 2, 4]
    record = records[0]
    assert record["data_source"] == "demo/tools" and record["pred"] == "red" and record["ground_truth"] == "red"
    assert record["info"] == {"acc": 1.0, "score": 1.2}  # numbers only
    assert record["turns"][0]["calls"][0]["name"] == "zoom_in" and record["steps"][0]["box_source"] == [0, 0, 20, 20]
    assert "observation" not in record["steps"][0] and "tools_kwargs" not in record["item"]
    assert record["seconds"] == 1.5 and record["response_tokens"] == 42
    stored = record["media"]["source_images"][0]["stored"]
    assert (tmp_path / stored).read_bytes() == b"\x89PNG-same"
    assert len(list((tmp_path / "media").iterdir())) == 1  # the same bytes are stored once


def test_a_torn_last_line_is_skipped(tmp_path):
    TrajectoryLog(tmp_path, every=1).maybe_write(_trajectory(b"img", 0), {"acc": 0.0}, "demo")
    path = next(tmp_path.glob("*.jsonl"))
    path.write_text(path.read_text() + json.dumps({"item": {}})[:5])
    assert len(read_trajectories(tmp_path)) == 1


def test_every_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="pixelis.trajectories.every"):
        TrajectoryLog(tmp_path, every=0)
