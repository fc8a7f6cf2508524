"""Reports: per-arm accuracy with intervals, the paired tool-free delta, toolchain statistics, comparisons."""

import json

import pytest

from pixelis_verl.eval.report import (
    Bootstrap,
    arm_scores,
    build_report,
    compare,
    main,
    markdown,
    paired_delta,
    summary,
    write_report,
)


def _record(qid, arm, acc, *, calls=(), bad=0, rotation=0, category="colour", seconds=1.0):
    steps = [{"tool": name, "ok": True} for name in calls]
    return {
        "item": {"id": qid, "arm": arm, "rotation": rotation, "category": category},
        "pred": "x",
        "info": {"acc": acc, "tool_calls": float(len(calls)), "invalid_calls": float(bad), "malformed_calls": 0.0,
                 "unexecuted_calls": 0.0, "curiosity": 0.5},
        "turns": [{"thought": "", "calls": []}] * (len(calls) + 1),
        "steps": steps,
        "response_tokens": 100,
        "seconds": seconds,
    }  # fmt: skip


def _records():
    tools = [_record(f"q{i}", "tools", float(i % 4 != 0), calls=["zoom_in", "read_text"], bad=i % 2) for i in range(8)]
    control = [
        _record(f"q{i}", "no_tools", float(i % 2 == 0), category="colour" if i < 4 else "text") for i in range(8)
    ]
    return tools + control


META = {"benchmark": "demo", "model": "tiny", "protocol": {"options": "shuffled", "samples": 1}, "level": 0.95}


def test_report_has_both_arms_the_paired_delta_and_toolchain_statistics():
    report = build_report(_records(), META, Bootstrap(resamples=200))
    tools, control = report["arms"]["tools"], report["arms"]["no_tools"]
    assert tools["accuracy"] == 0.75 and control["accuracy"] == 0.5
    assert tools["ci"][0] <= 0.75 <= tools["ci"][1]
    assert report["tool_free_delta"]["accuracy"] == 0.25 and report["tool_free_delta"]["questions"] == 8
    chain = tools["toolchain"]
    assert chain["calls_per_question"] == 2.0 and chain["used_tool_rate"] == 1.0
    assert chain["tool_mix"] == {"zoom_in": 0.5, "read_text": 0.5}
    assert chain["invalid_call_rate"] == 0.25  # 4 bad of 16 calls
    assert chain["well_formed_rate"] == 1.0  # every question wrote calls and none was malformed
    assert chain["turns"] == 3.0 and chain["response_tokens"] == 100.0 and chain["latency_s"]["p50"] == 1.0
    assert control["toolchain"]["calls_per_question"] == 0.0 and control["toolchain"]["invalid_call_rate"] is None
    assert control["toolchain"]["well_formed_rate"] == 0.0
    assert set(control["categories"]) == {"colour", "text"}
    assert tools["reward"]["curiosity"] == 0.5


def test_a_question_in_several_categories_counts_in_each():
    records = [_record("q0", "tools", 1.0), _record("q1", "tools", 0.0)]
    records[0]["item"]["categories"] = ["Multi-span", "Non-span"]  # InfoVQA's several answer types
    records[1]["item"]["categories"] = ["Non-span"]
    categories = build_report(records, META, Bootstrap(resamples=50))["arms"]["tools"]["categories"]
    assert {name: (c["accuracy"], c["questions"]) for name, c in categories.items()} == {
        "Multi-span": (1.0, 1), "Non-span": (0.5, 2)
    }  # fmt: skip


def test_a_gain_between_two_runs_pairs_each_question_with_itself():
    """Two evaluations of the same questions (before and after training): the gain per arm, question by question."""
    before, after = arm_scores(_records()), arm_scores([_record(f"q{i}", "tools", 1.0) for i in range(6)])
    gain = paired_delta(after["tools"], before["tools"], Bootstrap(resamples=200))
    assert gain["questions"] == 6  # only the questions both runs scored
    assert gain["accuracy"] == pytest.approx(2 / 6, abs=1e-4)  # q0 and q4 went from 0 to 1, the rest stayed at 1
    assert gain["ci"][0] <= gain["accuracy"] <= gain["ci"][1]
    assert set(before) == {"tools", "no_tools"} and before["no_tools"]["q1"] == 0.0


def test_circular_rows_score_per_question_not_per_row():
    records = [_record("q0", "tools", 1.0, rotation=r) for r in range(4)]
    records += [_record("q1", "tools", float(r != 2), rotation=r) for r in range(4)]
    report = build_report(records, META, Bootstrap(resamples=50))
    assert report["arms"]["tools"]["accuracy"] == 0.5 and report["arms"]["tools"]["questions"] == 2
    assert "tool_free_delta" not in report


def test_markdown_shows_both_columns_and_the_delta(tmp_path):
    report = build_report(_records(), {**META, "command": "python -m pixelis_verl.evaluate", "date": "today"},
                          Bootstrap(resamples=50))  # fmt: skip
    text = markdown(report)
    assert "| with tools | 75.0 |" in text and "| tool-free control | 50.0 |" in text
    assert "Tool-free delta" in text and "25.0 points" in text and "zoom_in 50.0%" in text
    json_path, md_path = write_report(report, tmp_path)
    assert json.loads(json_path.read_text())["arms"]["tools"]["accuracy"] == 0.75
    assert md_path.read_text() == text


def test_compare_prints_the_change_per_arm(tmp_path, capsys):
    new = build_report(_records(), {**META, "run_dir": "new"}, Bootstrap(resamples=50))
    worse = [dict(r, info={**r["info"], "acc": 0.0}) if r["item"]["arm"] == "tools" else r for r in _records()]
    old = build_report(worse, {**META, "run_dir": "old"}, Bootstrap(resamples=50))
    text = compare(new, old)
    assert "accuracy 0.0 -> 75.0 (+75.0 points)" in text and "tool-free delta: -50.0 -> 25.0" in text
    (tmp_path / "new").mkdir()
    (tmp_path / "old").mkdir()
    write_report(new, tmp_path / "new")
    write_report(old, tmp_path / "old")
    assert main([str(tmp_path / "new"), "--compare", str(tmp_path / "old")]) == 0
    out = capsys.readouterr().out
    assert "| demo | 75.0 | 50.0 | 25.0 |" in out and "+75.0 points" in out


def test_summary_adds_an_overall_row_over_benchmarks():
    a = build_report(_records(), META, Bootstrap(resamples=20))
    b = dict(a, benchmark="other", arms={"tools": dict(a["arms"]["tools"], accuracy=0.25)}, tool_free_delta={})
    text = summary([a, b])
    assert "| overall (mean of benchmarks) | 50.0 | 50.0 | 25.0 |" in text


def test_report_cli_without_a_report_fails_in_one_line(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no evaluation report" in capsys.readouterr().err


@pytest.mark.parametrize("arm", ["tools", "no_tools"])
def test_an_arm_alone_still_reports(arm):
    records = [r for r in _records() if r["item"]["arm"] == arm]
    assert list(build_report(records, META, Bootstrap(resamples=20))["arms"]) == [arm]
