"""A scored trajectory: the assistant's turns parsed from the response, plus what the tools recorded.

The reward sees one decoded response, every turn after the prompt: assistant text, tool calls and the
tool responses verl inserted between them. We split it at ChatML turn boundaries (``<|im_start|>``)
and keep only the assistant's turns, so text a tool returned (an OCR'd sign reading "<answer>...") can
never be taken for the model's answer. Each assistant turn is a thought (its text without tags) and
the ``<tool_call>`` blocks it emitted, parsed the way verl's hermes parser does; what verl drops
silently (bad JSON, a call cut off by the length limit) is counted here so the reward can see it.
The tools' own records (``extra_info["pixelis_steps"]``, see ``pixelis_verl.trajectory.steps``) say what
each executed call did.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pixelis_verl.trajectory.answers import extract_answer
from pixelis_verl.trajectory.steps import GROUP_KEY, STEPS_KEY, StepRecord, uses_pixel_ops

if TYPE_CHECKING:
    import torch
    from verl.protocol import DataProtoItem

_TURN_START = "<|im_start|>"
_SPECIAL = re.compile(r"<\|[^|>]{1,40}\|>")
_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_ANSWER_BLOCK = re.compile(r"<answer>.*?</answer>", re.DOTALL | re.IGNORECASE)
_THINK_TAGS = re.compile(r"</?think>")


@dataclass
class ToolCallText:
    """One ``<tool_call>`` block as the model wrote it."""

    name: str | None
    arguments: Any
    well_formed: bool  # a JSON object with a string "name" and an object of "arguments", as verl's parser needs


@dataclass
class Turn:
    thought: str  # the turn's text without tool calls, answer and tags
    calls: list[ToolCallText] = field(default_factory=list)


@dataclass
class Trajectory:
    turns: list[Turn]
    steps: list[StepRecord]  # what the tools executed, in order
    pred: str | None  # the last <answer> of the assistant's turns
    ground_truth: str | None
    extra_info: dict[str, Any]
    response_tokens: int
    max_response_tokens: int
    truncated_calls: int = 0  # a <tool_call> opened and never closed (cut by the length limit)
    group: dict[str, Any] | None = None  # the GRPO group's figures (pixelis_verl.agent_loop), None outside groups

    @property
    def calls(self) -> list[ToolCallText]:
        return [call for turn in self.turns for call in turn.calls]

    @property
    def malformed_calls(self) -> int:
        return sum(not call.well_formed for call in self.calls) + self.truncated_calls

    @property
    def unexecuted_calls(self) -> int:
        """Well-formed calls no tool ran: unknown tool names, calls past the per-turn or per-trajectory limits."""
        return max(0, sum(call.well_formed for call in self.calls) - len(self.steps))

    @property
    def invalid_calls(self) -> int:
        """Executed calls the model got wrong (bad arguments, a video tool without a video)."""
        return sum(step.get("error_kind") in ("argument", "modality") for step in self.steps)

    @property
    def pixel_ops(self) -> int:
        """Tool calls that produced a result."""
        return sum(bool(step.get("ok")) for step in self.steps)

    @property
    def uses_pixel_ops(self) -> bool:
        return uses_pixel_ops(self.steps)

    @property
    def group_pixel_op_rate(self) -> float:
        """The fraction of the GRPO group that used pixel operations; the trajectory's own outside a group."""
        rate = (self.group or {}).get("pixel_op_rate")
        return float(rate) if isinstance(rate, (int, float)) else float(self.uses_pixel_ops)

    def step_thoughts(self) -> list[str]:
        """The thought behind each executed step: the text of the turn whose well-formed call it was."""
        owners = [turn.thought for turn in self.turns for call in turn.calls if call.well_formed]
        return [owners[i] if i < len(owners) else "" for i in range(len(self.steps))]


def parse_call(block: str) -> ToolCallText:
    try:
        call = json.loads(block)
    except (json.JSONDecodeError, RecursionError):
        return ToolCallText(name=None, arguments=None, well_formed=False)
    if not isinstance(call, dict):
        return ToolCallText(name=None, arguments=None, well_formed=False)
    name, arguments = call.get("name"), call.get("arguments")
    well_formed = isinstance(name, str) and bool(name) and isinstance(arguments, dict)
    return ToolCallText(name=name if isinstance(name, str) else None, arguments=arguments, well_formed=well_formed)


def assistant_texts(response: Any) -> list[str]:
    """The assistant's turns of a response decoded with its special tokens, special tokens removed."""
    if not isinstance(response, str):
        return []
    texts = []
    for index, segment in enumerate(response.split(_TURN_START)):
        if index > 0:  # every later segment starts with its role line; the response starts inside an assistant turn
            role, _, segment = segment.partition("\n")
            if role.strip() != "assistant":
                continue
        texts.append(_SPECIAL.sub("", segment))
    return texts


def parse_turn(text: str) -> tuple[Turn, bool]:
    """One assistant turn, and whether it ends inside a tool call (cut by the length limit)."""
    calls = [parse_call(block) for block in _CALL.findall(text)]
    rest = _CALL.sub(" ", text)
    truncated = "<tool_call>" in rest
    rest = rest.split("<tool_call>")[0]
    thought = " ".join(_THINK_TAGS.sub(" ", _ANSWER_BLOCK.sub(" ", rest)).split())
    return Turn(thought=thought, calls=calls), truncated


def build_trajectory(
    response: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None,
    *,
    response_tokens: int,
    max_response_tokens: int,
) -> Trajectory:
    """Everything the reward components read, from a decoded response and the row's extra_info; never raises."""
    info = dict(extra_info or {})
    texts = assistant_texts(response)
    parsed = [parse_turn(text) for text in texts]
    recorded = info.get(STEPS_KEY)
    steps = [step for step in (recorded if recorded is not None else []) if isinstance(step, dict)]
    group = info.get(GROUP_KEY)
    return Trajectory(
        turns=[turn for turn, _ in parsed],
        steps=steps,
        pred=extract_answer("\n".join(texts)),
        ground_truth=None if ground_truth is None else str(ground_truth),
        extra_info=info,
        response_tokens=int(response_tokens),
        max_response_tokens=int(max_response_tokens),
        truncated_calls=sum(truncated for _, truncated in parsed),
        group=group if isinstance(group, dict) else None,
    )


def response_ids(item: DataProtoItem) -> torch.Tensor:
    """The response tokens of one rollout output, without the padding after them."""
    responses = item.batch["responses"]
    return responses[: int(item.batch["attention_mask"][-responses.shape[-1] :].sum())]


def item_trajectory(item: DataProtoItem, tokenizer: Any, max_response_tokens: int = 0) -> Trajectory:
    """The parsed trajectory of one rollout output (a row of verl's generation batch).

    `max_response_tokens` (0: the row's response width) is the length limit the efficiency term measures against.
    """
    valid_ids = response_ids(item)
    # Special tokens kept: the parser needs the turn boundaries (<|im_start|>role) to tell the
    # assistant's text from tool responses.
    response = tokenizer.decode(valid_ids, skip_special_tokens=False)
    non_tensor = item.non_tensor_batch
    extra_info = dict(non_tensor.get("extra_info") or {})
    extra_info.update(dict(non_tensor.get("tool_extra_fields") or {}))
    reward_model = non_tensor.get("reward_model")
    ground_truth = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
    return build_trajectory(
        response,
        ground_truth,
        extra_info,
        response_tokens=len(valid_ids),
        max_response_tokens=max_response_tokens or item.batch["responses"].shape[-1],
    )
