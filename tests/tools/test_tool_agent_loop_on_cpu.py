"""Every tool inside verl's own ToolAgentLoop.run, on rows of the synthetic task set, with the tiny model's processor.

The policy is replaced by a server that replays each task's golden plan (pixelis_verl.data.synth.golden) as
generated tokens, so every tool is called exactly as a model would call it: verl renders the prompt with the
six schemas, parses the hermes calls, runs our tools, appends their images to the conversation and
re-tokenises them. Everything but the sampling is verl's and ours.
"""

import json
from pathlib import Path

import pytest
from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap
from verl.tools.tool_registry import initialize_tools_from_config
from verl.utils import hf_processor, hf_tokenizer
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl.workers.rollout.replica import TokenOutput

from pixelis_verl.agent_loop import PixelisToolAgentLoop
from pixelis_verl.config import compose_recipe, resolve
from pixelis_verl.data.rl_rows import ALL_KINDS, write_task_parquet
from pixelis_verl.data.synth.golden import PLANNERS, Frame
from pixelis_verl.data.synth.tasks import generate_tasks
from pixelis_verl.tools.state import STORE
from pixelis_verl.tools.steps import STEPS_KEY

SEED = 11


class GoldenPlanServer:
    """Answers each `generate` with the next turn of the task's golden plan, then with the answer."""

    def __init__(self, tokenizer, task, coord_frame: str):
        self.tokenizer, self.task, self.coord_frame = tokenizer, task, coord_frame
        self.turns = 0
        self.request_ids: set[str] = set()
        self.state_during_run = False  # did the tools keep state for this trajectory between turns?

    async def generate(self, request_id, prompt_ids, sampling_params, image_data=None, **kwargs) -> TokenOutput:
        self.request_ids.add(request_id)
        self.state_during_run |= request_id in STORE
        frame = Frame(self.coord_frame, image_data[0].size, self.task.image.size)
        plan = PLANNERS[self.task.kind](self.task, frame)
        if self.turns < len(plan):
            text = "".join(f"<tool_call>\n{json.dumps(call)}\n</tool_call>" for call in plan[self.turns])
        else:
            text = f"<answer>{self.task.answer}</answer>"
        self.turns += 1
        ids = self.tokenizer.encode(text + "<|im_end|>", add_special_tokens=False)
        return TokenOutput(token_ids=ids, log_probs=[0.0] * len(ids), stop_reason="completed")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    cfg = resolve(compose_recipe("rft_tiny_cpu", [f"pixelis.run_dir={run_dir}"]))
    data_root = Path(cfg.pixelis.data_root)
    parquet = write_task_parquet(data_root / "train.parquet", len(ALL_KINDS), SEED, "train", ALL_KINDS, data_root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIXELIS_DATA_ROOT", str(data_root))
        tools = initialize_tools_from_config(cfg.actor_rollout_ref.rollout.multi_turn.tool_config_path)
    model = cfg.actor_rollout_ref.model.path
    tokenizer, processor = hf_tokenizer(model), hf_processor(model)
    dataset = RLHFDataset(data_files=str(parquet), tokenizer=tokenizer, config=cfg.data, processor=processor)
    return cfg, tools, tokenizer, processor, dataset


@pytest.mark.parametrize("index", range(len(ALL_KINDS)), ids=list(ALL_KINDS))
def test_golden_plan_runs_through_verls_tool_agent_loop(setup, index):
    cfg, tools, tokenizer, processor, dataset = setup
    task = generate_tasks(len(ALL_KINDS), SEED, ALL_KINDS)[index]
    item = dataset[index]
    assert item["extra_info"]["kind"] == task.kind
    server = GoldenPlanServer(tokenizer, task, tools[0].settings.coord_frame)
    loop = PixelisToolAgentLoop(
        trainer_config=DictConfigWrap(cfg),
        server_manager=server,
        tokenizer=tokenizer,
        processor=processor,
        dataset_cls=RLHFDataset,
        data_config=DictConfigWrap(cfg.data),
        tools=ToolListWrap(tools),
    )
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
