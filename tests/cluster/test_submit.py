"""What python -m pixelis_verl.submit sends: the entrypoint, the runtime environment, and refusals before sending."""

import shlex

import pytest

from pixelis_verl.config import REPO_ROOT, RecipeError
from pixelis_verl.submit import build_job, main


def test_a_job_runs_the_recipe_with_its_overrides_and_a_fixed_run_dir(monkeypatch):
    monkeypatch.setenv("PIXELIS_RUNS_DIR", "/shared/runs")
    entrypoint, runtime_env, run_dir = build_job("rft_tiny_cpu", ["trainer.nnodes=2"], {}, {})
    args = shlex.split(entrypoint)
    assert args[:5] == ["python", "-m", "pixelis_verl.train", "--config-name", "rft_tiny_cpu"]
    # ${now:} is resolved once, here, so the operator is told where the run lands.
    assert run_dir.startswith("/shared/runs/rft_tiny_cpu-") and args[-1] == f"pixelis.run_dir={run_dir}"
    assert "trainer.nnodes=2" in args and runtime_env["working_dir"] == str(REPO_ROOT)
    assert "/runs/" in runtime_env["excludes"] and "/.venv/" in runtime_env["excludes"]


def test_the_job_environment_forwards_our_prefixes_and_the_operators_env_wins():
    environ = {"PIXELIS_DATA_ROOT": "/media", "HF_HOME": "/hf", "WANDB_API_KEY": "k", "HOME": "/root", "FOO": "1"}
    _, runtime_env, _ = build_job("rft_tiny_cpu", ["pixelis.run_dir=/r"], {"HF_HOME": "/other", "X": "y"}, environ)
    env = runtime_env["env_vars"]
    assert (
        env["PIXELIS_DATA_ROOT"] == "/media" and env["WANDB_API_KEY"] == "k" and "HOME" not in env and "FOO" not in env
    )
    assert env["HF_HOME"] == "/other" and env["X"] == "y"
    assert env["VERL_USE_EXTERNAL_MODULES"] == "pixelis_verl.plugin" and env["RAY_OVERRIDE_JOB_RUNTIME_ENV"] == "1"
    assert env["HF_HUB_OFFLINE"] == "1"  # the tiny recipe does not allow hub downloads


def test_a_recipe_that_allows_hub_downloads_is_not_forced_offline():
    overrides = ["model.path=Qwen/Qwen2.5-VL-7B-Instruct", "pixelis.run_dir=/r", "data.path=/bench/vstar"]
    entrypoint, runtime_env, _ = build_job("eval_vstar", overrides, {}, {"HF_HUB_OFFLINE": "1"})
    assert runtime_env["env_vars"]["HF_HUB_OFFLINE"] == "0" and " -m pixelis_verl.evaluate " in entrypoint


@pytest.mark.parametrize(
    ("recipe", "overrides", "message"),
    [
        ("rft_tiny_cpu", [], "pixelis.run_dir: 'runs/rft_tiny_cpu-.*' is relative"),
        ("eval_vstar", ["pixelis.run_dir=/r", "model.path=/m"], "data.path: 'data/eval/vstar' is relative"),
        ("sft_tiny_cpu", ["pixelis.run_dir=/r"], "sft_tiny_cpu: SFT runs under torchrun, not as a Ray job"),
        ("rft_tiny_cpu", ["trainer.totl=1"], "unknown config key 'trainer.totl'"),
    ],
)
def test_mistakes_fail_before_anything_is_submitted(recipe, overrides, message, monkeypatch):
    monkeypatch.delenv("PIXELIS_RUNS_DIR", raising=False)
    monkeypatch.delenv("PIXELIS_EVAL_DATA", raising=False)
    with pytest.raises(RecipeError, match=message):
        build_job(recipe, overrides, {}, {})


def test_the_cli_reports_a_mistake_in_one_line_without_contacting_a_cluster(capsys):
    address = "http://127.0.0.1:9"  # nothing listens there: reaching it would fail differently
    assert main(["--address", address, "--config-name", "rft_tiny_cpu", "pixelis.run_dir=runs/x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("submit: error: pixelis.run_dir: 'runs/x' is relative")


def test_a_malformed_env_option_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--config-name", "rft_tiny_cpu", "--env", "NOEQUALS"])
    assert "'NOEQUALS' is not KEY=VALUE" in capsys.readouterr().err


def test_a_preflight_finding_stops_the_submission_before_the_queue(capsys):
    address = "http://127.0.0.1:9"  # nothing listens there: reaching it would fail differently
    args = ["--address", address, "--config-name", "rft_tiny_cpu", "pixelis.run_dir=/r", "trainer.n_gpus_per_node=3"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("submit: error: pre-flight: data.train_batch_size: ") and "do not divide over 3 GPUs" in err
