"""verl's ToolAgentLoop driven by scripted "policies": golden tool plans of synthetic tasks, replayed as tokens.

Used by the tool-loop tests and the reward tests: everything but the sampling is verl's and ours (prompt
rendering with the tool schemas, hermes parsing, our tools, images appended and re-tokenised).
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap
from verl.tools.tool_registry import initialize_tools_from_config
from verl.utils import hf_processor, hf_tokenizer
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl.workers.rollout.replica import TokenOutput

from pixelis_verl.agent_loop import PixelisToolAgentLoop
from pixelis_verl.config import compose_recipe, resolve
from pixelis_verl.data.rl_rows import ALL_KINDS, write_task_parquet
from pixelis_verl.data.synth.golden import PLANNERS, Frame
from pixelis_verl.tools.state import STORE

SEED = 11


class GoldenPlanServer:
    """Answers each `generate` with the next turn of the task's golden plan, then with the answer."""

    def __init__(self, tokenizer, task, coord_frame: str, use_tools: bool = True):
        self.tokenizer, self.task, self.coord_frame, self.use_tools = tokenizer, task, coord_frame, use_tools
        self.turns = 0
        self.request_ids: set[str] = set()
        self.state_during_run = False  # did the tools keep state for this trajectory between turns?

    async def generate(self, request_id, prompt_ids, sampling_params, image_data=None, **kwargs) -> TokenOutput:
        self.request_ids.add(request_id)
        self.state_during_run |= request_id in STORE
        frame = Frame(self.coord_frame, image_data[0].size, self.task.image.size)
        plan = PLANNERS[self.task.kind](self.task, frame) if self.use_tools else []
        if self.turns < len(plan):
            text = "".join(f"<tool_call>\n{json.dumps(call)}\n</tool_call>" for call in plan[self.turns])
        else:
            text = f"<answer>{self.task.answer}</answer>"
        self.turns += 1
        ids = self.tokenizer.encode(text + "<|im_end|>", add_special_tokens=False)
        return TokenOutput(token_ids=ids, log_probs=[0.0] * len(ids), stop_reason="completed")


@dataclass
class LoopSetup:
    cfg: Any
    tools: list
    tokenizer: Any
    processor: Any
    dataset: RLHFDataset

    def loop(self, server: GoldenPlanServer) -> PixelisToolAgentLoop:
        return PixelisToolAgentLoop(
            trainer_config=DictConfigWrap(self.cfg),
            server_manager=server,
            tokenizer=self.tokenizer,
            processor=self.processor,
            dataset_cls=RLHFDataset,
            data_config=DictConfigWrap(self.cfg.data),
            tools=ToolListWrap(self.tools),
        )


def loop_setup(run_dir: Path, monkeypatch, overrides: tuple[str, ...] = ()) -> LoopSetup:
    """The tiny recipe's tools, tokenizer and processor, and a dataset of one synthetic task of each kind."""
    cfg = resolve(compose_recipe("rft_tiny_cpu", [f"pixelis.run_dir={run_dir}", *overrides]))
    data_root = Path(cfg.pixelis.data_root)
    parquet = write_task_parquet(data_root / "train.parquet", len(ALL_KINDS), SEED, "train", ALL_KINDS, data_root)
    monkeypatch.setenv("PIXELIS_DATA_ROOT", str(data_root))  # the tool YAML's data_root reads it at load time
    tools = initialize_tools_from_config(cfg.actor_rollout_ref.rollout.multi_turn.tool_config_path)
    model = cfg.actor_rollout_ref.model.path
    tokenizer, processor = hf_tokenizer(model), hf_processor(model)
    dataset = RLHFDataset(data_files=str(parquet), tokenizer=tokenizer, config=cfg.data, processor=processor)
    return LoopSetup(cfg, tools, tokenizer, processor, dataset)
