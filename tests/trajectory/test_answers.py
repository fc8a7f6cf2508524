"""Answer extraction and scoring for the accuracy reward."""

import pytest

from pixelis_verl.trajectory.answers import anls, answer_accuracy, compute_score, extract_answer, mra


def test_extract_answer_takes_the_last_answer_tag():
    assert extract_answer("<answer>red</answer> then <answer> Blue </answer>") == "Blue"
    assert extract_answer("no tag here") is None


@pytest.mark.parametrize(
    ("pred", "truth", "expected"),
    [
        ("The Red.", "red", 1.0),
        ("3.0", "3", 1.0),
        ("3.2", "3", 0.0),
        ("frame 17", "17", 1.0),
        ("frames 16 or 17", "17", 0.0),
        ("circle", "square", 0.0),
        ("", "", 0.0),
    ],
)
def test_exact_answers_normalise_text_and_compare_numbers_with_tolerance(pred, truth, expected):
    assert answer_accuracy(pred, truth) == expected


@pytest.mark.parametrize(("pred", "expected"), [("B", 1.0), ("(b)", 1.0), ("B. a dog", 1.0), ("dog", 1.0), ("A", 0.0)])
def test_multiple_choice_accepts_the_letter_or_the_option_text(pred, expected):
    assert answer_accuracy(pred, "B", {"options": ["cat", "dog", "bird"]}) == expected


def test_anls_gives_credit_for_a_near_miss_and_none_for_a_wrong_text():
    assert anls("candle cloud rain", "Candle  cloud rain") == 1.0
    assert anls("candle cloud rainn", "candle cloud rain") == pytest.approx(1 - 1 / 18)
    assert anls("river", "candle cloud rain") == 0.0
    assert answer_accuracy("candle cloud rai", "candle cloud rain", {"answer_metric": "anls"}) > 0.9


def test_unknown_answer_metric_names_the_known_ones():
    with pytest.raises(ValueError, match="anls"):
        answer_accuracy("x", "x", {"answer_metric": "bleu"})


def test_compute_score_reports_prediction_and_format_bonus():
    right = compute_score("pixelis/synth_pixel", "<answer>red</answer>", "red", format_weight=0.1)
    wrong = compute_score("pixelis/synth_pixel", "<answer>blue</answer>", "red", format_weight=0.1)
    silent = compute_score("pixelis/synth_pixel", "I think red", "red", format_weight=0.1)
    assert (right["score"], right["acc"], right["pred"]) == (pytest.approx(1.1), 1.0, "red")
    assert (wrong["score"], wrong["acc"]) == (pytest.approx(0.1), 0.0)
    assert (silent["score"], silent["has_answer"], silent["pred"]) == (0.0, 0.0, "")


@pytest.mark.parametrize("response", [None, "", "<answer>", "<answer></answer>", "\x00" * 50])
def test_garbage_responses_and_missing_truth_score_zero_without_raising(response):
    assert compute_score("pixelis/synth_pixel", response, "red")["acc"] == 0.0
    assert compute_score("pixelis/synth_pixel", "<answer>red</answer>", None)["acc"] == 0.0


@pytest.mark.parametrize(
    ("pred", "truth", "expected"),
    [
        ("10", "10", 1.0),
        ("about 10.4 m", "10", 1.0),  # 4% off: inside every tolerance (the tightest is 5%)
        ("11", "10", 0.8),  # 10% off: passes θ = 0.50 ... 0.85, fails 0.90 (strict <) and 0.95
        ("13", "10", 0.4),  # 30% off: passes θ = 0.50 ... 0.65, fails 0.70 (strict <) and up
        ("20", "10", 0.0),  # 100% off
        ("1,200", "1000", 0.6),  # thousands separators are read; 20% off passes θ = 0.50 ... 0.75
        ("no idea", "10", 0.0),
        ("3 or 4", "4", 0.0),  # two numbers: ambiguous
    ],
)
def test_mra_averages_relative_accuracy_over_vsi_bench_thresholds(pred, truth, expected):
    assert mra(pred, truth) == pytest.approx(expected)
    assert answer_accuracy(pred, truth, {"answer_metric": "mra"}) == pytest.approx(expected)


def test_choice_metric_matches_the_letter_or_the_option_text():
    info = {"answer_metric": "choice", "options": ["cat", "dog", "bird"]}
    assert answer_accuracy("(B)", "B", info) == answer_accuracy("dog", "B", info) == 1.0
    assert answer_accuracy("cat", "B", info) == 0.0


def test_answer_accuracy_takes_the_best_match_over_every_accepted_answer():
    info = {"answer_metric": "anls", "answers": ["12 percent", "12%", "twelve percent"]}
    assert answer_accuracy("12%", "12 percent", info) == 1.0
    assert answer_accuracy("twelve percen", "12 percent", info) == pytest.approx(1 - 1 / 14)
    assert answer_accuracy("12%", "12 percent", {"answer_metric": "anls"}) == 0.0
    assert answer_accuracy("red", "red", {"answers": []}) == 1.0  # an empty list falls back to the truth
