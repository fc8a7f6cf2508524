"""A resumed GPU run skips verl's validation before training when its recipe says so (pixelis.validate_on_resume)."""

from pixelis_verl.config import compose_recipe, resolve
from pixelis_verl.train import skip_validation_on_resume


def _cfg(tmp_path, *overrides):
    return resolve(compose_recipe("rft_tiny_cpu", [f"pixelis.run_dir={tmp_path}", "trainer.val_before_train=true",
                                                   *overrides]))  # fmt: skip


def test_a_resumed_run_skips_validation_only_when_asked_and_only_with_a_checkpoint(tmp_path):
    cfg = _cfg(tmp_path, "+pixelis.validate_on_resume=false")
    assert skip_validation_on_resume(cfg) is None and cfg.trainer.val_before_train  # nothing to resume yet
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest_checkpointed_iteration.txt").write_text("40")
    assert (
        skip_validation_on_resume(cfg) == ("resuming from step 40: no validation before training (validate_on_resume)")
        and not cfg.trainer.val_before_train
    )
    default = _cfg(tmp_path)  # verl's behaviour unless the recipe says otherwise
    assert skip_validation_on_resume(default) is None and default.trainer.val_before_train


def test_the_gpu_rft_recipes_skip_it():
    cfg = compose_recipe("rft_qwen25vl_7b")
    assert cfg.pixelis.validate_on_resume is False and cfg.data.val_max_samples == 512
