"""The trajectory vote: which answer the n trajectories of one request agree on, and how confidently.

Trajectories are clustered by normalised answer (an option letter, a single number, or SQuAD-style
normalised text); one without an answer votes for nothing. With the `trajectory` strategy each trajectory
weighs

    w = validity · brevity · agreement
    validity  = 1 with no invalid, malformed or unexecuted call, else `invalid_weight`
    brevity   = (shortest answered length / own length) ** `brevity_power`        (response tokens)
    agreement = 1 + `agreement_weight` · max over successful neighbours of similarity · action similarity
                (action similarity: 1 - edit distance / longer length, on the sequences of executed tools)

and the confidence is the winning cluster's share of the total weight. The `majority` strategy (TTRL's rule,
kept for comparison) gives every answered trajectory weight 1. Ties go to the cluster whose best trajectory
weighs most, then to the earlier trajectory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pixelis_verl.trajectory.answers import choice_letter, levenshtein, normalize, single_number
from pixelis_verl.trajectory.parse import Trajectory

STRATEGIES = ("trajectory", "majority")


@dataclass(frozen=True)
class VoteConfig:
    strategy: str = "trajectory"
    invalid_weight: float = 0.25  # validity factor of a trajectory with any bad call
    brevity_power: float = 1.0  # 0: length does not matter
    agreement_weight: float = 1.0  # 0: neighbours do not matter

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"ttrl.vote.strategy must be one of {list(STRATEGIES)}; got {self.strategy!r}")


@dataclass(frozen=True)
class Neighbour:
    """A retrieved past experience: its action sequence, whether it succeeded, how similar its request is."""

    actions: tuple[str, ...]
    success: bool
    similarity: float


@dataclass
class VoteResult:
    answer: str | None  # the winning cluster's answer as written by its heaviest trajectory; None: no answer
    confidence: float  # the winning cluster's share of all weight, 0..1
    weights: list[float]  # per trajectory
    winners: list[int] = field(default_factory=list)  # indices of the trajectories in the winning cluster


def answer_key(answer: str) -> str:
    """What two answers must share to count as the same."""
    letter = choice_letter(answer)
    if letter is not None:
        return f"option:{letter}"
    number = single_number(answer)
    return f"number:{number:g}" if number is not None else "text:" + normalize(answer)


def bad_calls(trajectory: Trajectory) -> int:
    """Invalid, malformed and unexecuted calls: what makes a trajectory low-fidelity."""
    return trajectory.invalid_calls + trajectory.malformed_calls + trajectory.unexecuted_calls


def actions(trajectory: Trajectory) -> tuple[str, ...]:
    return tuple(step["tool"] for step in trajectory.steps if step.get("ok"))


def action_similarity(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    if not a and not b:
        return 1.0
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


def trajectory_weights(trajectories: list[Trajectory], neighbours: list[Neighbour], config: VoteConfig) -> list[float]:
    answered = [t for t in trajectories if t.pred is not None]
    if config.strategy == "majority" or not answered:
        return [float(t.pred is not None) for t in trajectories]
    shortest = min(max(t.response_tokens, 1) for t in answered)
    successful = [n for n in neighbours if n.success]
    weights = []
    for t in trajectories:
        if t.pred is None:
            weights.append(0.0)
            continue
        validity = 1.0 if bad_calls(t) == 0 else config.invalid_weight
        brevity = (shortest / max(t.response_tokens, 1)) ** config.brevity_power
        own = actions(t)
        best = max((n.similarity * action_similarity(own, n.actions) for n in successful), default=0.0)
        weights.append(validity * brevity * (1.0 + config.agreement_weight * max(best, 0.0)))
    return weights


def vote(trajectories: list[Trajectory], neighbours: list[Neighbour], config: VoteConfig) -> VoteResult:
    weights = trajectory_weights(trajectories, neighbours, config)
    clusters: dict[str, list[int]] = {}
    for i, t in enumerate(trajectories):
        if t.pred is not None and weights[i] > 0:
            clusters.setdefault(answer_key(t.pred), []).append(i)
    total = sum(weights)
    if not clusters or total <= 0:
        return VoteResult(None, 0.0, weights)

    def rank(members: list[int]) -> tuple[float, float, int]:
        return (sum(weights[i] for i in members), max(weights[i] for i in members), -members[0])

    winners = max(clusters.values(), key=rank)
    heaviest = max(winners, key=lambda i: (weights[i], -i))
    return VoteResult(trajectories[heaviest].pred, sum(weights[i] for i in winners) / total, weights, winners)
