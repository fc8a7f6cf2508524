"""Synthesised CoTA traces: deterministic, valid, and their observations are what the tools return."""

import filecmp

import pytest

from pixelis_verl.data.cota import TraceSet, validate_trace
from pixelis_verl.data.replay import replay_mismatches
from pixelis_verl.data.synth.tasks import TASK_KINDS, generate_tasks
from pixelis_verl.data.synth.traces import SynthConfig, synthesize, variant_of
from pixelis_verl.tools.session import load_tools, tool_schemas
from tests.data.cota_sets import TOOLS_YAML, VARIANTS, VIEW, make_set


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, TraceSet]:
    return {variant: make_set(tmp_path_factory.mktemp(variant), variant) for variant in VARIANTS}


def test_synthesis_is_deterministic_for_a_seed(tmp_path):
    first, second = (
        make_set(tmp_path / "a", "self_correction", num=4),
        make_set(tmp_path / "b", "self_correction", num=4),
    )
    assert first.path.read_text() == second.path.read_text()
    media = sorted(p.relative_to(first.root) for p in first.root.rglob("*") if p.is_file() and p.name != "traces.jsonl")
    assert media and all(filecmp.cmp(first.root / p, second.root / p, shallow=False) for p in media)
    third = make_set(tmp_path / "c", "self_correction", seed=1, num=4)
    assert third.path.read_text() != first.path.read_text()


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_trace_reexecutes_to_its_observations_and_the_true_answer(sets, variant):
    traces = sets[variant]
    tools = load_tools(TOOLS_YAML, traces.root)
    schemas = tool_schemas(tools)
    tasks = generate_tasks(len(TASK_KINDS), 0, list(TASK_KINDS))
    for trace, task in zip(traces.traces(), tasks, strict=True):
        assert trace.kind == variant and trace.task == task.kind and trace.answer == task.answer
        assert trace.steps and all(step.observation.text for step in trace.steps)
        assert validate_trace(trace, traces.root, schemas) == []
        assert replay_mismatches(trace, traces.root, tools) == []


def test_variants_differ_the_way_they_promise(sets):
    golden, corrected, trap = (list(sets[v].traces()) for v in VARIANTS)
    for g, c, t in zip(golden, corrected, trap, strict=True):
        assert len(c.steps) == len(g.steps) + 1  # the miss, then the golden calls
        assert [s.arguments for s in c.steps[1:]] == [s.arguments for s in g.steps]
        assert c.steps[0].arguments != g.steps[0].arguments and "not" in c.steps[1].thought
        assert t.question.startswith(g.question) and t.question != g.question and t.answer == g.answer
        wrong = t.question.rsplit('"', 2)[1]
        assert wrong != g.answer and f"not {wrong}" in t.final_thought


def test_variant_mix_follows_its_shares():
    config = SynthConfig(TOOLS_YAML, VIEW, mix=(("golden", 0.7), ("self_correction", 0.2), ("trap", 0.1)))
    drawn = [variant_of(config, i) for i in range(2000)]
    assert abs(drawn.count("golden") / 2000 - 0.7) < 0.04 and abs(drawn.count("trap") / 2000 - 0.1) < 0.03


def test_parallel_synthesis_matches_serial(tmp_path):
    config = SynthConfig(TOOLS_YAML, VIEW, seed=5, kinds=("text", "size"))
    serial = synthesize(config, TraceSet(tmp_path / "serial"), 4, progress=False)
    parallel = synthesize(config, TraceSet(tmp_path / "parallel"), 4, workers=2, progress=False)
    assert [t.to_dict() for t in serial] == [t.to_dict() for t in parallel]
