"""Checkpoint retention: whole folders pruned by step number from the disk, never the one the marker names."""

import pytest

from pixelis_verl.ttrl.retention import checkpoint_steps, prune_checkpoints


def _checkpoints(root, steps):
    for step in steps:
        folder = root / f"global_step_{step}"
        for part in ("actor", "ema"):
            (folder / part).mkdir(parents=True)
            (folder / part / "shard.pt").write_bytes(b"x")
        (folder / "ttrl_state.json").write_text("{}")
    (root / "latest_checkpointed_iteration.txt").write_text(str(max(steps)))


def test_older_checkpoints_go_whole_and_the_newest_stay(tmp_path):
    _checkpoints(tmp_path, [2, 4, 10, 6, 8])
    assert prune_checkpoints(tmp_path, keep=2, latest=10) == [2, 4, 6]
    assert checkpoint_steps(tmp_path) == [8, 10]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["global_step_10", "global_step_8",
                                                          "latest_checkpointed_iteration.txt"]  # fmt: skip


def test_a_restart_prunes_what_an_earlier_process_saved(tmp_path):
    _checkpoints(tmp_path, [1, 2, 3])  # saved by a process that then died
    _checkpoints(tmp_path, [4])  # the first save after the restart
    assert prune_checkpoints(tmp_path, keep=1, latest=4) == [1, 2, 3]


def test_the_marked_checkpoint_survives_a_newer_unmarked_folder(tmp_path):
    _checkpoints(tmp_path, [4, 8])
    # a save of step 12 crashed before its marker: the marker still names 8
    (tmp_path / "global_step_12" / "actor").mkdir(parents=True)
    assert prune_checkpoints(tmp_path, keep=1, latest=8) == [4]
    assert checkpoint_steps(tmp_path) == [8, 12]


def test_null_keeps_everything_and_zero_is_refused(tmp_path):
    _checkpoints(tmp_path, [1, 2])
    assert prune_checkpoints(tmp_path, keep=None, latest=2) == []
    with pytest.raises(ValueError, match="max_actor_ckpt_to_keep"):
        prune_checkpoints(tmp_path, keep=0, latest=2)
    assert checkpoint_steps(tmp_path) == [1, 2]


def test_other_entries_are_left_alone(tmp_path):
    _checkpoints(tmp_path, [1, 2])
    (tmp_path / "global_step_x").mkdir()
    (tmp_path / "notes").mkdir()
    assert prune_checkpoints(tmp_path, keep=1, latest=2) == [1]
    assert {p.name for p in tmp_path.iterdir()} >= {"global_step_x", "notes"}
