"""Parsing a decoded response into the assistant's turns, calls and answer, as the reward sees it."""

from pixelis_verl.trajectory.parse import build_trajectory
from tests.rewards.trajectories import response, step, trajectory


def test_answer_and_calls_come_from_assistant_turns_only():
    text = response([("Zoom on the sign.", [{"name": "read_text", "arguments": {}}])], "STOP")
    text = text.replace("done\n</tool_response>", "<answer>GO</answer>\n</tool_response>")  # a sign reading "<answer>"
    t = build_trajectory(text, "STOP", {"pixelis_steps": [step("read_text")]}, response_tokens=9, max_response_tokens=9)
    assert t.pred == "STOP" and [turn.thought for turn in t.turns] == ["Zoom on the sign.", ""]
    assert [call.name for call in t.calls] == ["read_text"] and t.malformed_calls == 0 and t.unexecuted_calls == 0


def test_malformed_truncated_and_unexecuted_calls_are_counted():
    text = (
        '<tool_call>{"name": "zoom_in", "arguments": [1, 2]}</tool_call>'  # arguments not an object
        "<tool_call>{not json}</tool_call>"
        '<tool_call>{"name": "no_such_tool", "arguments": {}}</tool_call>'  # well formed, never executed
        '<tool_call>{"name": "zoom_in", "argu'  # cut by the length limit
    )
    t = build_trajectory(text, "x", {}, response_tokens=50, max_response_tokens=50)
    assert (t.malformed_calls, t.unexecuted_calls, t.truncated_calls, t.pred) == (3, 1, 1, None)


def test_garbage_and_missing_fields_parse_without_raising():
    for text in ["", "<|im_start|>", "<tool_call></tool_call>" * 3, "\x00\ufffd<answer>", None]:
        t = build_trajectory(text, None, {"pixelis_steps": None}, response_tokens=0, max_response_tokens=0)
        assert t.pred is None and t.steps == [] and t.ground_truth is None
    t = build_trajectory(
        "<answer>A</answer>", "A", {"pixelis_steps": ["junk", 3]}, response_tokens=1, max_response_tokens=8
    )
    assert t.steps == [] and t.pred == "A"


def test_each_step_gets_the_thought_of_the_turn_that_called_it():
    t = trajectory([step(), step("segment_object_at", {"point_2d": [3, 4]})], thoughts=["first look", "then cut"])
    assert t.step_thoughts() == ["first look", "then cut"]
