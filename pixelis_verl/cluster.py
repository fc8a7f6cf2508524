"""Running a recipe on a Ray cluster that already exists (a submitted Ray job), and checking every node first.

Started by ``python -m pixelis_verl.train`` alone, verl's ``run_ppo`` starts a private Ray instance sized by
``ray_kwargs.ray_init`` (``conf/cluster/cpu_local.yaml`` declares CPUs and logical GPU slots there). Inside a Ray
job the same call *connects* to the job's cluster, and ``ray.init`` refuses sizing arguments when it connects:
:func:`attach` drops them, so one recipe serves both launches.

A multi-node run then fails late and far from its cause when one node differs: a model path that exists only
on the head, a run directory on node-local disk (checkpoints split across machines), an environment variable
that never reached the workers, another verl or pixelis_verl version. :func:`check_nodes` runs one small task
on every alive node with the run's own runtime environment before verl starts, writes what each node saw to
``<run_dir>/cluster.json`` and refuses to start, naming the node and the key, when something is off.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from pixelis_verl.typed_config import RecipeError, values_at

# ray.init arguments that only size a new local instance; connecting to a cluster with them raises.
LOCAL_ONLY_RAY_INIT_KEYS = ("num_cpus", "num_gpus", "resources", "labels", "object_store_memory", "_system_config")
# Set by Ray for a job's entrypoint: the job's runtime environment as JSON, and the cluster's GCS address.
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"
CLUSTER_REPORT = "cluster.json"
# Environment values that may appear in errors and cluster.json: an allow-list of configuration prefixes, minus
# any name that still looks secret. Every other value is "<set>"; credentials in a shown URL are cut.
SHOWN_ENV_PREFIXES = ("PIXELIS_", "VERL_", "HF_HUB_", "HF_HOME", "HF_DATASETS_OFFLINE", "TRANSFORMERS_", "TOKENIZERS_",
                      "CUDA_", "NCCL_", "OMP_", "PYTORCH_", "TORCH_", "VLLM_", "PYTHONPATH")  # fmt: skip
SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "PRIVATE", "COOKIE", "SESSION")
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def in_ray_job() -> bool:
    """True in the entrypoint of a submitted Ray job (or wherever RAY_ADDRESS names a running cluster)."""
    return JOB_CONFIG_ENV in os.environ or bool(os.environ.get("RAY_ADDRESS"))


def submitted_env_vars() -> dict[str, str]:
    """The environment variables the submitted job's runtime environment sets (empty outside a job)."""
    job = json.loads(os.environ.get(JOB_CONFIG_ENV, "{}"))
    return dict(job.get("runtime_env", {}).get("env_vars", {}))


def attach(cfg: DictConfig) -> None:
    """In a Ray job, make the recipe's ``ray_kwargs.ray_init`` valid for connecting to the cluster (in place).

    The sizing keys belong to the cluster now (``ray start --num-gpus ...``); the runtime environment stays,
    and Ray merges it with the job's. Outside a job nothing changes.
    """
    ray_init = OmegaConf.select(cfg, "ray_kwargs.ray_init")
    if ray_init is None or not in_ray_job():
        return
    with open_dict(ray_init):
        for key in LOCAL_ONLY_RAY_INIT_KEYS:
            if key in ray_init:
                ray_init[key] = None


RAY_AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")
AUTH_FOLDER_PREFIX = "pixelis-ray-auth-"  # + the process id: a folder whose process is gone is stale


