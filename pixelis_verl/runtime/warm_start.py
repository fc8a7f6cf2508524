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
from dataclasses import asdict, dataclass
from typing import Any

import torch

from pixelis_verl.data.synth.zoom_tasks import ZoomTask, generate_zoom_tasks
from pixelis_verl.ops.zoom import fit_size, zoom
from pixelis_verl.tools.zoom import TOOL_NAME, zoom_in_schema

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("PIXELIS_LOGGING_LEVEL", "WARN").upper())

SYSTEM_PROMPTS = (
    "You are a helpful assistant.",
    "You are a visual assistant. Zoom in on small details before you answer. "
    "Give the final answer inside <answer></answer>.",
)
CANVAS_SIZE = (448, 448)  # the processor shows at most 64 merged patches (~224-256 px) whatever the canvas
HELD_OUT_SEED_OFFSET = 10_000  # eval tasks come from a different task stream than the training tasks


@dataclass
class WarmStartConfig:
    seed: int = 0
    num_train_tasks: int = 192
    batch_size: int = 8
    lr: float = 3e-3  # high on purpose: ~1.5M parameters, a fixed output format, a time budget of seconds
    warmup_steps: int = 5
    max_steps: int = 400
    eval_every: int = 40  # steps between checks of the sampled rate; training stops once it reaches the target
    target_sampled_rate: float = 0.8
    time_budget_s: float = 90.0  # training stops at the next check past this
    n_eval: int = 16
    max_new_tokens: int = 48


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


def _box_in_frame(box: tuple[float, ...], coord_frame: str, shown: tuple[int, int], source: tuple[int, int]) -> list:
    if coord_frame == "relative_1000":
        extent = (1000.0, 1000.0)
    elif coord_frame == "absolute_resized":
        extent = shown
    else:
        extent = source
    sx, sy = extent[0] / source[0], extent[1] / source[1]
    return [round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy)]


def prompt_messages(task: ZoomTask, system: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": task.question}]},
    ]


def zoom_trace(task: ZoomTask, system: str, coord_frame: str, image_kwargs: dict[str, int]) -> tuple[list, list]:
    """(messages, images) of one golden trace: zoom into the target with some context, then answer."""
    source = task.image.size
    shown = fit_size(*source, **image_kwargs)
    x1, y1, x2, y2 = task.target_box
    pad = max(8, (x2 - x1) // 2, (y2 - y1) // 2)  # context around the target, in source pixels
    padded = (max(x1 - pad, 0), max(y1 - pad, 0), min(x2 + pad, source[0]), min(y2 + pad, source[1]))
    crop, used = zoom(task.image, padded, size_factor=image_kwargs["factor"], **_pixels(image_kwargs))
    call = {"name": TOOL_NAME, "arguments": {"bbox_2d": _box_in_frame(padded, coord_frame, shown, source)}}
    tool_text = f"Zoomed into [{', '.join(map(str, used))}] (source pixels) of image 0; crop is {crop.width}x{crop.height}."
    messages = prompt_messages(task, system) + [
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": call}]},
        {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": tool_text}]},
        {"role": "assistant", "content": f"<answer>{task.answer}</answer>"},
    ]
    return messages, [task.image, crop]


def _pixels(image_kwargs: dict[str, int]) -> dict[str, int]:
    return {"min_pixels": image_kwargs["min_pixels"], "max_pixels": image_kwargs["max_pixels"]}


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


def collate(samples: list[dict[str, torch.Tensor]], pad_id: int, left: bool = False) -> dict[str, torch.Tensor]:
    """Pad a batch; images of all samples are concatenated in order, as Qwen-VL models expect."""
    length = max(s["input_ids"].shape[1] for s in samples)
    fills = {"input_ids": pad_id, "attention_mask": 0, "mm_token_type_ids": 0, "labels": -100}
    batch: dict[str, Any] = {}
    for key, fill in fills.items():
        if key not in samples[0]:
            continue
        rows = []
        for s in samples:
            pad = torch.full((1, length - s[key].shape[1]), fill, dtype=s[key].dtype)
            rows.append(torch.cat([pad, s[key]] if left else [s[key], pad], dim=1))
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
    texts = [
        processor.apply_chat_template(prompt_messages(t, SYSTEM_PROMPTS[i % 2]), tools=tools, tokenize=False,
                                      add_generation_prompt=True)
        for i, t in enumerate(tasks)
    ]  # fmt: skip
    enc = processor(text=texts, images=[[t.image] for t in tasks], return_tensors="pt", padding=True, padding_side="left")
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


def warm_start(
    model: Any, processor: Any, coord_frame: str, image_kwargs: dict[str, int], config: WarmStartConfig
) -> WarmStartReport:
    """Train `model` in place on zoom_in traces until the sampled well-formed rate reaches the target or time is up.

    `image_kwargs` are the processor's min_pixels/max_pixels and its resize factor (patch size x merge size).
    """
    torch.manual_seed(config.seed)
    start = time.monotonic()
    tools = tool_schemas(coord_frame)
    train_tasks = generate_zoom_tasks(config.num_train_tasks, config.seed, canvas_size=CANVAS_SIZE)
    eval_tasks = generate_zoom_tasks(config.n_eval, config.seed + HELD_OUT_SEED_OFFSET, canvas_size=CANVAS_SIZE)
    samples = [
        encode_trace(processor, *zoom_trace(t, SYSTEM_PROMPTS[i % 2], coord_frame, image_kwargs), tools)
        for i, t in enumerate(train_tasks)
    ]
    pad_id = processor.tokenizer.pad_token_id
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, config))
    generator = torch.Generator().manual_seed(config.seed)
    model.train()
    step, loss_value, rates = 0, math.nan, {"greedy": 0.0, "sampled": 0.0}
    while step < config.max_steps:
        order = torch.randperm(len(samples), generator=generator).tolist()
        for i in range(0, len(order) - config.batch_size + 1, config.batch_size):
            batch = collate([samples[j] for j in order[i : i + config.batch_size]], pad_id)
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            loss_value, step = loss.item(), step + 1
            if step % config.eval_every == 0 or step == config.max_steps:
                rates = well_formed_rates(model, processor, eval_tasks, tools, config.max_new_tokens)
                logger.info("warm start step %d loss %.3f rates %s", step, loss_value, rates)
                out_of_time = time.monotonic() - start > config.time_budget_s
                if rates["sampled"] >= config.target_sampled_rate or out_of_time or step == config.max_steps:
                    return _report(config, step, start, loss_value, rates)
    return _report(config, step, start, loss_value, rates)


def _lr_factor(step: int, config: WarmStartConfig) -> float:
    """Linear warmup, then cosine decay to 10% at max_steps: a quiet end is what makes sampled outputs well formed."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
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
