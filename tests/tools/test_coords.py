import math

import pytest

from pixelis_verl.tools.arguments import ToolArgumentError, parse_box
from pixelis_verl.tools.coords import COORD_FRAMES, box_to_source, get_coord_frame

SHOWN, SOURCE = (500, 250), (1000, 500)


@pytest.mark.parametrize(
    "frame, box",
    [
        ("absolute_resized", (50, 25, 100, 50)),
        ("relative_1000", (100, 100, 200, 200)),
        ("absolute_source", (100, 50, 200, 100)),
    ],
)
def test_each_frame_maps_the_same_region_to_the_same_source_pixels(frame, box):
    assert box_to_source("zoom_in", box, frame, SHOWN, SOURCE, image_index=0) == (100, 50, 200, 100)


def test_every_registered_frame_has_help_text_for_the_model():
    assert set(COORD_FRAMES) == {"absolute_resized", "relative_1000", "absolute_source"}
    assert all(frame.help for frame in COORD_FRAMES.values())


def test_unknown_frame_names_the_known_ones():
    with pytest.raises(ValueError, match="absolute_resized"):
        get_coord_frame("normalized")


def test_box_is_clipped_to_the_image_before_mapping():
    assert box_to_source("zoom_in", (-10, -5, 600, 100), "absolute_resized", SHOWN, SOURCE, image_index=0) == (
        0,
        0,
        1000,
        200,
    )


def test_box_outside_the_image_is_rejected_with_the_image_extent():
    with pytest.raises(ToolArgumentError) as error:
        box_to_source("zoom_in", (600, 10, 700, 20), "absolute_resized", SHOWN, SOURCE, image_index=2)
    assert str(error.value) == (
        "zoom_in: bbox_2d [600, 10, 700, 20] lies outside image 2, which spans [0, 0, 500, 250] "
        "in absolute_resized coordinates"
    )


@pytest.mark.parametrize(
    "value",
    [[1, 2, 3, 4], (1, 2, 3, 4), [1.0, 2.0, 3.0, 4.0], ["1", "2", " 3 ", "4.0"], "[1, 2, 3, 4]", '["1", 2, 3, 4]'],
)
def test_parse_box_accepts_numbers_numeric_strings_and_json(value):
    assert parse_box("zoom_in", value) == (1, 2, 3, 4)


def test_degenerate_box_error_names_tool_argument_and_value():
    with pytest.raises(ToolArgumentError) as error:
        parse_box("zoom_in", [5, 5, 5, 9])
    assert str(error.value) == "zoom_in: bbox_2d must be [x1, y1, x2, y2] with x1 < x2 and y1 < y2; got [5, 5, 5, 9]"


@pytest.mark.parametrize(
    "value, reason",
    [
        ([9, 5, 5, 9], "x1 < x2 and y1 < y2"),
        ([1, 9, 5, 9], "x1 < x2 and y1 < y2"),
        ([1, 2, 3], "list of 4 numbers"),
        ([1, 2, 3, 4, 5], "list of 4 numbers"),
        ([[1, 2, 3, 4]], "list of 4 numbers"),
        ([1, 2, "three", 4], "list of 4 numbers"),
        ([1, 2, True, 4], "list of 4 numbers"),
        ([1, 2, None, 4], "list of 4 numbers"),
        ({"x1": 1}, "list of 4 numbers"),
        ("1, 2, 3, 4", "list of 4 numbers"),
        (None, "list of 4 numbers"),
        (7, "list of 4 numbers"),
        ([1, 2, math.nan, 4], "finite numbers"),
        ([1, 2, math.inf, 4], "finite numbers"),
        ("[1, 2, Infinity, 4]", "finite numbers"),
    ],
)
def test_malformed_box_is_rejected_with_a_one_line_reason(value, reason):
    with pytest.raises(ToolArgumentError) as error:
        parse_box("zoom_in", value)
    message = str(error.value)
    assert message.startswith("zoom_in: bbox_2d ") and reason in message and "got " in message
    assert "\n" not in message


def test_error_value_is_shortened_to_fit_the_tool_response():
    with pytest.raises(ToolArgumentError) as error:
        parse_box("zoom_in", list(range(1000)))
    assert len(str(error.value)) < 200
