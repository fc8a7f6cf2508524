"""Answer accuracy: extract the final answer from a response and compare it with the ground truth.

Used directly as verl's ``reward.custom_reward_function`` (``compute_score``) until the dual reward
manager lands, and later as its accuracy component. The returned ``pred`` lets verl's validation
log ``maj@N``.
"""

from __future__ import annotations

import re
import string
from typing import Any

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NUMBER = re.compile(r"^[-+]?\d+(?:\.\d+)?$")


def extract_answer(response: str) -> str | None:
    """The content of the last ``<answer>...</answer>``; None when the response never answers."""
    matches = _ANSWER_TAG.findall(response)
    return matches[-1].strip() if matches else None


def normalize(text: str) -> str:
    """Lowercase, drop punctuation and articles, collapse whitespace (SQuAD-style)."""
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def answers_match(pred: str, truth: str, rel_tol: float = 1e-2) -> bool:
    """Numbers match within a relative tolerance; everything else after normalisation."""
    p, t = normalize(pred), normalize(truth)
    if _NUMBER.match(pred.strip()) and _NUMBER.match(truth.strip()):
        a, b = float(pred), float(truth)
        return abs(a - b) <= rel_tol * max(abs(b), 1e-9)
    return p == t and p != ""


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict[str, Any] | None = None,
    format_weight: float = 0.0,
    **_: Any,
) -> dict[str, Any]:
    """verl reward-function signature: ``score = acc + format_weight * has_answer``.

    ``format_weight`` is a small shaping term (DeepEyes uses one too): early policies rarely answer
    correctly, and without it every trajectory of a group scores 0 and GRPO has no signal at all.
    """
    pred = extract_answer(solution_str)
    correct = float(pred is not None and answers_match(pred, str(ground_truth)))
    has_answer = float(pred is not None)
    return {"score": correct + format_weight * has_answer, "acc": correct, "pred": pred or "", "has_answer": has_answer}
