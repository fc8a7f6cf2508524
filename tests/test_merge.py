"""`python -m pixelis_verl.merge` on what is not a LoRA checkpoint: one line, exit 2, nothing written. (A real LoRA
checkpoint is merged and checked in the LoRA end-to-end tests, tests/lora_checks.py.)"""

import json

import pytest

from pixelis_verl.merge import is_lora_checkpoint, main


def _lora_like(folder):
    folder.mkdir()
    (folder / "lora_train_meta.json").write_text(json.dumps({"r": 8, "lora_alpha": 16}))
    (folder / "model_world_size_1_rank_0.pt").write_bytes(b"not a pickle")  # a damaged shard
    (folder / "huggingface").mkdir()
    (folder / "huggingface" / "config.json").write_text("{")
    return folder


@pytest.mark.parametrize("case", ["missing", "plain_model", "damaged"])
def test_what_is_not_a_mergeable_checkpoint_gets_one_line_and_exit_2(tmp_path, capsys, case):
    checkpoint = tmp_path / "ckpt"
    if case == "plain_model":
        checkpoint.mkdir()
        (checkpoint / "config.json").write_text("{}")
    elif case == "damaged":
        _lora_like(checkpoint)
    assert main([str(checkpoint), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"merge: error: {checkpoint}: ") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_an_existing_target_is_never_overwritten(tmp_path, capsys):
    checkpoint, out = _lora_like(tmp_path / "ckpt"), tmp_path / "out"
    out.mkdir()
    (out / "keep").write_text("mine")
    assert is_lora_checkpoint(checkpoint)
    assert main([str(checkpoint), str(out)]) == 2
    assert "exists; merge into a new folder" in capsys.readouterr().err
    assert (out / "keep").read_text() == "mine"
