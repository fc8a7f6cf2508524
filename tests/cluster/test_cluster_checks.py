"""Adapting a recipe to a Ray job's cluster, and what the per-node probe refuses."""

import json
import os
import stat

from omegaconf import OmegaConf

from pixelis_verl.cli import set_worker_env
from pixelis_verl.cluster import (
    JOB_CONFIG_ENV,
    _capacity_problems,
    _problems,
    attach,
    shown_env_value,
    submitted_env_vars,
    write_private,
)
from pixelis_verl.config import compose_recipe, resolve


def _job(monkeypatch, env_vars=None):
    monkeypatch.setenv(JOB_CONFIG_ENV, json.dumps({"runtime_env": {"env_vars": env_vars or {}}}))


def test_in_a_job_the_local_sizing_keys_go_and_the_runtime_env_stays(monkeypatch):
    cfg = resolve(compose_recipe("rft_tiny_cpu", ["pixelis.run_dir=/r"]))
    attach(cfg)  # outside a job: untouched
    assert cfg.ray_kwargs.ray_init.num_gpus == 2
    _job(monkeypatch, {"A": "1"})
    attach(cfg)
    assert cfg.ray_kwargs.ray_init.num_gpus is None and cfg.ray_kwargs.ray_init.num_cpus is None
    assert cfg.ray_kwargs.ray_init.runtime_env.env_vars.PIXELIS_DATA_ROOT == "/r/data"
    assert submitted_env_vars() == {"A": "1"}


def test_a_variable_the_run_sets_reaches_the_workers_runtime_env(monkeypatch):
    cfg = resolve(compose_recipe("rft_tiny_cpu", ["pixelis.run_dir=/r"]))
    monkeypatch.delenv("VERL_FILE_LOGGER_PATH", raising=False)
    set_worker_env(cfg, "VERL_FILE_LOGGER_PATH", "/r/metrics.jsonl")
    assert OmegaConf.select(cfg, "ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH") == "/r/metrics.jsonl"


def _node(**changes):
    node = {
        "node_id": "abcdef0123456789",
        "hostname": "gpu-7",
        "versions": {"verl": "0.9.1", "pixelis_verl": "0.1.0"},
        "paths": {"actor_rollout_ref.model.path": True},
        "run_dir_shared": True,
        "env": {"PIXELIS_DATA_ROOT": "/media"},
    }
    return {**node, **changes}


def test_the_probe_names_the_node_and_the_key_of_each_problem():
    cfg = OmegaConf.create({"pixelis": {"run_dir": "/local/run"}})
    expected = {"PIXELIS_DATA_ROOT": "/media"}
    assert _problems([_node(), _node()], cfg, expected) == []
    problems = _problems(
        [
            _node(paths={"actor_rollout_ref.model.path": False}),
            _node(run_dir_shared=False, env={}, versions={"verl": "0.9.0", "pixelis_verl": "0.1.0"}),
        ],
        cfg,
        expected,
    )
    assert problems == [
        "actor_rollout_ref.model.path: not found on node gpu-7 (abcdef012345)",
        "pixelis.run_dir: '/local/run' is not shared storage; node gpu-7 (abcdef012345) does not see it"
        " (checkpoints and metrics would be split across machines)",
        "PIXELIS_DATA_ROOT: node gpu-7 (abcdef012345) sees None, not '/media' (the job's runtime environment)",
        "verl: nodes run different versions ['0.9.0', '0.9.1']; use one image",
    ]


def test_too_few_nodes_with_the_gpus_per_node_fail_naming_nnodes():
    cfg = OmegaConf.create({"trainer": {"nnodes": 2, "n_gpus_per_node": 8}})
    full, half, cpu = ({"Resources": {"GPU": g, "CPU": 96.0}} for g in (8.0, 4.0, 0.0))
    assert _capacity_problems(cfg, [full, full, cpu]) == []
    (problem,) = _capacity_problems(cfg, [full, half, cpu])
    assert problem.startswith("trainer.nnodes: 2 node(s) x trainer.n_gpus_per_node=8 GPUs wanted, but only 1 of")
    assert "(GPUs per node: [0, 4, 8]" in problem


def test_secret_values_never_appear_in_problems_or_the_shown_environment():
    """Only allow-listed configuration is shown: a new secret name (an *_PASSWD, a *_CREDENTIALS) stays hidden."""
    secrets = {"WANDB_API_KEY": "k-123", "DB_PASSWD": "p-456", "GCP_CREDENTIALS": "c-789", "MY_AUTH": "a-000",
               "SOMETHING_ELSE": "s-111", "PIXELIS_STORE": "https://alice:hunter2@store.example/x"}  # fmt: skip
    seen = {name: "other-" + value for name, value in secrets.items()}
    problems = _problems([_node(env=seen)], OmegaConf.create({"pixelis": {"run_dir": "/r"}}), secrets)
    text = " ".join(problems) + json.dumps({name: shown_env_value(name, value) for name, value in secrets.items()})
    hidden = [v for name, v in [*secrets.items(), *seen.items()] if name != "PIXELIS_STORE"] + ["hunter2", "alice"]
    assert [value for value in hidden if value in text] == []
    assert "DB_PASSWD: node gpu-7 (abcdef012345) has a different value (the job's runtime environment sets it;" in text
    assert shown_env_value("PIXELIS_DATA_ROOT", "/media") == "/media"
    assert shown_env_value("PIXELIS_STORE", "s3://u:p@b/k") == "s3://<credentials>@b/k"


def test_the_local_clusters_token_file_is_private_from_its_creation(tmp_path):
    old = os.umask(0)  # the most permissive umask: the mode must come from the creation itself
    try:
        write_private(tmp_path / "ray_auth_token", "t")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ray_auth_token").stat().st_mode) == 0o600
