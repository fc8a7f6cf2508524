"""What a trace set holds: kinds, tasks, tools, trace lengths and answer types, as counts."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from pixelis_verl.data.cota import TraceSet

YES_NO = {"yes", "no"}


def answer_type(answer: str) -> str:
    text = answer.strip()
    if re.fullmatch(r"[A-J]", text):
        return "option letter"
    if re.fullmatch(r"[-+]?\d+(\.\d+)?", text):
        return "number"
    if text.lower() in YES_NO:
        return "yes/no"
    return "word" if len(text.split()) == 1 else "phrase"


def set_stats(traces: TraceSet) -> dict[str, Any]:
    kinds, tasks, tools, lengths, answers = Counter(), Counter(), Counter(), Counter(), Counter()
    count = 0
    for trace in traces.traces():
        count += 1
        kinds[trace.kind] += 1
        tasks[trace.task] += 1
        tools.update(step.tool for step in trace.steps)
        lengths[len(trace.steps)] += 1
        answers[answer_type(trace.answer)] += 1
    return {
        "traces": count,
        "kinds": dict(kinds.most_common()),
        "tasks": dict(tasks.most_common()),
        "tool_calls": dict(tools.most_common()),
        "steps_per_trace": dict(sorted(lengths.items())),
        "mean_steps": round(sum(k * v for k, v in lengths.items()) / max(count, 1), 3),
        "answer_types": dict(answers.most_common()),
    }
