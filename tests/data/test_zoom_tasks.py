import numpy as np
import pytest

from pixelis_verl.data.synth.zoom_tasks import (
    CLEARANCE_PX,
    COLOURS,
    KINDS,
    SHAPES,
    WORDS,
    generate_zoom_tasks,
)

SEED = 7


@pytest.fixture(scope="module")
def tasks():
    return generate_zoom_tasks(9, seed=SEED)


def _same(a, b) -> bool:
    fields_equal = (a.question, a.answer, a.target_box, a.kind) == (b.question, b.answer, b.target_box, b.kind)
    return fields_equal and np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_tasks_are_deterministic_per_seed(tasks):
    again = generate_zoom_tasks(9, seed=SEED)
    assert all(_same(a, b) for a, b in zip(tasks, again, strict=True))


def test_different_seeds_give_different_tasks(tasks):
    other = generate_zoom_tasks(3, seed=SEED + 1)
    assert not any(_same(a, b) for a, b in zip(tasks[:3], other, strict=True))


def test_a_task_does_not_depend_on_how_many_are_generated(tasks):
    assert all(_same(a, b) for a, b in zip(generate_zoom_tasks(4, seed=SEED), tasks[:4], strict=True))


def test_canvas_has_the_requested_size():
    (task,) = generate_zoom_tasks(1, seed=SEED, canvas_size=(640, 480))
    assert task.image.size == (640, 480) and task.image.mode == "RGB"


def test_target_boxes_lie_inside_the_canvas(tasks):
    for task in tasks:
        x1, y1, x2, y2 = task.target_box
        assert 0 <= x1 < x2 <= task.image.width and 0 <= y1 < y2 <= task.image.height


def test_targets_are_only_a_few_pixels_at_the_models_448px_view(tasks):
    for task in tasks:
        x1, y1, x2, y2 = task.target_box
        scale = 448 / task.image.width
        assert (y2 - y1) * scale <= 10 and (x2 - x1) * scale <= 40, task


def test_kinds_rotate_and_answers_match_questions(tasks):
    assert [t.kind for t in tasks[:3]] == list(KINDS)
    for task in tasks:
        if task.kind == "text":
            assert task.answer in WORDS or task.answer.isdigit()
            assert task.question in (
                "What word is written in the small box?",
                "What number is written in the small box?",
            )
        elif task.kind == "colour":
            assert task.answer in COLOURS and task.question == "What colour is the small circle?"
        else:
            assert task.answer in SHAPES and task.question.startswith("What shape is the small ")


def _pixels_in(task, margin: int = 0) -> np.ndarray:
    x1, y1, x2, y2 = task.target_box
    return np.asarray(task.image)[y1 - margin : y2 + margin, x1 - margin : x2 + margin].astype(int)


def test_coloured_targets_show_the_colour_the_question_names(tasks):
    for task in tasks:
        if task.kind == "text":
            continue
        colour = task.answer if task.kind == "colour" else task.question.split()[5]
        near = np.abs(_pixels_in(task) - COLOURS[colour]).sum(axis=-1) < 10
        assert near.mean() > 0.3, task


def test_text_targets_are_dark_glyphs_in_a_white_box(tasks):
    for task in tasks:
        if task.kind != "text":
            continue
        inside = _pixels_in(task)[2:-2, 2:-2]
        assert (inside.min(axis=-1) > 240).mean() > 0.5 and (inside.max(axis=-1) < 100).any(), task


def test_distractors_keep_clear_of_the_target(tasks):
    for task in tasks:
        ring = _pixels_in(task, margin=CLEARANCE_PX).copy()
        ring[CLEARANCE_PX:-CLEARANCE_PX, CLEARANCE_PX:-CLEARANCE_PX] = -1  # the target itself
        background = ring[ring[..., 0] >= 0]
        # Only the noisy background (std 6 grey levels) surrounds the target.
        assert np.abs(background - np.median(background, axis=0)).max() < 45, task
