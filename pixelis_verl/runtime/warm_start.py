"""Warm start for the tiny VLMs: a short supervised run on zoom_in traces, so the model emits tool calls.

A randomly initialised model never writes `<tool_call>`, so an RL test on it would exercise nothing but the
no-tool path. A few dozen AdamW steps on synthetic traces ([system + zoom_in schema, user: image + question] →
assistant `zoom_in` call → tool: crop + text → assistant `<answer>`) teach the format. The rate at which the model
then writes a well-formed call is measured on held-out tasks with verl's own hermes parser, sampled (temperature 1,
as in RL rollouts) and greedy, and recorded in `warm_start.json`.

The traces use the real pieces: tasks from `pixelis_verl.data.synth.zoom_tasks`, the schema of the `zoom_in` tool
for the family's coordinate frame, crops made by `pixelis_verl.ops.zoom` and the tool's own result text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from tqdm import tqdm

from pixelis_verl.data.rl_rows import SYSTEM_PROMPT
from pixelis_verl.data.synth.zoom_tasks import ZoomTask, generate_zoom_tasks
from pixelis_verl.ops.zoom import fit_size, zoom
from pixelis_verl.runtime.processor import ImageBudget
from pixelis_verl.tools.base import PixelToolConfig
from pixelis_verl.tools.coords import get_coord_frame
from pixelis_verl.tools.zoom import TOOL_NAME, zoom_in_schema

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("PIXELIS_LOGGING_LEVEL", "WARN").upper())

# The RL rows' own system prompt and canvas (pixelis_verl.data.rl_rows), so the warm-started model meets in RL
# exactly the prompts it learned the call format on; a generic prompt keeps it from keying on one string only.
SYSTEM_PROMPTS = (SYSTEM_PROMPT, "You are a helpful assistant.")
HELD_OUT_SEED_OFFSET = 10_000  # eval tasks come from a different task stream than the training tasks


@dataclass
class WarmStartConfig:
    seed: int = 0
    num_train_tasks: int = 256
    batch_size: int = 8
    lr: float = 5e-3  # high on purpose: ~1.5M parameters, one output format, a budget of a few hundred steps
    warmup_steps: int = 10
    decay_steps: int = 180  # cosine decay to 10% of lr over these steps, then constant; 3e-3 or 150 steps did worse
    max_steps: int = 300
    min_steps: int = 120  # no check of the rate before this
    eval_every: int = 30  # steps between checks; training stops at the first check that meets the target
    target_sampled_rate: float = 0.8
    # Optional wall-clock cap, checked at each rate check. Off by default: the step cap bounds the time on an idle
    # machine (~3 min per family on one core), and a clock would make the built model depend on the machine's load.
    time_budget_s: float | None = None
    n_eval: int = 32
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


def tool_schemas(coord_frame: str) -> list[dict[str, Any]]:
    """The zoom_in schema exactly as verl's agent loop renders it (pydantic round trip drops unknown keys)."""
    from verl.tools.schemas import OpenAIFunctionToolSchema

    schema = OpenAIFunctionToolSchema.model_validate(zoom_in_schema(coord_frame))
    return [schema.model_dump(exclude_unset=True, exclude_none=True)]


def system_prompt(index: int) -> str:
    return SYSTEM_PROMPTS[index % len(SYSTEM_PROMPTS)]


def prompt_messages(task: ZoomTask, system: str) -> list[dict[str, Any]]:
    # The RL rows' user turn is "<image>\n" + question, which verl's RLHFDataset splits into these two blocks.
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "\n" + task.question}]},
    ]


