"""The gate and the update batch: which requests teach, and which of their trajectories are pushed towards."""

from pixelis_verl.trajectory.parse import Trajectory
from pixelis_verl.ttrl.config import GateConfig
from pixelis_verl.ttrl.gate import gated, select_update
from pixelis_verl.ttrl.vote import VoteConfig, vote


def _trajectory(pred, tokens, invalid=0) -> Trajectory:
    steps = [{"tool": "zoom_in", "ok": True, "error_kind": None}]
    steps += [{"tool": "zoom_in", "ok": False, "error_kind": "argument"} for _ in range(invalid)]
    return Trajectory([], steps, pred, None, {}, tokens, 1024)


def test_positives_are_the_shortest_clean_winners_and_negatives_the_rest():
    group = [
        _trajectory("cat", 300),  # winner, long
        _trajectory("cat", 90, invalid=1),  # winner, shortest but sloppy
        _trajectory("cat", 120),  # winner, short and clean
        _trajectory("dog", 100),  # loser
        _trajectory(None, 1024),  # no answer
    ]
    result = vote(group, [], VoteConfig(strategy="majority"))
    assert result.winners == [0, 1, 2]
    selection = select_update(group, result, positives=2, label_weight=1.0)
    assert selection.labels == [1.0, 0.0, 1.0, 0.0, 0.0]  # clean before short: 120, then 300 tokens
    assert selection.trained == [True, False, True, True, True]  # the sloppy winner is left out of the loss


def test_the_gate_needs_confidence_and_enough_answers():
    group = [_trajectory("cat", 100), _trajectory("cat", 100), _trajectory("dog", 100), _trajectory(None, 100)]
    result = vote(group, [], VoteConfig(strategy="majority"))  # confidence 2/3
    assert gated(result, group, GateConfig(threshold=0.6, min_answered=2))
    assert not gated(result, group, GateConfig(threshold=0.7, min_answered=2))
    assert not gated(result, group, GateConfig(threshold=0.6, min_answered=4))
    silent = [_trajectory(None, 100)] * 3
    assert not gated(vote(silent, [], VoteConfig()), silent, GateConfig(threshold=0.0, min_answered=0))
