"""Warm start for the tiny VLMs: a short supervised run on golden tool traces, so the model emits tool calls.

A randomly initialised model never writes `<tool_call>`, so an RL test on it would exercise nothing but the
no-tool path. A few hundred AdamW steps on golden traces of the synthetic pixel tasks ([system + the six tool
schemas, user: image + question] -> assistant tool calls -> tool: the tools' real responses -> assistant
`<answer>`) teach the call format for every tool. The rate at which the model then writes a well-formed call is
measured on held-out tasks with verl's own hermes parser, sampled (temperature 1, as in RL rollouts) and greedy,
and recorded in `warm_start.json`.

The traces use the real pieces: tasks from `pixelis_verl.data.synth.tasks`, the family's tool YAML (its
coordinate frame and schemas), and responses made by executing the tools (`pixelis_verl.data.synth.golden`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from pixelis_verl.data.rl_rows import ALL_KINDS, SYSTEM_PROMPT
from pixelis_verl.data.synth.golden import golden_trace, prompt_messages
from pixelis_verl.data.synth.tasks import TASK_TOOLS, PixelTask, generate_tasks
from pixelis_verl.ops.sizes import ImageBudget
from pixelis_verl.tools.session import load_tools, tool_schemas

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("PIXELIS_LOGGING_LEVEL", "WARN").upper())

# The RL rows' own system prompt and canvas (pixelis_verl.data.rl_rows), so the warm-started model meets in RL
# exactly the prompts it learned the call format on; a generic prompt keeps it from keying on one string only.
SYSTEM_PROMPTS = (SYSTEM_PROMPT, "You are a helpful assistant.")
HELD_OUT_SEED_OFFSET = 10_000  # eval tasks come from a different task stream than the training tasks


@dataclass
class WarmStartConfig:
    seed: int = 0
    num_train_tasks: int = 140  # 20 per task kind
    batch_size: int = 6
    lr: float = 5e-3  # high on purpose: ~1.5M parameters, one output format, a budget of a few hundred steps
    warmup_steps: int = 10
    decay_steps: int = 150  # cosine decay to 10% of lr over these steps, then constant
    # Traces are ~700-1500 tokens (2-3 tool schemas in the prompt, tool images in the replies): a step costs ~3 s
    # on one core, so the step cap is what bounds `make install`. The sampled rate was ~0.5-0.6 after 120-150
    # steps of 8 traces (six tools; one zoom_in tool alone reached 0.8 in 120-300 steps).
    max_steps: int = 180
    min_steps: int = 90  # no check of the rate before this
    eval_every: int = 30  # steps between checks; training stops at the first check that meets the target
    target_sampled_rate: float = 0.6
    # Optional wall-clock cap, checked at each rate check. Off by default: the step cap bounds the time, and a
    # clock would make the built model depend on the machine's load.
    time_budget_s: float | None = None
    n_eval: int = 14  # 2 per task kind
    max_new_tokens: int = 48
    # Intra-op threads. On a shared 2-core machine, 2 threads ran a step 10x slower than 1 whenever another process
    # held a core (8 s vs 0.8 s, measured); the CLI builds the two families in parallel processes instead.
    num_threads: int = 1


@dataclass
class WarmStartReport:
    steps: int
    seconds: float
    seed: int
    final_loss: float
    greedy_well_formed_rate: float
    sampled_well_formed_rate: float
    n_eval: int
    target_sampled_rate: float


def task_schemas(task: PixelTask, tools: dict[str, Any]) -> list[dict[str, Any]]:
    """The schemas a row of the task's kind offers (the RL rows select their tools; see data/synth/tasks.py)."""
    schemas = tool_schemas(tools)
    return [schemas[name] for name in TASK_TOOLS[task.kind]]


def system_prompt(index: int) -> str:
    return SYSTEM_PROMPTS[index % len(SYSTEM_PROMPTS)]


def golden_traces(
    tasks: list[PixelTask], tools: dict[str, Any], budget: ImageBudget, data_root: Path
) -> list[tuple[list, list]]:
    """(messages, images) of each task's golden trace, system prompts alternating; videos go under data_root."""
    return [golden_trace(t, i, system_prompt(i), tools, budget, data_root) for i, t in enumerate(tasks)]


