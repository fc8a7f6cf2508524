"""CoTA schema validation: each kind of bad trace is rejected with its own code and a message saying where."""

import json
import re
import shutil

import pytest

from pixelis_verl.data.cota import Trace, TraceError, TraceSet, validate_trace
from pixelis_verl.data.replay import replay_mismatches
from pixelis_verl.tools.session import load_tools, tool_schemas
from tests.data.cota_sets import TOOLS_YAML, make_set


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> TraceSet:
    return make_set(tmp_path_factory.mktemp("golden"), "golden", num=5)  # text, colour, shape, sign, size


@pytest.fixture(scope="module")
def tools(golden):
    return load_tools(TOOLS_YAML, golden.root)


def _record(golden: TraceSet, index: int) -> dict:
    return json.loads(golden.path.read_text().splitlines()[index])


def _problems(golden, tools, record) -> list[TraceError]:
    trace = Trace.from_dict(record)
    return validate_trace(trace, golden.root, tool_schemas(tools)) or replay_mismatches(trace, golden.root, tools)


def _zoom_box(record):
    return record["steps"][0]["arguments"]["bbox_2d"]


BREAKAGES = {
    "unknown_tool": (0, lambda r: r["steps"][0].update(tool="magnify"), r"step 1 \(magnify\): no tool named 'magnify'"),
    "bad_arguments": (0, lambda r: r["steps"][0]["arguments"].update(box=[1, 2]), r"unknown argument\(s\) \['box'\]"),
    "outside_image": (0, lambda r: _zoom_box(r).__setitem__(2, 5000), r"bbox_2d \[.*5000.*\] lies outside image 0"),
    "missing_answer": (0, lambda r: r.update(answer="  "), "the answer is empty"),
    "observation_mismatch": (
        0,
        lambda r: r["steps"][0]["observation"].update(text="Zoomed into nothing."),
        "the trace has 'Zoomed into nothing.'",
    ),
    "missing_media": (0, lambda r: r["images"].__setitem__(0, "media/nowhere.png"), "no file media/nowhere.png"),
}


@pytest.mark.parametrize("code", sorted(BREAKAGES))
def test_each_kind_of_bad_trace_is_rejected_with_its_reason(golden, tools, code):
    index, breakage, message = BREAKAGES[code]
    record = _record(golden, index)
    assert _problems(golden, tools, record) == []
    breakage(record)
    problems = _problems(golden, tools, record)
    assert [p.code for p in problems] == [code]
    assert problems[0].args[0].startswith(f"{code}: trace synth-0-00000{index}")
    assert re.search(message, str(problems[0])), str(problems[0])


def test_a_missing_argument_and_a_wrong_type_are_bad_arguments(golden, tools):
    record = _record(golden, 4)  # size: segment_object_at, then get_properties
    record["steps"][0]["arguments"] = {}
    assert "missing required argument(s) ['point_2d']" in str(_problems(golden, tools, record)[0])
    record = _record(golden, 4)
    record["steps"][2]["arguments"]["mask_id"] = 1
    assert "argument mask_id must be of type string; got 1" in str(_problems(golden, tools, record)[0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("question"), "missing 1 required positional argument: 'question'"),
        (lambda r: r.update(kind="lucky"), "kind must be one of"),
        (lambda r: r.update(steps="zoom"), "'steps' must be a list"),
        (lambda r: r.update(colour="red"), r"unknown field\(s\) \['colour'\]"),
        (lambda r: r["steps"][0].pop("observation"), "a step needs an 'observation' object"),
    ],
)
def test_malformed_records_are_schema_errors(golden, change, message):
    record = _record(golden, 0)
    change(record)
    with pytest.raises(TraceError, match=message) as caught:
        Trace.from_dict(record)
    assert caught.value.code == "schema"


def test_a_set_names_the_line_of_a_bad_record(golden, tmp_path):
    copy = TraceSet(tmp_path / "copy")
    shutil.copytree(golden.root, copy.root)
    lines = copy.path.read_text().splitlines()
    broken = json.loads(lines[2])
    del broken["view"]
    copy.path.write_text("\n".join([*lines[:2], json.dumps(broken), *lines[3:]]) + "\n")
    with pytest.raises(TraceError, match=r"traces.jsonl:3: trace synth-0-000002: missing field 'view'"):
        list(copy.traces())
