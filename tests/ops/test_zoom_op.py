import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

from pixelis_verl.ops.sizes import fit_size
from pixelis_verl.ops.zoom import zoom

MIN_PIXELS, MAX_PIXELS = 224 * 224, 448 * 448


def _quadrants(size: tuple[int, int] = (800, 600)) -> Image.Image:
    """Four flat colours, one per quadrant, so a crop's content is known exactly."""
    w, h = size
    pixels = np.zeros((h, w, 3), dtype=np.uint8)
    pixels[: h // 2, : w // 2] = (255, 0, 0)
    pixels[: h // 2, w // 2 :] = (0, 255, 0)
    pixels[h // 2 :, : w // 2] = (0, 0, 255)
    pixels[h // 2 :, w // 2 :] = (255, 255, 0)
    return Image.fromarray(pixels)


def test_zoom_crops_the_requested_box():
    crop, box = zoom(_quadrants(), (450, 350, 650, 450), min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    assert box == (450, 350, 650, 450)
    assert np.asarray(crop).reshape(-1, 3).mean(axis=0).round().tolist() == [255, 255, 0]


def test_zoom_keeps_aspect_and_sizes_sides_to_the_patch_factor():
    crop, _ = zoom(_quadrants(), (0, 0, 400, 200), min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, size_factor=28)
    assert crop.width % 28 == 0 and crop.height % 28 == 0
    assert MIN_PIXELS <= crop.width * crop.height <= MAX_PIXELS
    assert crop.width / crop.height == pytest.approx(2.0, rel=0.1)


def test_zoom_upscales_tiny_crops_to_min_pixels():
    crop, box = zoom(_quadrants(), (10, 10, 30, 20), min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    assert box == (10, 10, 30, 20)
    assert crop.width * crop.height >= MIN_PIXELS
    assert crop.width / crop.height == pytest.approx(2.0, rel=0.15)


def test_zoom_downscales_large_crops_to_max_pixels():
    crop, _ = zoom(_quadrants((2000, 1500)), (0, 0, 2000, 1500), min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    assert crop.width * crop.height <= MAX_PIXELS


def test_zoom_clips_the_box_to_the_image():
    _, box = zoom(_quadrants(), (-50, -20, 100, 700), min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    assert box == (0, 0, 100, 600)


def test_zoom_snaps_a_float_box_outward_to_whole_pixels():
    _, box = zoom(_quadrants(), (10.4, 20.6, 99.2, 199.99999999), min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    assert box == (10, 20, 100, 200)


def test_zoom_widens_sliver_boxes_to_the_max_aspect_ratio():
    crop, box = zoom(
        _quadrants(), (100, 300, 700, 301), min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, max_aspect_ratio=50
    )
    x1, y1, x2, y2 = box
    assert (x1, x2) == (100, 700) and y1 <= 300 and y2 >= 301
    assert (x2 - x1) / (y2 - y1) <= 50
    assert max(crop.size) / min(crop.size) < 200  # Qwen-VL processors reject more


def test_zoom_widened_box_stays_inside_the_image():
    _, box = zoom(_quadrants(), (0, 0, 1, 600), min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, max_aspect_ratio=10)
    assert box == (0, 0, 60, 600)


def test_zoom_rejects_a_box_outside_the_image():
    with pytest.raises(ValueError, match="does not overlap"):
        zoom(_quadrants(), (900, 0, 1000, 100), min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)


@settings(max_examples=200, deadline=None)
@given(
    # From one patch up: below that transformers' copy of smart_resize skips the max(factor, ...) that
    # qwen_vl_utils' copy (and fit_size) apply; both results are valid sizes.
    width=st.integers(32, 5000),
    height=st.integers(32, 5000),
    factor=st.sampled_from([28, 32]),
    pixels=st.tuples(st.integers(28 * 28, 2000 * 2000), st.integers(28 * 28, 2000 * 2000)).map(sorted),
)
def test_fit_size_agrees_with_qwen_smart_resize(width, height, factor, pixels):
    min_pixels, max_pixels = pixels
    if max(width, height) / min(width, height) > 200:  # Qwen refuses those; zoom widens boxes before
        return
    h, w = smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    assert fit_size(width, height, min_pixels=min_pixels, max_pixels=max_pixels, factor=factor) == (w, h)


@settings(max_examples=100, deadline=None)
@given(
    box=st.tuples(st.floats(-100, 900), st.floats(-100, 700), st.floats(1, 900), st.floats(1, 700)),
    factor=st.sampled_from([28, 32]),
)
def test_zoom_output_passes_through_the_qwen_processor_unchanged(box, factor):
    x1, y1, w, h = box
    image = _quadrants()
    if x1 >= image.width or y1 >= image.height or x1 + w <= 0 or y1 + h <= 0:
        return
    crop, _ = zoom(image, (x1, y1, x1 + w, y1 + h), min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, size_factor=factor)
    # The processor's own defaults (Qwen2-VL image processor: 56*56 .. 28*28*1280 pixels).
    assert smart_resize(crop.height, crop.width, factor=factor) == (crop.height, crop.width)