def write_private(path: Path, text: str) -> None:
    """Create `path` readable by its owner only from the start: never a moment world-readable (a token file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


@contextlib.contextmanager
def private_ray_auth(cfg: DictConfig) -> Iterator[None]:
    """Token authentication for the private Ray instance verl starts when no cluster is attached.

    Started by ``ray.init()``, that instance's GCS listens beyond the loopback interface, and without a token
    anything that reaches the port may submit work to it. Here a fresh random token is written to a file only
    this user can read, and ``RAY_AUTH_MODE=token`` with its path goes into this process's environment, which
    the instance and every worker it starts inherit; both are removed when the run ends. A Ray job (the
    cluster's own auth applies), an explicit ``ray_init.address`` or an auth mode the user set are left alone.
    """
    address = OmegaConf.select(cfg, "ray_kwargs.ray_init.address")
    if in_ray_job() or address or "RAY_AUTH_MODE" in os.environ:
        yield
        return
    _remove_stale_tokens()
    folder = Path(tempfile.mkdtemp(prefix=f"{AUTH_FOLDER_PREFIX}{os.getpid()}-"))  # 0700
    token = folder / "token"
    write_private(token, secrets.token_hex(32))
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)})
    _reload_ray_auth()
    try:
        yield
    finally:
        for name in RAY_AUTH_ENV:
            os.environ.pop(name, None)
        _reload_ray_auth()
        shutil.rmtree(folder, ignore_errors=True)


def _remove_stale_tokens() -> None:
    """Remove token folders that runs killed before their cleanup left behind (named by their process id)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{AUTH_FOLDER_PREFIX}*-*"):
        pid = folder.name.removeprefix(AUTH_FOLDER_PREFIX).split("-")[0]
        if pid.isdigit() and folder.stat().st_uid == os.getuid() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


def _reload_ray_auth() -> None:
    """Make an already imported Ray read the auth variables again.

    Ray reads them into its C++ config when ``ray._raylet`` loads (verl imports Ray long before a run starts), so
    a change after that reaches the instance it starts but not this process's own client. Ray's own tests refresh
    them this way (``ray._private.authentication_test_utils.reset_auth_token_state``).
    """
    if "ray._raylet" in sys.modules:
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


def _local_path(value: Any) -> str | None:
    """A filesystem path the run reads on every node, or None for hub ids and remote URLs."""
    if not isinstance(value, str) or not value or "://" in value:
        return None
    return value if value.startswith(("/", "~", ".")) or os.path.exists(value) else None


def _read_paths(cfg: DictConfig) -> list[tuple[str, Any]]:
    """(key, value) of the files and folders every node reads: the model, the data files, the media root."""
    found = []
    for key in ("actor_rollout_ref.model.path", "data.train_files", "data.val_files", "pixelis.data_root"):
        values = values_at(cfg, key)
        found += [(f"{key}[{i}]" if len(values) > 1 else key, v) for i, v in enumerate(values)]
    return found


def _node_probe(paths: dict[str, str], marker: str, env_names: list[str]) -> dict[str, Any]:
    """Runs on one node: what it sees of the run (versions, paths, the shared marker, the job's variables)."""
    import importlib.metadata as metadata

    import ray

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    marker_path = Path(marker)
    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "hostname": socket.gethostname(),
        "versions": {dist: version(dist) for dist in ("verl", "pixelis_verl", "ray", "torch", "transformers")},
        "paths": {key: os.path.exists(os.path.expanduser(path)) for key, path in paths.items()},
        "run_dir_shared": marker_path.exists() and marker_path.read_text() == marker_path.name,
        "env": {name: os.environ.get(name) for name in env_names},
    }


def _problems(reports: list[dict[str, Any]], cfg: DictConfig, expected_env: dict[str, str]) -> list[str]:
    problems = []
    for report in reports:
        where = f"node {report['hostname']} ({report['node_id'][:12]})"
        problems += [f"{key}: not found on {where}" for key, found in report["paths"].items() if not found]
        if not report["run_dir_shared"]:
            problems.append(
                f"pixelis.run_dir: '{cfg.pixelis.run_dir}' is not shared storage; {where} does not see it"
                " (checkpoints and metrics would be split across machines)"
            )
        problems += [
            _env_problem(name, report["env"].get(name), value, where)
            for name, value in expected_env.items()
            if report["env"].get(name) != value
        ]
    for dist in ("verl", "pixelis_verl"):
        seen = {report["versions"][dist] for report in reports}
        if len(seen) > 1:
            problems.append(f"{dist}: nodes run different versions {sorted(map(str, seen))}; use one image")
    return problems


