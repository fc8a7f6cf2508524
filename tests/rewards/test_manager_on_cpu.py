"""The pixelis reward manager through verl's reward-loop interface, on trajectories verl's tool loop produced.

Rows are built as verl's agent-loop worker builds them for `RewardLoopWorker.compute_score` (a one-row
DataProto of token tensors, the dataset fields, `tool_extra_fields`), and scored with `run_single`.
"""

import asyncio

import numpy as np
import pytest
import ray

from pixelis_verl.data.rl_rows import ALL_KINDS
from pixelis_verl.data.synth.tasks import generate_tasks
from pixelis_verl.rewards.checkpoint import CuriosityCheckpoint
from pixelis_verl.rewards.dynamics import CHECKPOINT_FILE, actor_name
from pixelis_verl.rewards.manager import PixelisRewardManager
from pixelis_verl.rewards.rows import reward_row
from pixelis_verl.trajectory.steps import GROUP_KEY, STEPS_KEY
from tests.golden_loop import SEED, GoldenPlanServer, loop_setup
from tests.rewards.trajectories import feature, response, step

COMPONENTS = ["accuracy", "curiosity", "coherence", "efficiency", "validity", "rate_curiosity", "operation_penalty"]
COUNTS = ["tool_calls", "pixel_ops", "invalid_calls", "malformed_calls", "unexecuted_calls", "pred", "acc", "score"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        return loop_setup(tmp_path_factory.mktemp("run"), patch, ("pixelis.reward.components.curiosity.backend=local",))


def test_a_group_of_tool_users_and_a_blind_answer_scored_through_run_single(setup):
    index = ALL_KINDS.index("colour")
    task = generate_tasks(len(ALL_KINDS), SEED, ALL_KINDS)[index]
    items = [dict(setup.dataset[index], uid="group-1") for _ in range(3)]  # a row's image streams are read once
    frame = setup.tools[0].settings.coord_frame
    servers = [GoldenPlanServer(setup.tokenizer, task, frame, use_tools=use) for use in (True, True, False)]
    loops = [setup.loop(server) for server in servers]

    async def run_group():
        outputs = await asyncio.gather(
            *(loop.run({"temperature": 1.0}, **i) for loop, i in zip(loops, items, strict=True))
        )
        manager = PixelisRewardManager(setup.cfg, setup.tokenizer)  # constructed inside the running loop, as verl does
        fields = {k: v for k, v in items[0].items() if k in ("data_source", "reward_model", "extra_info", "uid")}
        rows = [reward_row(o.prompt_ids, o.response_ids, fields, o.extra_fields) for o in outputs]
        return outputs, [await manager.run_single(row) for row in rows]

    outputs, results = loops[0].loop.run_until_complete(run_group())
    assert [o.extra_fields[GROUP_KEY] for o in outputs] == [{"size": 3, "pixel_op_rate": pytest.approx(2 / 3)}] * 3
    used, blind = results[0]["reward_extra_info"], results[2]["reward_extra_info"]
    assert set(COMPONENTS + COUNTS) <= set(used) and set(used) == set(blind)
    assert used["accuracy"] == blind["accuracy"] == 1.0 and used["pred"] == task.answer
    assert used["tool_calls"] == len(outputs[0].extra_fields[STEPS_KEY]) > 0 == blind["tool_calls"]
    assert used["curiosity"] > 0 == blind["curiosity"]  # the segment overlay is an observation to predict
    assert used["rate_curiosity"] == 0.0  # 2/3 of the group used tools: above Pixel-Reasoner's H = 0.3
    assert results[0]["reward_score"] == pytest.approx(used["score"])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\ufffd\x00 <<<>>> <|im_start|>user\n<|im_end|>",
        '<tool_call>{"name": "zoom_in", "arguments": {"bbox_2d": [1, 2',  # cut off by the length limit
        "<answer>" + "x" * 2000,
    ],
    ids=["empty", "garbage", "truncated_call", "unclosed_answer"],
)
@pytest.mark.parametrize("fields", ["complete", "no_ground_truth", "no_step_records"])
def test_bad_responses_and_missing_fields_score_without_raising(setup, text, fields):
    response_ids = setup.tokenizer.encode(text, add_special_tokens=False)
    row = {"data_source": "synth", "reward_model": {"ground_truth": "red"}, "extra_info": {"kind": "colour"}}
    extra = {STEPS_KEY: [step(ok=False)]}
    if fields == "no_ground_truth":
        row = {"data_source": "synth", "extra_info": None}
    if fields == "no_step_records":
        extra = None

    async def score():
        return await PixelisRewardManager(setup.cfg, setup.tokenizer).run_single(
            reward_row([1, 2], response_ids, row, extra)
        )

    result = asyncio.run(score())
    info = result["reward_extra_info"]
    assert np.isfinite(result["reward_score"]) and info["component_errors"] == 0 and info["accuracy"] == 0.0
    assert info["validity"] < 0  # no answer at least
    assert info["malformed_calls"] == float(fields != "x" and text.startswith("<tool_call>"))


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_reward_workers_share_one_curiosity_actor_saved_with_checkpoints(setup, local_ray, tmp_path):
    cfg = setup.cfg.copy()
    cfg.pixelis.reward.components.curiosity.backend = "actor"
    cfg.trainer.default_local_dir = str(tmp_path / "checkpoints")
    same = response([("zoom", [{"name": "zoom_in", "arguments": {"bbox_2d": [0, 0, 10, 10]}}])], "red")
    ids = setup.tokenizer.encode(same, add_special_tokens=False)
    fields = {"data_source": "synth", "reward_model": {"ground_truth": "red"}, "extra_info": {}}
    extra = {STEPS_KEY: [step(seen=feature(0.3), returned=feature(0.8))]}

    row = reward_row([1], ids, fields, extra)
    step_dir = tmp_path / "checkpoints" / "global_step_3"

    async def scenario():
        workers = [PixelisRewardManager(cfg, setup.tokenizer) for _ in range(2)]  # two reward workers' managers
        curiosity = [(await workers[i % 2].run_single(row))["reward_extra_info"]["curiosity"] for i in range(40)]
        # verl's checkpoint hook, while the workers (and so the actor) are alive
        CuriosityCheckpoint(config=cfg).on_save(trainer=None, global_step=3, checkpoint_dir=str(step_dir))
        (tmp_path / "checkpoints" / "latest_checkpointed_iteration.txt").write_text("3")
        ray.kill(ray.get_actor(actor_name(cfg)))
        resumed = PixelisRewardManager(cfg, setup.tokenizer)  # a resumed run: the actor is created again, restored
        again = (await resumed.run_single(row))["reward_extra_info"]["curiosity"]
        seen = ray.get(ray.get_actor(actor_name(cfg)).state.remote())["transitions_seen"]
        return curiosity, again, seen

    curiosity, again, seen = asyncio.run(scenario())
    assert curiosity[-1] < 0.5 * curiosity[0]  # both workers taught the one model: the transition became predictable
    assert (step_dir / CHECKPOINT_FILE).is_file()
    assert again < 0.5 * curiosity[0] and seen == 41
