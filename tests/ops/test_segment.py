import sys

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from pixelis_verl.data.synth.scenes import generate_scene
from pixelis_verl.ops.segment import (
    SEGMENT_BACKENDS,
    GrabCutBackend,
    Sam2Backend,
    make_segment_backend,
    segment_object_at,
    segment_object_in_box,
)

BLUE = (30, 70, 220)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


def _is_one_region(mask: np.ndarray) -> bool:
    count, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return count == 2  # background + one region


def _interior_point(mask: np.ndarray) -> tuple[int, int]:
    """The mask pixel farthest from its edge (a triangle's or ellipse's centre of box may be near an edge)."""
    distance = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(np.argmax(distance), distance.shape)
    return int(x), int(y)


def _one_object(size: tuple[int, int], box: tuple[int, int, int, int], noise: float = 6.0):
    """A noisy light canvas with one blue ellipse in `box`; returns (PIL image, its mask)."""
    rng = np.random.default_rng(0)
    canvas = Image.fromarray(np.clip(rng.normal(225, noise, (size[1], size[0], 3)), 0, 255).astype(np.uint8))
    stencil = Image.new("L", size, 0)
    ImageDraw.Draw(stencil).ellipse((box[0], box[1], box[2] - 1, box[3] - 1), fill=255)
    canvas.paste(BLUE, mask=stencil)
    return canvas, np.asarray(stencil) > 0


@pytest.mark.parametrize("noise", [0.0, 20.0])
def test_segment_recovers_scene_objects_of_every_shape_and_size(noise):
    rng = np.random.default_rng(1)
    shapes, areas = set(), []
    for seed in range(8):
        scene = generate_scene(seed, index=0)
        pixels = np.asarray(scene.image).astype(np.float64)
        pixels = np.clip(pixels + rng.normal(0, noise, pixels.shape), 0, 255).astype(np.uint8)
        for o in scene.objects:
            # In noise a click on the object's outermost pixel is ambiguous (its colour may read as background)
            inner = cv2.erode(o.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) if noise else o.mask
            ys, xs = np.nonzero(inner)
            pick = int(rng.integers(len(xs)))
            for point in (_interior_point(o.mask), (int(xs[pick]), int(ys[pick]))):
                result = segment_object_at(pixels, point)
                assert result.mask[point[1], point[0]] and _is_one_region(result.mask)
                assert _iou(result.mask, o.mask) >= 0.7, (seed, o.shape, o.area, point)
            shapes.add(o.shape)
            areas.append(o.area)
    assert len(shapes) == 6 and min(areas) <= 450 and max(areas) >= 10_000


def test_segment_reports_consistent_box_area_and_score():
    scene = generate_scene(3, index=0)
    o = scene.objects[0]
    result = segment_object_at(scene.image, _interior_point(o.mask))
    ys, xs = np.nonzero(result.mask)
    assert result.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert result.area == result.mask.sum()
    assert result.mask.shape == (scene.image.height, scene.image.width) and result.mask.dtype == bool
    assert 0.9 < result.score <= 1.0  # a flat saturated object on a light background


def test_segment_finds_a_20px_object_in_a_large_image():
    image, truth = _one_object((3000, 2000), (2100, 1500, 2120, 1520))
    result = segment_object_at(image, (2110.7, 1510.2))
    assert _iou(result.mask, truth) >= 0.7 and result.area < 600


def test_segment_finds_an_object_covering_half_the_image():
    image, truth = _one_object((1600, 1200), (150, 100, 1450, 1100))
    assert truth.mean() > 0.5
    result = segment_object_at(image, (800, 600))
    assert _iou(result.mask, truth) >= 0.9


def test_segment_gives_the_same_mask_for_pil_and_numpy_images():
    scene = generate_scene(5, index=2)
    point = _interior_point(scene.objects[-1].mask)
    from_pil = segment_object_at(scene.image, point)
    from_numpy = segment_object_at(np.asarray(scene.image), point)
    assert np.array_equal(from_pil.mask, from_numpy.mask)


@settings(max_examples=25, deadline=None)
@given(st.floats(0, 319.99), st.floats(0, 239.99))
def test_mask_always_holds_the_point_and_is_one_region(x, y):
    image = generate_scene(9, index=0, size=(320, 240)).image
    result = segment_object_at(image, (x, y))
    assert result.mask[int(y), int(x)] and _is_one_region(result.mask)


@pytest.mark.parametrize("point", [(-1, 10), (10, -0.5), (320, 10), (10, 240), (float("nan"), 10)])
def test_segment_rejects_a_point_outside_the_image(point):
    image = generate_scene(0, index=0, size=(320, 240)).image
    with pytest.raises(ValueError, match="outside the 320x240 image"):
        segment_object_at(image, point)


def test_segment_rejects_images_that_are_not_rgb_uint8():
    with pytest.raises(ValueError, match="RGB uint8"):
        segment_object_at(np.zeros((20, 20, 3), np.float32), (5, 5))


def test_segment_object_in_box_finds_the_object_not_the_box():
    image, truth = _one_object((640, 480), (200, 100, 400, 200))
    result = segment_object_in_box(image, (200, 100, 400, 200))
    assert _iou(result.mask, truth) >= 0.9 and result.area < 0.85 * 200 * 100


def test_make_segment_backend_builds_registered_backends_with_options():
    assert set(SEGMENT_BACKENDS) == {"grabcut", "sam2"}
    backend = make_segment_backend("grabcut", work_size=128, iterations=2)
    assert backend == GrabCutBackend(work_size=128, iterations=2)
    scene = generate_scene(2, index=0)
    o = scene.objects[0]
    assert _iou(segment_object_at(scene.image, _interior_point(o.mask), backend=backend).mask, o.mask) >= 0.7


def test_make_segment_backend_names_an_unknown_backend_or_option():
    with pytest.raises(ValueError, match="unknown backend 'sam3'"):
        make_segment_backend("sam3")
    with pytest.raises(ValueError, match="no option.*'window'"):
        make_segment_backend("grabcut", window=3)
    with pytest.raises(ValueError, match="needs option.*'checkpoint'"):
        make_segment_backend("sam2")
    with pytest.raises(ValueError, match="work_size >= 32"):
        make_segment_backend("grabcut", work_size=8)


def test_sam2_backend_fails_fast_on_a_missing_checkpoint(tmp_path):
    missing = tmp_path / "sam2.1_hiera_large.pt"
    with pytest.raises(FileNotFoundError, match="sam2.1_hiera_large.pt.*never downloaded"):
        make_segment_backend("sam2", checkpoint=str(missing))


def test_sam2_backend_fails_fast_without_the_package(tmp_path, monkeypatch):
    checkpoint = tmp_path / "sam2.1_hiera_large.pt"
    checkpoint.write_bytes(b"")
    for module in ("sam2", "sam2.build_sam", "sam2.sam2_image_predictor"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails even where sam2 is installed
    with pytest.raises(ImportError, match="package `sam2` is not installed"):
        Sam2Backend(checkpoint=str(checkpoint), device="cpu")
