"""The private Ray instance a run starts requires a token that only this user can read."""

import os
import stat
import subprocess
import sys
import tempfile
import textwrap

import pytest
from omegaconf import OmegaConf

from pixelis_verl.cluster import AUTH_FOLDER_PREFIX, private_ray_auth

CFG = OmegaConf.create({"ray_kwargs": {"ray_init": {"num_cpus": 1}}})


@pytest.fixture
def no_ray_env(monkeypatch):
    for name in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_JOB_CONFIG_JSON_ENV_VAR"):
        monkeypatch.delenv(name, raising=False)


def test_a_private_instance_gets_a_private_token_for_the_run_only(no_ray_env):
    with private_ray_auth(CFG):
        assert os.environ["RAY_AUTH_MODE"] == "token"
        token = os.environ["RAY_AUTH_TOKEN_PATH"]
        assert stat.S_IMODE(os.stat(token).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(token)).st_mode) == 0o700
        assert len(open(token).read()) == 64
    assert "RAY_AUTH_MODE" not in os.environ and not os.path.exists(token)


def test_a_token_folder_left_by_a_killed_run_is_removed_by_the_next(no_ray_env, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"{AUTH_FOLDER_PREFIX}{dead.stdout.strip()}-x1"  # its process is gone (SIGKILL, no cleanup)
    alive = tmp_path / f"{AUTH_FOLDER_PREFIX}{os.getppid()}-x2"  # another run, still going
    for folder in (stale, alive):
        folder.mkdir()
        (folder / "token").write_text("t")
    with private_ray_auth(CFG):
        pass
    assert not stale.exists() and alive.exists()


@pytest.mark.parametrize(
    ("env", "cfg"),
    [({"RAY_ADDRESS": "10.0.0.1:6379"}, CFG),  # a Ray job: the cluster's own auth applies
     ({"RAY_AUTH_MODE": "disabled"}, CFG),  # the user chose
     ({}, OmegaConf.create({"ray_kwargs": {"ray_init": {"address": "10.0.0.1:6379"}}}))],
)  # fmt: skip
def test_clusters_and_user_choices_are_left_alone(no_ray_env, monkeypatch, env, cfg):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with private_ray_auth(cfg):
        assert "RAY_AUTH_TOKEN_PATH" not in os.environ


CLIENT = textwrap.dedent("""
    import ray, sys
    ray.init(address=sys.argv[1])
    print("connected", ray.cluster_resources().get("CPU"))
""")
HEAD = textwrap.dedent("""
    import os, subprocess, sys
    import ray
    from omegaconf import OmegaConf
    from pixelis_verl.cluster import private_ray_auth

    with private_ray_auth(OmegaConf.create({})):
        context = ray.init(num_cpus=1, include_dashboard=False)
        address = context.address_info["gcs_address"]
        bare = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
        for name, env in (("without", bare), ("with", dict(os.environ))):
            client = subprocess.run([sys.executable, "-c", sys.argv[1], address], env=env, capture_output=True,
                                    text=True, timeout=120)
            print(name, "token:", client.returncode, client.stdout.strip(), client.stderr.strip().splitlines()[-1:])
        ray.shutdown()
""")


def test_a_client_without_the_token_is_refused(no_ray_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    head = subprocess.run([sys.executable, "-c", HEAD, CLIENT], env=env, capture_output=True, text=True, timeout=300)
    lines = {line.split(" token:")[0]: line for line in head.stdout.splitlines() if " token:" in line}
    assert set(lines) == {"without", "with"}, head.stdout + head.stderr[-3000:]
    assert "token: 0" in lines["with"] and "connected" in lines["with"]
    assert "token: 0" not in lines["without"]
