"""Each reward component on hand-built trajectories, and the manager's sum of them (no Ray: curiosity runs locally)."""

import asyncio
from dataclasses import dataclass

import numpy as np
import pytest
from omegaconf import OmegaConf

from pixelis_verl.config import RecipeError, check, compose_recipe, resolve
from pixelis_verl.rewards.coherence import Coherence, CoherenceParams
from pixelis_verl.rewards.curiosity import Batcher, Curiosity, CuriosityParams, encode_transition
from pixelis_verl.rewards.efficiency import Efficiency, EfficiencyParams
from pixelis_verl.rewards.manager import PixelisRewardManager, RunningNorm, build_components
from pixelis_verl.rewards.pixel_reasoner import (
    OperationPenalty,
    OperationPenaltyParams,
    RateCuriosity,
    RateCuriosityParams,
)
from pixelis_verl.rewards.registry import REWARD_COMPONENTS, ComponentParams, RewardComponent, register_component
from pixelis_verl.rewards.tool_bonus import ToolBonus, ToolBonusParams
from pixelis_verl.rewards.validity import Validity, ValidityParams
from tests.rewards.trajectories import feature, step, trajectory


def score(component, t) -> float:
    return asyncio.run(component.score(t))


@pytest.fixture
def cfg(tmp_path):
    overrides = [f"pixelis.run_dir={tmp_path}", "pixelis.reward.components.curiosity.backend=local"]
    return resolve(compose_recipe("rft_tiny_cpu", overrides))


async def _score(cfg, t) -> dict:
    # verl's managers capture the running event loop when constructed: build them inside it
    return await PixelisRewardManager(cfg, tokenizer=None).score_trajectory(t)


def total(cfg, t) -> float:
    return asyncio.run(_score(cfg, t))["reward_score"]


def test_a_correct_short_toolchain_scores_above_a_correct_long_one(cfg):
    zooms = [
        step(args={"bbox_2d": [i, i, i + 40, i + 40]}, region=[i / 100, i / 100, 0.4 + i / 100, 0.4]) for i in range(7)
    ]
    short, long = trajectory(zooms[:2]), trajectory(zooms, response_tokens=900)
    assert total(cfg, short) > total(cfg, long)
    assert total(cfg, trajectory(zooms[:2], answer="blue")) < total(cfg, long)  # still: right beats wrong


def test_repeated_identical_calls_lower_coherence():
    coherence = Coherence(CoherenceParams(), None)
    thoughts = ["The sign is small; zoom on its top left.", "Now the sign's top right, next to it."]
    varied = trajectory(
        [step(args={"bbox_2d": [0, 0, 50, 50]}), step(args={"bbox_2d": [50, 0, 100, 50]}, region=[0.4, 0.1, 0.7, 0.4])],
        thoughts=thoughts,
    )
    repeated = trajectory([step(), step()], thoughts=thoughts)
    assert score(coherence, varied) > 0 > score(coherence, repeated) == -1.0
    unrelated = trajectory(
        [step(), step("select_frames", {"num_frames": 4}, region=[0, 0, 1, 1])],
        thoughts=["Zoom on the sign.", "Weather tomorrow says purple bananas."],
    )
    assert score(coherence, unrelated) < score(coherence, varied)
    assert score(coherence, trajectory([step()])) == 0.0  # one step: nothing to relate


def test_novel_observations_are_more_curious_and_repeats_decay(cfg):
    curiosity = Curiosity(CuriosityParams(backend="local", seed=1, lr=1e-2), cfg)
    seen = trajectory([step(seen=feature(0.5), returned=feature(0.2))])
    first = score(curiosity, seen)
    later = [score(curiosity, seen) for _ in range(30)]
    assert first > later[10] > later[-1] and later[-1] < 0.5 * first  # the model learns the repeated transition
    novel = trajectory([step("segment_object_at", seen=feature(0.9, 0.3), returned=feature(0.95, 0.4))])
    assert score(curiosity, novel) > later[-1]
    assert score(curiosity, trajectory([])) == 0.0  # no pixel operation: nothing to be curious about
    text_only = step("read_text")
    text_only["observation"] = None
    assert score(curiosity, trajectory([text_only])) == 0.0  # text only: no image to predict


def test_qwen3_vls_own_zoom_tool_is_encoded_as_the_zoom_in_operation():
    from pixelis_verl.rewards.curiosity import ALIASES
    from pixelis_verl.tools.zoom import QWEN3_VL_TOOL_NAME

    assert ALIASES[QWEN3_VL_TOOL_NAME] == "zoom_in"  # the alias follows the tool's name
    tools = CuriosityParams().tools
    native, zoom = encode_transition(step("image_zoom_in_tool"), tools), encode_transition(step("zoom_in"), tools)
    assert all(np.array_equal(a, b) for a, b in zip(native, zoom, strict=True))
    other = encode_transition(step("some_other_tool"), tools)
    assert not np.array_equal(other[0], zoom[0])  # an unknown tool keeps the shared "other" slot


def test_concurrent_curiosity_requests_share_model_calls():
    calls = []

    async def model(inputs, targets):
        calls.append(len(inputs))
        await asyncio.sleep(0.01)
        return [float(x[0]) for x in inputs]

    async def many():
        batcher = Batcher(model)
        return await asyncio.gather(*(batcher(np.full((k % 3 + 1, 2), k), np.zeros((k % 3 + 1, 2))) for k in range(20)))

    results = asyncio.run(many())
    assert results == [[float(k)] * (k % 3 + 1) for k in range(20)]  # each request gets its own errors back
    assert calls[0] == 1 and len(calls) == 2 and sum(calls) == sum(k % 3 + 1 for k in range(20))