def zoom_trace(task: ZoomTask, system: str, coord_frame: str, budget: ImageBudget) -> tuple[list, list]:
    """(messages, images) of one golden trace: zoom into the target with some context, then answer.

    `budget` is how the model's processor sizes images: the box is given in the frame of the image as shown, and the
    crop is made as the zoom_in tool makes it with its default settings.
    """
    source = task.image.size
    shown = fit_size(*source, min_pixels=budget.min_pixels, max_pixels=budget.max_pixels, factor=budget.factor)
    x1, y1, x2, y2 = task.target_box
    pad = max(8, (x2 - x1) // 2, (y2 - y1) // 2)  # context around the target, in source pixels
    padded = (max(x1 - pad, 0), max(y1 - pad, 0), min(x2 + pad, source[0]), min(y2 + pad, source[1]))
    tool = PixelToolConfig(coord_frame=coord_frame, size_factor=budget.factor)  # zoom_in's defaults
    crop, used = zoom(
        task.image,
        padded,
        min_pixels=tool.min_pixels,
        max_pixels=tool.max_pixels,
        size_factor=tool.size_factor,
        max_aspect_ratio=tool.max_aspect_ratio,
    )
    extent = get_coord_frame(coord_frame).extent(shown, source)
    box = [round(v * extent[i % 2] / source[i % 2]) for i, v in enumerate(padded)]
    call = {"name": TOOL_NAME, "arguments": {"bbox_2d": box}}
    tool_text = (  # what ZoomInTool answers
        f"Zoomed into [{', '.join(map(str, used))}] (source pixels) of image 0; crop is {crop.width}x{crop.height}."
    )
    messages = prompt_messages(task, system) + [
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": call}]},
        {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": tool_text}]},
        {"role": "assistant", "content": f"<answer>{task.answer}</answer>"},
    ]
    return messages, [task.image, crop]


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


def is_well_formed_zoom_call(calls: list) -> bool:
    """A zoom_in call whose arguments parse as JSON with bbox_2d = four numbers."""
    for call in calls:
        try:
            args = json.loads(call.arguments)
        except (TypeError, ValueError):
            continue
        box = args.get("bbox_2d") if isinstance(args, dict) else None
        if call.name == TOOL_NAME and isinstance(box, list) and len(box) == 4:
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in box):
                return True
    return False


@torch.no_grad()
def well_formed_rates(model: Any, processor: Any, tasks: list[ZoomTask], tools: list, max_new_tokens: int) -> dict:
    """Fraction of held-out prompts whose reply holds a well-formed zoom_in call, greedy and sampled at T=1.

    Replies are parsed by verl's hermes ToolParser, the parser ToolAgentLoop uses. Vision placeholder tokens are
    suppressed, as the HF rollout does, because a sampled `<|image_pad|>` breaks M-RoPE position ids.
    """
    from verl.experimental.agent_loop import tool_parser

    parser = tool_parser.ToolParser.get_tool_parser("hermes", processor.tokenizer)
    tokenizer = processor.tokenizer
    suppress = tokenizer.convert_tokens_to_ids(["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"])
    prompts = [prompt_messages(t, system_prompt(i)) for i, t in enumerate(tasks)]
    texts = [processor.apply_chat_template(p, tools=tools, tokenize=False, add_generation_prompt=True) for p in prompts]
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
                ok += is_well_formed_zoom_call(calls)
            rates[mode] = ok / len(tasks)
    finally:
        parser_logger.setLevel(level)
    model.train()
    return rates


def warm_start(model: Any, processor: Any, coord_frame: str, config: WarmStartConfig) -> WarmStartReport:
    """Train `model` in place on zoom_in traces until the sampled well-formed rate reaches the target.

    `coord_frame` is how the family grounds boxes (`absolute_resized` for Qwen2.5-VL, `relative_1000` for Qwen3-VL).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(config.num_threads)
    try:
        return _train(model, processor, coord_frame, config)
    finally:
        torch.set_num_threads(threads)


def _train(model: Any, processor: Any, coord_frame: str, config: WarmStartConfig) -> WarmStartReport:
    torch.manual_seed(config.seed)
    start = time.monotonic()
    tools = tool_schemas(coord_frame)
    train_tasks = generate_zoom_tasks(config.num_train_tasks, config.seed)
    eval_tasks = generate_zoom_tasks(config.n_eval, config.seed + HELD_OUT_SEED_OFFSET)
    budget = ImageBudget.of(processor)
    traces = [zoom_trace(t, system_prompt(i), coord_frame, budget) for i, t in enumerate(train_tasks)]
    samples = [encode_trace(processor, messages, images, tools) for messages, images in traces]
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
