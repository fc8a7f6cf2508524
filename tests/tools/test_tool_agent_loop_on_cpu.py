"""Every tool inside verl's own ToolAgentLoop.run, on rows of the synthetic task set, with the tiny model's processor.

The policy is replaced by a server that replays each task's golden plan (pixelis_verl.data.synth.golden) as
generated tokens, so every tool is called exactly as a model would call it: verl renders the prompt with the
six schemas, parses the hermes calls, runs our tools, appends their images to the conversation and
re-tokenises them. Everything but the sampling is verl's and ours.
"""

import pytest

from pixelis_verl.data.rl_rows import ALL_KINDS
from pixelis_verl.data.synth.golden import PLANNERS, Frame
from pixelis_verl.data.synth.tasks import generate_tasks
from pixelis_verl.tools.state import STORE
from pixelis_verl.trajectory.steps import STEPS_KEY
from tests.golden_loop import SEED, GoldenPlanServer, loop_setup


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        return loop_setup(tmp_path_factory.mktemp("run"), patch)


@pytest.mark.parametrize("index", range(len(ALL_KINDS)), ids=list(ALL_KINDS))
def test_golden_plan_runs_through_verls_tool_agent_loop(setup, index):
    tools, tokenizer = setup.tools, setup.tokenizer
    task = generate_tasks(len(ALL_KINDS), SEED, ALL_KINDS)[index]
    item = setup.dataset[index]
    assert item["extra_info"]["kind"] == task.kind
    server = GoldenPlanServer(tokenizer, task, tools[0].settings.coord_frame)
    loop = setup.loop(server)
    # The loop runs blocking work on the event loop it captured at construction, as in an agent-loop worker.
    output = loop.loop.run_until_complete(loop.run({"temperature": 1.0}, **item))

    steps = output.extra_fields[STEPS_KEY]
    frame = Frame(tools[0].settings.coord_frame, output.multi_modal_data["images"][0].size, task.image.size)
    planned = [call["name"] for turn in PLANNERS[task.kind](task, frame) for call in turn]
    assert [step["tool"] for step in steps] == planned
    assert all(step["ok"] for step in steps), [step["error"] for step in steps]
    returned_images = sum(1 for step in steps if step["observation"] is not None)
    assert len(output.multi_modal_data["images"]) > returned_images  # question image + every returned image
    assert task.answer in tokenizer.decode(output.response_ids)
    (request_id,) = server.request_ids
    assert server.state_during_run and request_id not in STORE  # tool state lived for the trajectory, then freed
