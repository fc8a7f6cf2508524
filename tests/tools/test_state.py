import numpy as np

from pixelis_verl.tools.state import StoredMask, TrajectoryStore


def _mask() -> StoredMask:
    return StoredMask(image_index=0, box=(1, 1, 3, 3), crop=np.ones((2, 2), dtype=bool), source_size=(4, 4))


def test_masks_get_increasing_ids_and_the_oldest_is_forgotten_beyond_the_cap():
    state = TrajectoryStore().get("r")
    assert [state.add_mask(_mask(), max_masks=2) for _ in range(3)] == ["m1", "m2", "m3"]
    assert list(state.masks) == ["m2", "m3"]


def test_stored_masks_expand_to_the_source_size():
    full = _mask().full()
    assert full.shape == (4, 4) and full.sum() == 4 and full[1:3, 1:3].all()


def test_frame_images_are_found_by_identity():
    state = TrajectoryStore().get("r")
    image, lookalike = object(), object()
    state.add_frame_images([image], [7])
    assert state.frame_of(image) == 7 and state.frame_of(lookalike) is None


def test_release_frees_a_trajectory_and_the_store_is_bounded():
    store = TrajectoryStore(max_trajectories=2)
    store.get("a").add_mask(_mask(), max_masks=4)
    store.release("a")
    assert "a" not in store and store.get("a").masks == {}
    store.get("b"), store.get("c")
    assert len(store) == 2 and "a" not in store
