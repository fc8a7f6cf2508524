import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixelis_verl.data.synth.scenes import generate_scene
from pixelis_verl.data.synth.zoom_tasks import COLOURS
from pixelis_verl.ops.properties import PALETTE, colour_name, get_properties

SIZE = (600, 400)  # width, height


def _canvas(rgb=(200, 200, 200)) -> np.ndarray:
    return np.full((SIZE[1], SIZE[0], 3), rgb, np.uint8)


def _rotated_rectangle(centre, length, width, angle_deg) -> np.ndarray:
    """Mask of a rectangle whose long side points `angle_deg` counter-clockwise from +x as seen on screen."""
    a = math.radians(angle_deg)
    along, across = np.array([math.cos(a), -math.sin(a)]), np.array([math.sin(a), math.cos(a)])  # image y is down
    signs = ((-1, -1), (1, -1), (1, 1), (-1, 1))
    corners = [np.array(centre) + sx * length / 2 * along + sy * width / 2 * across for sx, sy in signs]
    mask = np.zeros((SIZE[1], SIZE[0]), np.uint8)
    cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], 1)
    return mask.astype(bool)


def _shape_mask(draw) -> np.ndarray:
    mask = np.zeros((SIZE[1], SIZE[0]), np.uint8)
    draw(mask)
    return mask.astype(bool)


@pytest.fixture(scope="module")
def scene_objects():
    scenes = [generate_scene(seed, index=1) for seed in range(6)]
    return [(s.image, o) for s in scenes for o in s.objects]


def test_properties_match_the_drawn_colour_size_and_box(scene_objects):
    for image, o in scene_objects:
        p = get_properties(image, mask=o.mask)
        assert p.colour == o.colour
        assert np.abs(np.subtract(p.rgb, o.rgb)).max() <= 10
        assert p.area == o.area and p.box == o.box
        assert p.relative_size == pytest.approx(o.area / (image.width * image.height))
        assert p.centroid == pytest.approx(o.centroid)


def test_box_only_properties_measure_the_object_inside_the_box(scene_objects):
    for image, o in scene_objects:
        p = get_properties(image, box=o.box)
        assert p.colour == o.colour
        assert np.abs(np.subtract(p.rgb, o.rgb)).max() <= 10
        assert p.area == pytest.approx(o.area, rel=0.1)


def test_circularity_orders_disc_square_triangle():
    disc = get_properties(_canvas(), mask=_shape_mask(lambda m: cv2.circle(m, (300, 200), 80, 1, -1)))
    square = get_properties(_canvas(), mask=_shape_mask(lambda m: cv2.rectangle(m, (200, 100), (359, 259), 1, -1)))
    triangle = _shape_mask(lambda m: cv2.fillPoly(m, [np.array([[300, 100], [400, 300], [200, 300]])], 1))
    assert disc.circularity > 0.95
    assert square.circularity == pytest.approx(math.pi / 4, abs=0.02)
    assert get_properties(_canvas(), mask=triangle).circularity < 0.7


@pytest.mark.parametrize("angle", [0, 30, 90, 145])
def test_aspect_ratio_of_a_two_to_one_rectangle_is_two(angle):
    p = get_properties(_canvas(), mask=_rotated_rectangle((300, 200), 200, 100, angle))
    assert p.aspect_ratio == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize("angle", [0, 30, 60, 90, 120, 170])
def test_orientation_is_the_major_axis_counter_clockwise_on_screen(angle):
    rectangle = get_properties(_canvas(), mask=_rotated_rectangle((300, 200), 240, 60, angle))
    ellipse = _shape_mask(lambda m: cv2.ellipse(m, (300, 200), (120, 40), -angle, 0, 360, 1, -1))
    for p in (rectangle, get_properties(_canvas(), mask=ellipse)):
        assert min(abs(p.orientation_deg - angle), 180 - abs(p.orientation_deg - angle)) < 2
        assert 0 <= p.orientation_deg < 180


def test_shapes_without_a_major_axis_have_orientation_zero():
    disc = get_properties(_canvas(), mask=_shape_mask(lambda m: cv2.circle(m, (300, 200), 50, 1, -1)))
    assert disc.orientation_deg == 0.0 and disc.aspect_ratio == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize(
    ("x", "y", "words"),
    [(10, 10, "top left"), (560, 10, "top right"), (10, 360, "bottom left"), (560, 360, "bottom right"),
     (280, 180, "center"), (280, 10, "top"), (10, 180, "left")],
)  # fmt: skip
def test_position_names_the_grid_cell_of_the_centroid(x, y, words):
    mask = np.zeros((SIZE[1], SIZE[0]), bool)
    mask[y : y + 30, x : x + 30] = True
    assert get_properties(_canvas(), mask=mask).position == words


def test_dominant_colour_ignores_a_minority_of_other_pixels():
    image, mask = _canvas(), np.zeros((SIZE[1], SIZE[0]), bool)
    image[100:200, 100:170] = COLOURS["red"]
    image[100:200, 170:200] = COLOURS["blue"]
    mask[100:200, 100:200] = True
    p = get_properties(image, mask=mask)
    assert p.colour == "red" and p.rgb == COLOURS["red"]


@settings(max_examples=30, deadline=None)
@given(st.tuples(*[st.integers(0, 255)] * 3))
def test_colour_of_a_flat_object_is_its_fill(rgb):
    image, mask = _canvas(), np.zeros((SIZE[1], SIZE[0]), bool)
    image[50:150, 50:150] = rgb
    mask[50:150, 50:150] = True
    p = get_properties(image, mask=mask)
    assert p.rgb == rgb and p.colour == colour_name(rgb)


def test_palette_and_drawn_colours_are_named_as_themselves():
    assert all(colour_name(rgb) == name for name, rgb in PALETTE.items())
    assert all(colour_name(rgb) == name for name, rgb in COLOURS.items())
    basic = {"red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "white", "grey"}
    assert basic <= set(PALETTE)


def test_a_box_reaching_past_the_image_is_clipped_to_it():
    image = _canvas()
    image[300:380, 520:600] = COLOURS["green"]
    p = get_properties(image, box=(500, 280, 700, 450))
    assert p.colour == "green" and p.box == (520, 300, 600, 380) and p.area == 80 * 80


def test_describe_is_one_short_line():
    image = np.zeros((3000, 4000, 3), np.uint8)
    mask = np.zeros((3000, 4000), bool)
    mask[2000:2999, 10:3999] = True
    line = get_properties(image, mask=mask).describe()
    assert "\n" not in line and len(line) < 200
    assert line.startswith("black (0, 0, 0); area 3985011 px (33.2% of the image); bottom, centre (2004, 2499); ")


def test_get_properties_rejects_bad_inputs():
    image, mask = _canvas(), np.zeros((SIZE[1], SIZE[0]), bool)
    mask[10:20, 10:20] = True
    cases = [
        ({}, "exactly one of mask= or box="),
        ({"mask": mask, "box": (0, 0, 10, 10)}, "exactly one of mask= or box="),
        ({"mask": np.zeros_like(mask)}, "mask is empty"),
        ({"mask": mask[:, :-1]}, r"mask shape \(400, 599\) does not match the 600x400 image"),
        ({"box": (10, 10, 10, 20)}, "empty or outside the 600x400 image"),
        ({"box": (600, 300, 700, 350)}, "empty or outside"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            get_properties(image, **kwargs)
