"""Answer extraction and matching for the accuracy reward."""

import pytest

from pixelis_verl.rewards.accuracy import answers_match, compute_score, extract_answer


def test_extract_answer_takes_the_last_answer_tag():
    assert extract_answer("<answer>red</answer> then <answer> Blue </answer>") == "Blue"
    assert extract_answer("no tag here") is None


@pytest.mark.parametrize(
    ("pred", "truth", "expected"),
    [("The Red.", "red", True), ("3.0", "3", True), ("3.2", "3", False), ("circle", "square", False), ("", "", False)],
)
def test_answers_match_normalises_text_and_compares_numbers_with_tolerance(pred, truth, expected):
    assert answers_match(pred, truth) is expected


def test_compute_score_reports_prediction_and_format_bonus():
    right = compute_score("pixelis/synth_zoom", "<answer>red</answer>", "red", format_weight=0.1)
    wrong = compute_score("pixelis/synth_zoom", "<answer>blue</answer>", "red", format_weight=0.1)
    silent = compute_score("pixelis/synth_zoom", "I think red", "red", format_weight=0.1)
    assert (right["score"], right["acc"], right["pred"]) == (pytest.approx(1.1), 1.0, "red")
    assert (wrong["score"], wrong["acc"]) == (pytest.approx(0.1), 0.0)
    assert (silent["score"], silent["has_answer"], silent["pred"]) == (0.0, 0.0, "")
