"""Per-token loss weights: more weight on the tokens that name a tool, carry its argument values, or give the answer.

In a CoTA trace most assistant tokens are prose; the few that decide whether a call works are the tool's
name and the argument values (a box, a point, a mask id, a frame range). The masked imitation loss
(`pixelis_verl.sft.loss`) multiplies each assistant token's log-likelihood by its weight here:
`tool_name` on the name's tokens, `argument_value` on each value's tokens, `answer` on the tokens of the final
answer inside `<answer></answer>`, 1 on every other token. JSON punctuation and argument keys stay at 1: they are
the grammar, learnt quickly from repetition. The answer weight defaults to 1 (the paper's loss); raising it matters
when a trace is long and its answer is one token read off the last tool image: once the template is learnt that
token is a small share of the loss, so a small model learns to call long before it learns to read
(`docs/results.md` section 2).

Calls are found in the token ids, not in the messages, so the weights land on the tokens the model is
trained on whatever the chat template did: between the `<tool_call>` and `</tool_call>` tokens of the
assistant turns (`loss_mask == 1`), the call's JSON is decoded, the character spans of the name and of
each argument value are found with Python's own JSON decoder, and a token is weighted when its
characters overlap a span. A call whose JSON does not parse keeps weight 1 (a malformed call in the data
should not be learnt harder).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import torch

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
_DECODER = json.JSONDecoder()
_KEY = {key: re.compile(rf'"{key}"\s*:\s*') for key in ("name", "arguments")}

Span = tuple[int, int]  # [start, end) character offsets


@dataclass(frozen=True)
class TokenWeights:
    tool_name: float = 2.0  # weight of the tokens of a call's tool name
    argument_value: float = 2.0  # weight of the tokens of each argument value
    answer: float = 1.0  # weight of the tokens of the final answer, between <answer> and </answer>

    def __post_init__(self) -> None:
        for name in ("tool_name", "argument_value", "answer"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"data.token_weights.{name} must be a number >= 0; got {getattr(self, name)!r}")


@dataclass
class CallTokens:
    """Where one assistant tool call sits in a token sequence."""

    name: list[int]  # token positions of the tool name
    arguments: dict[str, tuple[Any, list[int]]]  # argument -> (its value, token positions of the value)


def call_spans(text: str) -> tuple[Span | None, list[tuple[str, Any, Span]]]:
    """(name span, [(argument, value, value span)]) of the hermes call JSON in `text`; (None, []) if unparseable."""
    try:
        start = text.index("{")
        call, _ = _DECODER.raw_decode(text, start)
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            return None, []
        name = _value_span(text, _KEY["name"].search(text, start + 1))
        arguments = _KEY["arguments"].search(text, start + 1)
        return name, _argument_spans(text, arguments.end()) if arguments else []
    except (ValueError, AttributeError):
        return None, []


def _value_span(text: str, match: re.Match[str] | None) -> Span:
    if match is None:
        raise ValueError("key not found")
    _, end = _DECODER.raw_decode(text, match.end())
    return match.end(), end


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _argument_spans(text: str, pos: int) -> list[tuple[str, Any, Span]]:
    """(key, value, span) of each value of the arguments object at `pos` (a JSON-string `arguments` is one value)."""
    if text[pos] != "{":
        value, end = _DECODER.raw_decode(text, pos)
        return [("", value, (pos, end))]
    spans = []
    pos = _skip_space(text, pos + 1)
    while text[pos] != "}":
        key, pos = _DECODER.raw_decode(text, pos)
        pos = _skip_space(text, pos)
        if text[pos] != ":":
            raise ValueError("expected ':'")
        start = _skip_space(text, pos + 1)
        value, pos = _DECODER.raw_decode(text, start)
        spans.append((str(key), value, (start, pos)))
        pos = _skip_space(text, pos)
        if text[pos] == ",":
            pos = _skip_space(text, pos + 1)
    return spans


def _token_offsets(tokenizer: Any, ids: list[int]) -> list[int]:
    """End offset of each token in `decode(ids)`: the decoded length of every prefix."""
    return [len(tokenizer.decode(ids[: k + 1], clean_up_tokenization_spaces=False)) for k in range(len(ids))]


def _tokens_over(span: Span, ends: list[int], first: int) -> list[int]:
    """Positions (offset by `first`) of the tokens whose characters overlap `span`."""
    return [first + k for k, end in enumerate(ends) if (ends[k - 1] if k else 0) < span[1] and span[0] < end]


def tool_calls(input_ids: torch.Tensor, loss_mask: torch.Tensor, tokenizer: Any) -> list[CallTokens]:
    """Every parseable tool call of the assistant turns (`loss_mask == 1`), with the positions of its parts."""
    ids, mask = input_ids.tolist(), loss_mask.tolist()
    open_id, close_id = tokenizer.convert_tokens_to_ids(CALL_OPEN), tokenizer.convert_tokens_to_ids(CALL_CLOSE)
    calls, pos = [], 0
    while True:
        try:
            start = ids.index(open_id, pos) + 1
            end = ids.index(close_id, start)
        except ValueError:
            return calls
        pos = end + 1
        if not mask[start]:  # the system prompt's format instructions, a tool response quoting a call
            continue
        body = ids[start:end]
        name, arguments = call_spans(tokenizer.decode(body, clean_up_tokenization_spaces=False))
        if name is None:
            continue
        ends = _token_offsets(tokenizer, body)
        calls.append(
            CallTokens(
                _tokens_over(name, ends, start),
                {key: (value, _tokens_over(span, ends, start)) for key, value, span in arguments},
            )
        )


def answer_tokens(input_ids: torch.Tensor, loss_mask: torch.Tensor, tokenizer: Any) -> list[int]:
    """Positions of the tokens of the last `<answer>...</answer>` in an assistant turn (`loss_mask == 1`); [] if none.

    A token counts when its characters overlap the text between the tags: a tokenizer that merges ">blue" still
    weights that token.
    """
    ids, mask = input_ids.tolist(), loss_mask.tolist()
    end = len(ids)
    while end > 0:  # assistant turns from the last: the answer closes the trace
        while end > 0 and not mask[end - 1]:
            end -= 1
        start = end
        while start > 0 and mask[start - 1]:
            start -= 1
        if start == end:
            return []
        text = tokenizer.decode(ids[start:end], clean_up_tokenization_spaces=False)
        opened = text.rfind(ANSWER_OPEN)
        closed = text.find(ANSWER_CLOSE, opened + len(ANSWER_OPEN))
        if opened >= 0 and closed >= 0:
            return _tokens_over((opened + len(ANSWER_OPEN), closed), _token_offsets(tokenizer, ids[start:end]), start)
        end = start
    return []


def token_weights(
    calls: list[CallTokens], length: int, weights: TokenWeights, answer: list[int] | None = None
) -> torch.Tensor:
    """A float weight per token of a sequence of `length` with these `tool_calls` and `answer` token positions (1
    elsewhere)."""
    result = torch.ones(length, dtype=torch.float32)
    for call in calls:
        result[call.name] = weights.tool_name
        for _, positions in call.arguments.values():
            result[positions] = weights.argument_value
    if answer:
        result[answer] = weights.answer
    return result
