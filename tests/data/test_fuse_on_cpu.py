"""Fusing trace sets: shares by weight, duplicates dropped across sources, a question never in both splits."""

import asyncio
import shutil

import pytest
from omegaconf import OmegaConf
from verl.experimental.agent_loop.tool_agent_loop import AgentData
from verl.utils.dataset.rl_dataset import RLHFDataset

from pixelis_verl.data.cota import TraceSet
from pixelis_verl.data.fuse import dedup_key, fuse
from pixelis_verl.data.parquet import write_rl_parquet
from pixelis_verl.data.replay import shown_image
from pixelis_verl.tools.session import load_tools
from tests.data.cota_sets import TOOLS_YAML, make_set


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    a = make_set(tmp_path_factory.mktemp("a"), "golden", seed=1, num=6)
    b = make_set(tmp_path_factory.mktemp("b"), "golden", seed=2, num=6)
    copy = TraceSet(tmp_path_factory.mktemp("copy") / "a")
    shutil.copytree(a.root, copy.root)
    return a, b, copy


def test_a_copied_set_fuses_to_nothing_new(sets):
    a, _, copy = sets
    fused = fuse([(a, 1.0), (copy, 1.0)], val_fraction=0.0)
    train, val, report = fused.train, fused.val, fused.report
    assert report.duplicates == {str(copy.root): 6} and len(train) == report.taken[str(a.root)]
    assert all(root == a.root for _, root in train) and not val


def test_shares_follow_weights_and_splits_are_stable(sets):
    a, b, _ = sets
    fused = fuse([(a, 1.0), (b, 2.0)], val_fraction=0.5, seed=3)
    train, val = fused.train, fused.val
    assert fused.report.taken == {str(a.root): 3, str(b.root): 6}  # b limits: 6 traces at 2/3 of the set
    keys = {split: {dedup_key(t, r) for t, r in items} for split, items in (("train", train), ("val", val))}
    assert keys["train"] and keys["val"] and not keys["train"] & keys["val"]
    again = fuse([(a, 1.0), (b, 2.0)], val_fraction=0.5, seed=3)
    assert [t.id for t, _ in again.train] == [t.id for t, _ in train] and len(again.val) == len(val)


def test_rl_prompts_are_other_questions_than_the_sft_traces(sets):
    a, b, _ = sets
    fused = fuse([(a, 1.0), (b, 1.0)], val_fraction=0.2, rl_fraction=0.5, seed=1)
    keys = {name: {dedup_key(t, r) for t, r in getattr(fused, name)} for name in ("train", "rl_train", "val")}
    assert keys["train"] and keys["rl_train"]
    assert not keys["train"] & keys["rl_train"] and not (keys["train"] | keys["rl_train"]) & keys["val"]
    assert fused.report.rl_train == len(fused.rl_train) and "rl_train" in fused.report.summary()
    # the val split does not move when RL takes a share: the same questions stay held out
    assert keys["val"] == {dedup_key(t, r) for t, r in fuse([(a, 1.0), (b, 1.0)], val_fraction=0.2, seed=1).val}


def test_bad_weights_fail_clearly(sets):
    with pytest.raises(ValueError, match="each with a weight > 0"):
        fuse([(sets[0], 0.0)], val_fraction=0.1)


def test_fused_rl_rows_give_the_tools_what_the_traces_saw(tmp_path):
    """Each RL row, read by verl's RLHFDataset, replays its trace's calls to the same observations."""
    traces = make_set(tmp_path / "all", "golden")  # every kind, videos included
    items = [(t, traces.root) for t in traces.traces()]
    out = tmp_path / "fused"
    write_rl_parquet(items, out / "rl_train.parquet", "train")
    config = OmegaConf.create({"cache_dir": str(tmp_path / "cache"), "prompt_key": "prompt", "image_key": "images",
                               "return_raw_chat": True, "filter_overlong_prompts": False})  # fmt: skip
    processor = type("P", (), {"image_processor": type("I", (), {"patch_size": 14})()})()
    dataset = RLHFDataset(str(out / "rl_train.parquet"), tokenizer=None, config=config, processor=processor)
    tools = load_tools(TOOLS_YAML, out)  # the fused folder is the tools' data root
    by_id = {t.id: t for t, _ in items}
    for index in range(len(dataset)):
        row = dataset[index]
        trace = by_id[row["extra_info"]["trace_id"]]
        image = row["raw_prompt"][1]["content"][0]["image"]
        agent_data = AgentData(
            [], [shown_image(image, trace)], None, None, None, {}, f"rl-{index}", row["tools_kwargs"]
        )
        for step in trace.steps:
            response, _, _ = asyncio.run(tools[step.tool].execute("id", step.arguments, agent_data=agent_data))
            assert response.text == step.observation.text, (trace.id, step.tool)
            agent_data.image_data.extend(response.image or [])