def _capacity_problems(cfg: DictConfig, nodes: list[dict[str, Any]]) -> list[str]:
    """verl places `n_gpus_per_node` ranks on each of `nnodes` nodes; too few such nodes would wait forever."""
    nnodes, per_node = int(cfg.trainer.nnodes), int(cfg.trainer.n_gpus_per_node)
    fitting = sum(node["Resources"].get("GPU", 0) >= per_node for node in nodes)
    if fitting >= nnodes:
        return []
    seen = sorted(int(node["Resources"].get("GPU", 0)) for node in nodes)
    return [
        f"trainer.nnodes: {nnodes} node(s) x trainer.n_gpus_per_node={per_node} GPUs wanted, but only {fitting} of the"
        f" cluster's {len(nodes)} node(s) have {per_node} GPUs (GPUs per node: {seen}; ray status shows them)"
    ]


def shown_env_value(name: str, value: str | None) -> str | None:
    """`value` as logs and cluster.json may show it: allow-listed configuration only (see SHOWN_ENV_PREFIXES)."""
    if value is None:
        return None
    upper = name.upper()
    if not upper.startswith(SHOWN_ENV_PREFIXES) or any(marker in upper for marker in SECRET_MARKERS):
        return "<set>"
    return _URL_CREDENTIALS.sub("<credentials>@", value)


def _env_problem(name: str, seen: str | None, wanted: str, where: str) -> str:
    shown_seen, shown_wanted = shown_env_value(name, seen), shown_env_value(name, wanted)
    if shown_wanted == "<set>":
        state = "does not have it" if seen is None else "has a different value"
        return f"{name}: {where} {state} (the job's runtime environment sets it; values not shown)"
    return f"{name}: {where} sees {shown_seen!r}, not {shown_wanted!r} (the job's runtime environment)"


def check_nodes(cfg: DictConfig) -> list[dict[str, Any]]:
    """Probe every alive node with the run's runtime environment; write ``cluster.json``; raise on a problem.

    Connects to the cluster and disconnects again, so that verl's own ``ray.init`` (with its runtime
    environment) is the one the run uses.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    run_dir = Path(cfg.pixelis.run_dir)
    marker = run_dir / f".shared-{secrets.token_hex(4)}"
    marker.write_text(marker.name)
    paths = {key: path for key, value in _read_paths(cfg) if (path := _local_path(value)) is not None}
    recipe_env = OmegaConf.select(cfg, "ray_kwargs.ray_init.runtime_env.env_vars") or {}
    runtime_env = {"env_vars": {str(k): str(v) for k, v in recipe_env.items()}}
    # The recipe's variables win over the job's (submit sets RAY_OVERRIDE_JOB_RUNTIME_ENV=1), as in verl's init.
    expected_env = {**submitted_env_vars(), **runtime_env["env_vars"]}
    probe = ray.remote(num_cpus=0)(_node_probe)
    try:
        ray.init(runtime_env=runtime_env, log_to_driver=False)
        nodes = [node for node in ray.nodes() if node["Alive"]]
        reports = ray.get(
            [
                probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote(
                    paths, str(marker), sorted(expected_env)
                )
                for node in nodes
            ]
        )
    finally:
        ray.shutdown()
        marker.unlink(missing_ok=True)
    problems = _capacity_problems(cfg, nodes) + _problems(reports, cfg, expected_env)
    for node, report in zip(nodes, reports, strict=True):
        report["resources"] = node["Resources"]
        # The report is a file in the run directory: no API keys in it.
        report["env"] = {name: shown_env_value(name, value) for name, value in report["env"].items()}
    shown_env = {name: shown_env_value(name, value) for name, value in expected_env.items()}
    (run_dir / CLUSTER_REPORT).write_text(json.dumps({"nodes": reports, "expected_env": shown_env}, indent=2) + "\n")
    if problems:
        raise RecipeError("; ".join(problems))
    return reports


def check_cluster(cfg: DictConfig) -> None:
    """In a Ray job, check every node of the cluster (:func:`check_nodes`); elsewhere nothing."""
    if in_ray_job():
        check_nodes(cfg)