def test_validity_prices_each_mistake():
    validity = Validity(ValidityParams(), None)
    assert score(validity, trajectory([step()])) == 0.0
    assert score(validity, trajectory([step(ok=False)])) == pytest.approx(-0.05)
    assert score(validity, trajectory([step("track_object", ok=False, error_kind="modality")])) == pytest.approx(-0.1)
    assert score(validity, trajectory([step()], answer=None)) == pytest.approx(-0.2)
    garbage = '<tool_call>{"name": "zoom_in"</tool_call><tool_call>{"name": "nope", "arguments": {}}</tool_call>'
    assert score(validity, trajectory([], text=garbage)) == pytest.approx(-(0.1 + 0.05 + 0.2))
    assert score(validity, trajectory([], text="<tool_call>{}</tool_call>" * 50)) == -1.0  # capped


def test_efficiency_charges_calls_beyond_the_budget_and_overlong_responses():
    efficiency = Efficiency(EfficiencyParams(call_budget=2, call_cost=0.1, soft_length=0.5, length_cost=0.4), None)
    assert score(efficiency, trajectory([step()] * 2)) == 0.0
    assert score(efficiency, trajectory([step()] * 5)) == pytest.approx(-0.3)
    assert score(efficiency, trajectory([], response_tokens=750)) == pytest.approx(-0.2)  # halfway to the limit
    assert score(efficiency, trajectory([], response_tokens=1000)) == pytest.approx(-0.4)


def test_pixel_reasoner_terms_follow_the_papers_formula():
    bonus, penalty = RateCuriosity(RateCuriosityParams(), None), OperationPenalty(OperationPenaltyParams(), None)
    rare = trajectory([step()], group={"size": 8, "pixel_op_rate": 0.125})
    assert score(bonus, rare) == pytest.approx(0.3 - 0.125)
    assert score(bonus, trajectory([step()], group={"size": 8, "pixel_op_rate": 0.5})) == 0.0
    assert score(bonus, trajectory([], group={"size": 8, "pixel_op_rate": 0.125})) == 0.0  # only tool users earn it
    assert score(penalty, trajectory([step()] * 3)) == -2.0 and score(penalty, trajectory([step()])) == 0.0


def test_tool_bonus_pays_a_well_formed_call_of_the_named_tools_and_with_deepeyes_only_when_right():
    deepeyes, any_zoom = ToolBonus(ToolBonusParams(), None), ToolBonus(ToolBonusParams(["zoom_in"], False), None)
    assert score(deepeyes, trajectory([step()])) == 1.0
    assert score(deepeyes, trajectory([step()], answer="blue")) == 0.0  # the call did not help: no bonus
    assert score(any_zoom, trajectory([step()], answer="blue")) == 1.0
    assert score(any_zoom, trajectory([step("read_text")])) == 0.0  # not a named tool
    assert score(any_zoom, trajectory([step(ok=False)])) == 1.0  # well formed, though its arguments failed
    assert score(any_zoom, trajectory([], text='<tool_call>{"name": "zoom_in"</tool_call>')) == 0.0  # malformed
    with pytest.raises(ValueError, match="tool_bonus: tools must be a list"):
        ToolBonusParams(tools="zoom_in")


def test_a_new_component_is_one_class_and_one_yaml_entry(tmp_path):
    @dataclass
    class ShortThoughtParams(ComponentParams):
        words: int = 5

    @register_component("short_thoughts")
    class ShortThoughts(RewardComponent):
        Params = ShortThoughtParams

        async def score(self, trajectory) -> float:
            return float(all(len(turn.thought.split()) <= self.params.words for turn in trajectory.turns))

    try:
        entry = "+pixelis.reward.components.short_thoughts={weight: 0.5, words: 8}"
        cfg = resolve(compose_recipe("rft_tiny_cpu", [f"pixelis.run_dir={tmp_path}", entry]))
        extra = asyncio.run(_score(cfg, trajectory([step()])))["reward_extra_info"]
        assert extra["short_thoughts"] == 1.0
    finally:
        REWARD_COMPONENTS.pop("short_thoughts")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "+pixelis.reward.components.curiosty={weight: 1}",
            "pixelis.reward.components.curiosty: no such reward component",
        ),
        (
            "+pixelis.reward.components.coherence.hgih=0.9",
            r"pixelis.reward.components.coherence: unknown key\(s\) \['hgih'\]",
        ),
        ("pixelis.reward.components.coherence.low=0.95", "coherence: need 0 < low < high < 1"),
        (
            "pixelis.reward.components.curiosity.weight=lots",
            "pixelis.reward.components.curiosity.weight: expected a number",
        ),
    ],
)
def test_bad_reward_config_fails_fast_naming_the_key(tmp_path, override, message):
    cfg = resolve(compose_recipe("rft_tiny_cpu", [f"pixelis.run_dir={tmp_path}", override]))
    with pytest.raises(RecipeError, match=message):
        check(cfg)


def test_running_normalisation_standardises_a_component():
    norm = RunningNorm()
    values = [norm(v) for v in [0.0, 2.0, 4.0, 6.0, 8.0]]
    assert values[0] == 0.0 and values[-1] == pytest.approx((8 - 4) / np.std([0, 2, 4, 6, 8], ddof=1))


def test_null_removes_a_component(tmp_path):
    cfg = resolve(
        compose_recipe("rft_tiny_cpu", [f"pixelis.run_dir={tmp_path}", "pixelis.reward.components.curiosity=null"])
    )
    names = [entry.component.name for entry in build_components(cfg)]
    assert (
        "curiosity" not in names
        and "accuracy" in names
        and OmegaConf.select(cfg, "reward.reward_manager.name") == "pixelis"
    )
