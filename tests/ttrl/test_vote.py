"""The trajectory vote against answer-majority: constructed groups where they disagree, and the arithmetic."""

import pytest

from pixelis_verl.trajectory.parse import Trajectory
from pixelis_verl.ttrl.vote import Neighbour, VoteConfig, answer_key, vote


def _trajectory(pred, tools, tokens, invalid=0) -> Trajectory:
    steps = [{"tool": t, "ok": True, "error_kind": None} for t in tools]
    steps += [{"tool": "zoom_in", "ok": False, "error_kind": "argument"} for _ in range(invalid)]
    return Trajectory([], steps, pred, None, {}, tokens, 1024)


def _group() -> list[Trajectory]:
    """Three long chains with bad calls say "red"; two short valid chains say "blue"; one never answers."""
    return [
        _trajectory("red", ["zoom_in", "zoom_in", "segment_object_at"], 400, invalid=2),
        _trajectory("Red.", ["zoom_in", "read_text", "zoom_in"], 380, invalid=1),
        _trajectory("red", ["segment_object_at", "zoom_in", "zoom_in"], 420, invalid=1),
        _trajectory("blue", ["zoom_in"], 100),
        _trajectory("The answer is blue", ["zoom_in", "get_properties"], 125),
        _trajectory(None, ["zoom_in"], 1024),
    ]


NEIGHBOURS = [Neighbour(("zoom_in",), True, 0.9), Neighbour(("segment_object_at", "zoom_in"), False, 0.95)]


def test_majority_picks_the_crowd_and_the_trajectory_vote_the_valid_short_chain():
    majority = vote(_group(), NEIGHBOURS, VoteConfig(strategy="majority"))
    assert answer_key(majority.answer) == "text:red" and majority.confidence == pytest.approx(3 / 5)
    assert majority.winners == [0, 1, 2]
    ours = vote(_group(), NEIGHBOURS, VoteConfig())
    assert ours.answer == "blue" and ours.winners == [3]  # "answer is blue" is another text


def test_confidence_is_the_winning_clusters_share_of_the_weight():
    config = VoteConfig(invalid_weight=0.25, brevity_power=1.0, agreement_weight=1.0)
    result = vote(_group(), NEIGHBOURS, config)
    # Only the successful neighbour counts: similarity 0.9 x action similarity (edit distance on tool names).
    agreement = [1 + 0.9 * s for s in (1 / 3, 1 / 3, 1 / 3, 1.0, 1 / 2)]
    expected = [0.25 * 100 / 400 * agreement[0], 0.25 * 100 / 380 * agreement[1], 0.25 * 100 / 420 * agreement[2],
                1.0 * agreement[3], 100 / 125 * agreement[4], 0.0]  # fmt: skip
    assert result.weights == pytest.approx(expected)
    assert result.confidence == pytest.approx(expected[3] / sum(expected))


def test_answers_are_clustered_by_option_number_or_normalised_text():
    assert answer_key("(B) a cat") == answer_key("b") == "option:B"
    assert answer_key("frame 17") == answer_key("17") == "number:17"
    assert answer_key("The Red.") == answer_key("red") == "text:red"


def test_no_answers_give_no_vote_and_zero_confidence():
    result = vote([_trajectory(None, [], 50), _trajectory(None, ["zoom_in"], 80)], [], VoteConfig())
    assert result.answer is None and result.confidence == 0.0 and result.winners == []


def test_an_unknown_strategy_fails_naming_the_key():
    with pytest.raises(ValueError, match="ttrl.vote.strategy must be one of"):
        VoteConfig(strategy="plurality")
