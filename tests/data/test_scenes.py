import numpy as np
import pytest

from pixelis_verl.data.synth.scenes import SCENE_SIZE, SHAPES, generate_scene
from pixelis_verl.data.synth.zoom_tasks import COLOURS

SEEDS = range(12)


@pytest.fixture(scope="module")
def scenes():
    return [generate_scene(seed, index=3) for seed in SEEDS]


def _same(a, b) -> bool:
    objects_equal = [(o.shape, o.colour, o.box, o.area) for o in a.objects] == [
        (o.shape, o.colour, o.box, o.area) for o in b.objects
    ]
    return objects_equal and np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_scene_is_deterministic_per_seed_and_index(scenes):
    assert _same(generate_scene(SEEDS[0], index=3), scenes[0])
    assert not _same(generate_scene(SEEDS[0], index=4), scenes[0])
    assert not _same(scenes[0], scenes[1])


def test_scene_has_the_requested_size_and_object_count(scenes):
    assert all(s.image.size == SCENE_SIZE for s in scenes)
    assert all(2 <= len(s.objects) <= 5 for s in scenes)
    scene = generate_scene(0, 0, size=(300, 200), num_objects=(3, 3))
    assert scene.image.size == (300, 200) and len(scene.objects) == 3


def test_objects_do_not_overlap(scenes):
    for scene in scenes:
        coverage = np.sum([o.mask for o in scene.objects], axis=0)
        assert coverage.max() == 1


def test_masks_are_exactly_the_painted_pixels(scenes):
    for scene in scenes:
        pixels = np.asarray(scene.image)
        for o in scene.objects:
            assert o.area == o.mask.sum()
            assert (pixels[o.mask] == o.rgb).all()
            ys, xs = np.nonzero(o.mask)
            assert o.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert o.centroid == pytest.approx((xs.mean(), ys.mean()))


def test_objects_have_distinct_colours_and_clearly_different_sizes(scenes):
    for scene in scenes:
        assert len({o.colour for o in scene.objects}) == len(scene.objects)
        assert all(COLOURS[o.colour] == o.rgb and o.shape in SHAPES for o in scene.objects)
        areas = sorted(o.area for o in scene.objects)
        assert all(bigger >= 1.4 * smaller for smaller, bigger in zip(areas, areas[1:], strict=False))


def test_scene_names_why_objects_do_not_fit():
    with pytest.raises(ValueError, match="generate_scene"):
        generate_scene(0, 0, size=(60, 60))
