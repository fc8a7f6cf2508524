"""Fusing trace sets: shares by weight, duplicates dropped across sources, a question never in both splits."""

import shutil

import pytest

from pixelis_verl.data.cota import TraceSet
from pixelis_verl.data.fuse import dedup_key, fuse
from tests.data.cota_sets import make_set


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    a = make_set(tmp_path_factory.mktemp("a"), "golden", seed=1, num=6)
    b = make_set(tmp_path_factory.mktemp("b"), "golden", seed=2, num=6)
    copy = TraceSet(tmp_path_factory.mktemp("copy") / "a")
    shutil.copytree(a.root, copy.root)
    return a, b, copy


def test_a_copied_set_fuses_to_nothing_new(sets):
    a, _, copy = sets
    train, val, report = fuse([(a, 1.0), (copy, 1.0)], val_fraction=0.0)
    assert report.duplicates == {str(copy.root): 6} and len(train) == report.taken[str(a.root)]
    assert all(root == a.root for _, root in train) and not val


def test_shares_follow_weights_and_splits_are_stable(sets):
    a, b, _ = sets
    train, val, report = fuse([(a, 1.0), (b, 2.0)], val_fraction=0.5, seed=3)
    assert report.taken == {str(a.root): 3, str(b.root): 6}  # b limits: 6 traces at 2/3 of the set
    keys = {split: {dedup_key(t, r) for t, r in items} for split, items in (("train", train), ("val", val))}
    assert keys["train"] and keys["val"] and not keys["train"] & keys["val"]
    again_train, again_val, _ = fuse([(a, 1.0), (b, 2.0)], val_fraction=0.5, seed=3)
    assert [t.id for t, _ in again_train] == [t.id for t, _ in train] and len(again_val) == len(val)


def test_bad_weights_fail_clearly(sets):
    with pytest.raises(ValueError, match="each with a weight > 0"):
        fuse([(sets[0], 0.0)], val_fraction=0.1)