def assistant_label_mask(input_ids: list[int], header: list[int], end_id: int) -> list[bool]:
    """True on every token an assistant turn generates: after `<|im_start|>assistant\\n`, up to `<|im_end|>`."""
    mask = [False] * len(input_ids)
    i = 0
    while i < len(input_ids):
        if input_ids[i : i + len(header)] == header:
            i += len(header)
            while i < len(input_ids):
                mask[i] = True
                i += 1
                if input_ids[i - 1] == end_id:
                    break
        else:
            i += 1
    return mask


def encode_trace(processor: Any, messages: list, images: list, tools: list) -> dict[str, torch.Tensor]:
    tokenizer = processor.tokenizer
    text = processor.apply_chat_template(messages, tools=tools, tokenize=False)
    enc = processor(text=[text], images=images, return_tensors="pt")
    ids = enc["input_ids"][0].tolist()
    header = tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False)
    mask = torch.tensor(assistant_label_mask(ids, header, tokenizer.convert_tokens_to_ids("<|im_end|>")))
    enc["labels"] = torch.where(mask, enc["input_ids"][0], -100)[None]
    return dict(enc)


def collate(samples: list[dict[str, torch.Tensor]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch; images of all samples are concatenated in order, as Qwen-VL models expect."""
    length = max(s["input_ids"].shape[1] for s in samples)
    fills = {"input_ids": pad_id, "attention_mask": 0, "mm_token_type_ids": 0, "labels": -100}
    batch: dict[str, Any] = {}
    for key, fill in fills.items():
        if key not in samples[0]:
            continue
        rows = []
        for s in samples:
            pad = torch.full((1, length - s[key].shape[1]), fill, dtype=s[key].dtype)
            rows.append(torch.cat([s[key], pad], dim=1))
        batch[key] = torch.cat(rows)
    batch["pixel_values"] = torch.cat([s["pixel_values"] for s in samples])
    batch["image_grid_thw"] = torch.cat([s["image_grid_thw"] for s in samples])
    return batch


def is_well_formed_call(calls: list, tool_names: set[str]) -> bool:
    """A call of a known tool whose arguments parse as a JSON object, boxes and points as lists of numbers."""
    for call in calls:
        try:
            args = json.loads(call.arguments)
        except (TypeError, ValueError):
            continue
        if call.name not in tool_names or not isinstance(args, dict):
            continue
        shapes = {"bbox_2d": 4, "point_2d": 2}
        if all(_numbers(args[key], n) for key, n in shapes.items() if key in args):
            return True
    return False


def _numbers(value: Any, count: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == count
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )


@torch.no_grad()
def well_formed_rates(
    model: Any, processor: Any, tasks: list[PixelTask], tools: dict[str, Any], max_new_tokens: int
) -> dict:
    """Fraction of held-out prompts whose reply holds a well-formed tool call, greedy and sampled at T=1.

    Replies are parsed by verl's hermes ToolParser, the parser ToolAgentLoop uses. Vision placeholder tokens are
    suppressed, as the HF rollout does, because a sampled `<|image_pad|>` breaks M-RoPE position ids.
    """
    from verl.experimental.agent_loop import tool_parser

    parser = tool_parser.ToolParser.get_tool_parser("hermes", processor.tokenizer)
    names = set(tools)
    tokenizer = processor.tokenizer
    suppress = tokenizer.convert_tokens_to_ids(["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"])
    prompts = [prompt_messages(t, system_prompt(i)) for i, t in enumerate(tasks)]
    texts = [
        processor.apply_chat_template(p, tools=task_schemas(t, tools), tokenize=False, add_generation_prompt=True)
        for p, t in zip(prompts, tasks, strict=True)
    ]
    enc = processor(
        text=texts, images=[[t.image] for t in tasks], return_tensors="pt", padding=True, padding_side="left"
    )
    model.eval()
    rates = {}
    parser_logger = logging.getLogger(tool_parser.__file__)  # malformed JSON is expected here, not an error
    level = parser_logger.level
    parser_logger.setLevel(logging.CRITICAL)
    try:
        for mode, sample in (("greedy", False), ("sampled", True)):
            out = model.generate(
                **enc,
                do_sample=sample,
                temperature=1.0 if sample else None,
                top_k=0 if sample else None,
                top_p=1.0 if sample else None,
                max_new_tokens=max_new_tokens,
                suppress_tokens=suppress,
                pad_token_id=tokenizer.pad_token_id,
            )
            replies = out[:, enc["input_ids"].shape[1] :].tolist()
            ok = 0
            for reply in replies:
                _, calls = asyncio.run(parser.extract_tool_calls(reply))
                ok += is_well_formed_call(calls, names)
            rates[mode] = ok / len(tasks)
    finally:
        parser_logger.setLevel(level)
    model.train()
    return rates


def warm_start(model: Any, processor: Any, tool_config: Path, config: WarmStartConfig) -> WarmStartReport:
    """Train `model` in place on golden traces until the sampled well-formed rate reaches the target.

    `tool_config` is the family's tool YAML (conf/tools/): its coordinate frame and schemas are the family's.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(config.num_threads)
    try:
        with tempfile.TemporaryDirectory(prefix="pixelis-warm-start-") as data_root:
            return _train(model, processor, load_tools(tool_config, data_root), Path(data_root), config)
    finally:
        torch.set_num_threads(threads)


def _train(
    model: Any, processor: Any, tools: dict[str, Any], data_root: Path, config: WarmStartConfig
) -> WarmStartReport:
    torch.manual_seed(config.seed)
    start = time.monotonic()
    train_tasks = generate_tasks(config.num_train_tasks, config.seed, ALL_KINDS)
    eval_tasks = generate_tasks(config.n_eval, config.seed + HELD_OUT_SEED_OFFSET, ALL_KINDS)
    traces = golden_traces(train_tasks, tools, ImageBudget.of(processor), data_root)
    samples = [
        encode_trace(processor, messages, images, task_schemas(task, tools))
        for task, (messages, images) in zip(train_tasks, traces, strict=True)
    ]
    pad_id = processor.tokenizer.pad_token_id
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, config))
    batches = _shuffled_batches(len(samples), config.batch_size, torch.Generator().manual_seed(config.seed))
    model.train()
    progress = tqdm(total=config.max_steps, desc="warm start", disable=None, leave=False)
    for step, indices in enumerate(batches, start=1):
        loss = model(**collate([samples[j] for j in indices], pad_id)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        progress.update()
        if step == config.max_steps or (step >= config.min_steps and step % config.eval_every == 0):
            rates = well_formed_rates(model, processor, eval_tasks, tools, config.max_new_tokens)
            logger.info("warm start step %d loss %.3f rates %s", step, loss.item(), rates)
            met = rates["sampled"] >= config.target_sampled_rate
            out_of_time = config.time_budget_s is not None and time.monotonic() - start > config.time_budget_s
            if met or out_of_time or step == config.max_steps:
                if not met:
                    logger.warning("warm start stopped below the target sampled rate: %s", rates)
                progress.close()
                return _report(config, step, start, loss.item(), rates)
    raise AssertionError("unreachable: the batch stream is endless")


def _shuffled_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[list[int]]:
    """Endless epochs of shuffled index batches; the tail of an epoch that does not fill a batch is dropped."""
    if n < batch_size:
        raise ValueError(f"warm start: {n} training traces cannot fill a batch of {batch_size}")
    while True:
        order = torch.randperm(n, generator=generator).tolist()
        yield from (order[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size))


def _lr_factor(step: int, config: WarmStartConfig) -> float:
    """Linear warmup, cosine decay to 10%, then 10%: a quiet end is what makes sampled outputs well formed."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.decay_steps - config.warmup_steps))
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def _report(config: WarmStartConfig, step: int, start: float, loss: float, rates: dict) -> WarmStartReport:
    model_report = WarmStartReport(
        steps=step,
        seconds=round(time.monotonic() - start, 1),
        seed=config.seed,
        final_loss=round(loss, 4),
        greedy_well_formed_rate=rates["greedy"],
        sampled_well_formed_rate=rates["sampled"],
        n_eval=config.n_eval,
        target_sampled_rate=config.target_sampled_rate,
    )
    logger.info("warm start done: %s", asdict(model_report))
    return model_report
