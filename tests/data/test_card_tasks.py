"""The learning task family (card_tasks.py): answerable after one zoom per named region, not at the shown size."""

import numpy as np
import pytest
from PIL import Image

from pixelis_verl.data.synth.card_tasks import CARD_LEVELS, reading_order, region_text
from pixelis_verl.data.synth.golden import PLANNERS, Frame
from pixelis_verl.data.synth.tasks import TASK_TOOLS, generate_tasks
from pixelis_verl.data.synth.zoom_tasks import COLOURS

LEVELS = list(CARD_LEVELS)
SHOWN = (224, 224)  # the learner's and the tiny models' view of the 448 px canvas


@pytest.fixture(scope="module")
def tasks():
    return generate_tasks(30, seed=3, kinds=LEVELS)


def _dot_pixels(image: Image.Image, colour: str, tolerance: int = 40) -> np.ndarray:
    pixels = np.asarray(image).astype(int)
    return np.all(np.abs(pixels - np.array(COLOURS[colour])) <= tolerance, axis=-1)


def test_every_level_is_a_task_kind_offering_only_zoom_in():
    for level in LEVELS:
        assert TASK_TOOLS[level] == ("zoom_in",)


def test_the_dot_lies_in_the_target_region_in_the_answers_colour(tasks):
    for task in tasks:
        mask = _dot_pixels(task.image, task.answer)
        x1, y1, x2, y2 = task.target_box
        assert mask[y1:y2, x1:x2].sum() >= 4, task.kind
        assert task.target_box in task.object_boxes


def test_the_question_names_every_region_in_reading_order_and_only_one_holds_the_dot(tasks):
    for task in tasks:
        regions = task.object_boxes
        assert reading_order(regions) == list(range(len(regions)))
        named = [region_text(r, task.image.size) for r in regions]
        assert ", ".join(named) in task.question
        for region in regions:
            if region != task.target_box:
                x1, y1, x2, y2 = region
                assert _dot_pixels(task.image, task.answer, tolerance=10)[y1:y2, x1:x2].sum() == 0
    hard = [t for t in tasks if t.kind == "card_hard"]
    assert {len(t.object_boxes) for t in hard} == {CARD_LEVELS["card_hard"].decoys + 1}


def test_the_dot_is_a_faint_blur_at_the_shown_size_and_clear_in_a_zoom(tasks):
    """At 224 px the dot's colour survives in almost no pixel; cropped around the card and upscaled, in dozens."""
    for task in tasks:
        shown = task.image.resize(SHOWN, Image.Resampling.BICUBIC)
        assert _dot_pixels(shown, task.answer, tolerance=25).sum() <= 2, task.kind
        x1, y1, x2, y2 = task.target_box
        crop = task.image.crop((x1 - 8, y1 - 8, x2 + 8, y2 + 8)).resize(SHOWN, Image.Resampling.BICUBIC)
        assert _dot_pixels(crop, task.answer, tolerance=25).sum() >= 20, task.kind


def test_golden_plan_zooms_the_named_regions_in_order_up_to_the_dotted_one_with_the_questions_numbers(tasks):
    for task in tasks:
        frame = Frame("relative_1000", (256, 256), task.image.size)
        turns = PLANNERS[task.kind](task, frame)
        assert all(len(turn) == 1 and turn[0]["name"] == "zoom_in" for turn in turns)
        assert len(turns) == task.object_boxes.index(task.target_box) + 1
        for turn in turns:
            assert str(turn[0]["arguments"]["bbox_2d"]) in task.question


def test_every_colour_is_an_answer_so_chance_is_one_in_six():
    answers = [t.answer for t in generate_tasks(120, seed=11, kinds=["card"])]
    counts = np.array([answers.count(c) for c in CARD_LEVELS["card"].colours])
    assert counts.min() >= 8 and counts.max() <= 35, counts  # 20 expected each
