"""Answers: extract the final answer from a response and score it against the ground truth.

The ``accuracy`` component of the pixelis reward scores with `answer_accuracy`; `compute_score` is
the same rule as a plain verl reward function (``reward.custom_reward_function``, used by
``conf/reward/accuracy.yaml`` and as the peer in ``benchmarks/reward.py``). The returned ``pred``
lets verl's validation log ``maj@N``.

How an answer is scored depends on the row (``extra_info``):
- ``answer_metric: exact`` (default): numbers match within a relative tolerance (the number may sit
  in words, "frame 17"); multiple-choice letters match the letter or the option's text when the row
  lists ``options`` (A, B, ... in order); everything else matches after SQuAD-style normalisation.
- ``answer_metric: choice``: a multiple-choice benchmark question; scored as ``exact`` with its ``options``.
- ``answer_metric: anls``: Average Normalised Levenshtein Similarity, the DocVQA/TextVQA measure for
  read text: 1 - edit distance / length, 0 below a similarity of 0.5, so a near miss earns credit.
- ``answer_metric: mra``: VSI-Bench's mean relative accuracy for numerical answers (partial credit by
  how close the number is).
When the row lists every accepted answer (``answers``, e.g. InfoVQA's), the best match over them counts.
A new metric is one function in ``ANSWER_METRICS``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from typing import Any

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_CHOICE = re.compile(r"^\(?([A-Za-z])\)?(?:[.):]\s*.*)?$", re.DOTALL)
ANLS_THRESHOLD = 0.5  # similarity below which ANLS gives 0 (the DocVQA convention)


def extract_answer(response: str) -> str | None:
    """The content of the last ``<answer>...</answer>``; None when the response never answers."""
    matches = _ANSWER_TAG.findall(response)
    return matches[-1].strip() if matches else None


def normalize(text: str) -> str:
    """Lowercase, drop punctuation and articles, collapse whitespace (SQuAD-style)."""
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def single_number(text: str) -> float | None:
    """The number in `text` when it holds exactly one ("17", "frame 17", "17 px"), else None."""
    numbers = _NUMBER.findall(text)
    return float(numbers[0]) if len(numbers) == 1 else None


def choice_letter(text: str) -> str | None:
    """ "B", "(b)", "B." or "B: a cat" -> "B"; None when `text` is not a choice."""
    match = _CHOICE.match(text.strip())
    return match.group(1).upper() if match else None


def levenshtein(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Edit distance between two sequences (of characters, or of tool names)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def anls(pred: str, truth: str, **_: Any) -> float:
    """1 - normalised edit distance of the lowercased, whitespace-collapsed strings; 0 below the threshold."""
    p, t = " ".join(pred.lower().split()), " ".join(truth.lower().split())
    if not p and not t:
        return 0.0
    similarity = 1.0 - levenshtein(p, t) / max(len(p), len(t))
    return similarity if similarity >= ANLS_THRESHOLD else 0.0


def exact(pred: str, truth: str, *, options: Sequence[str] | None = None, rel_tol: float = 1e-2, **_: Any) -> float:
    """1.0 when `pred` is the answer (see the module docstring), else 0.0."""
    letter = choice_letter(truth)
    if options and letter is not None and len(truth.strip()) <= 3:
        index = ord(letter) - ord("A")
        if choice_letter(pred) == letter:
            return 1.0
        return float(0 <= index < len(options) and normalize(pred) == normalize(str(options[index])) != "")
    a, b = single_number(pred), single_number(truth)
    if a is not None and b is not None and _NUMBER.fullmatch(truth.strip()):
        return float(abs(a - b) <= rel_tol * max(abs(b), 1e-9))
    p = normalize(pred)
    return float(p == normalize(truth) and p != "")


# VSI-Bench's confidence thresholds θ = 0.50, 0.55, ..., 0.95 as the relative errors they allow, 1 - θ, written as
# twentieths: 1 - 0.7 is 0.30000000000000004 in floats, which would let an error of exactly 0.3 pass θ = 0.7.
MRA_TOLERANCES = tuple((20 - i) / 20 for i in range(10, 20))
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")


def mra(pred: str, truth: str, **_: Any) -> float:
    """Mean relative accuracy (VSI-Bench): the share of thresholds θ with |pred - truth| / |truth| < 1 - θ.

    `pred` must hold exactly one number ("3.5", "about 3.5 m", "1,200"); none, or several, score 0.
    """
    p, t = single_number(_THOUSANDS.sub("", pred)), single_number(_THOUSANDS.sub("", truth))
    if p is None or t is None:
        return 0.0
    error = abs(p - t) / abs(t) if t != 0 else (0.0 if p == 0 else float("inf"))
    return sum(error < tolerance for tolerance in MRA_TOLERANCES) / len(MRA_TOLERANCES)


ANSWER_METRICS: dict[str, Callable[..., float]] = {"exact": exact, "choice": exact, "anls": anls, "mra": mra}


def answer_accuracy(pred: str, truth: str, extra_info: dict[str, Any] | None = None) -> float:
    """Score `pred` with the metric the row names (``extra_info["answer_metric"]``, default exact); with a
    non-empty ``extra_info["answers"]``, the best score over those accepted answers."""
    info = extra_info or {}
    name = info.get("answer_metric") or "exact"
    if name not in ANSWER_METRICS:
        raise ValueError(f"answer_metric must be one of {sorted(ANSWER_METRICS)}; got {name!r}")
    options, answers = info.get("options"), info.get("answers")
    options = list(options) if options is not None else None
    truths = [str(a) for a in answers] if answers is not None and len(answers) > 0 else [truth]
    return max(ANSWER_METRICS[name](pred, t, options=options) for t in truths)


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
    A response that is not text, or a missing ground truth, scores 0 without raising.
    """
    pred = extract_answer(solution_str) if isinstance(solution_str, str) else None
    correct = 0.0
    if pred is not None and ground_truth is not None:
        correct = answer_accuracy(pred, str(ground_truth), extra_info)
    has_answer = float(pred is not None)
    return {"score": correct + format_weight * has_answer, "acc": correct, "pred": pred or "", "has_answer": has_answer}
