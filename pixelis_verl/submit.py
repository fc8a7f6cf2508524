"""Submit a recipe to a Ray cluster as a Ray job: ``python -m pixelis_verl.submit -cn <recipe> [key=value ...]``.

The job runs ``python -m pixelis_verl.train`` (or ``.evaluate`` for an evaluation recipe) on the cluster with a
runtime environment that carries what every node needs, so nothing depends on the nodes' shells:

- the working directory (this checkout: code, recipes, conf; not ``.git``, ``.venv``, ``runs/``, ``data/``);
- ``VERL_USE_EXTERNAL_MODULES=pixelis_verl.plugin``: verl loads our plugin from that copy in every process;
- every ``PIXELIS_*``, ``HF_*``, ``TRANSFORMERS_*``, ``VERL_*``, ``VLLM_*``, ``NCCL_*``, ``WANDB_*``,
  ``TOKENIZERS_*``, ``OMP_*``, ``TORCHCODEC_*`` and ``MODEL_SEQ_LEN`` variable set where you submit, plus each
  ``--env KEY=VALUE``;
- ``HF_HUB_OFFLINE=1``, or ``0`` when the recipe allows hub downloads (``pixelis.allow_hub_download``).

The recipe is composed here first, so a misspelt key fails before anything is submitted; paths are checked on
the cluster, where they live (every node is probed: ``pixelis_verl/cluster.py``). The run directory must be an
absolute path on storage every node shares (``PIXELIS_RUNS_DIR`` or ``pixelis.run_dir=``): the job itself
runs in a temporary copy of the working directory. The command follows the job's log until it ends (exit 0 when
it succeeded, 1 when it failed or was stopped) unless ``--no-wait``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pixelis_verl.config import (
    PHASE_ENTRIES,
    REPO_ROOT,
    RecipeError,
    compose_recipe,
    recipe_phase,
    resolve,
    values_at,
)
from pixelis_verl.preflight import run_preflight

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
FORWARDED_PREFIXES = (
    *("PIXELIS_", "HF_", "TRANSFORMERS_", "VERL_", "VLLM_", "NCCL_", "WANDB_", "TOKENIZERS_", "OMP_"),
    *("TORCHCODEC_", "MODEL_SEQ_LEN"),  # qwen_vl_utils reads these two in the workers that decode media
)
# gitignore-style, relative to the working directory (Ray also honours .gitignore).
EXCLUDES = ["/.git/", "/.venv/", "/runs/", "/outputs/", "/data/", "__pycache__/"]
# Paths a job reads or writes (relative ones would point into the job's temporary copy of the working directory),
# with the variable the recipes read each from.
SHARED_PATH_KEYS = {
    "pixelis.run_dir": "PIXELIS_RUNS_DIR",
    "data.path": "PIXELIS_EVAL_DATA",
    "pixelis.data_root": "PIXELIS_DATA_ROOT",
    "data.train_files": None,
    "data.val_files": None,
}
TERMINAL = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 1}


def entry_module(cfg: DictConfig, recipe: str) -> str:
    """What the job runs for this recipe; SFT is a torchrun job, not a Ray one."""
    phase = recipe_phase(cfg)
    if phase == "sft":
        raise RecipeError(
            f"{recipe}: SFT runs under torchrun, not as a Ray job; see docs/cluster.md, 'SFT on several nodes'"
        )
    return PHASE_ENTRIES[phase]


def _selected(cfg: DictConfig, key: str) -> list[str]:
    try:
        return [str(v) for v in values_at(cfg, key) if v is not None]
    except Exception as exc:  # omegaconf raises many types for a failed interpolation; all are user-facing
        raise RecipeError(f"{key}: cannot resolve: {str(exc).splitlines()[0]}") from exc


def check_shared_paths(cfg: DictConfig) -> None:
    for key, variable in SHARED_PATH_KEYS.items():
        for value in _selected(cfg, key):
            if not value.startswith(("/", "~")) and "://" not in value:
                hint = f" ({key}=/shared/... or {variable}=/shared/...)" if variable else ""
                raise RecipeError(
                    f"{key}: '{value}' is relative, but a Ray job runs in a temporary copy of the working directory;"
                    f" give an absolute path on storage every node shares{hint}"
                )


def job_env_vars(cfg: DictConfig, extra: dict[str, str], environ: dict[str, str]) -> dict[str, str]:
    """The variables set in every process of the job: forwarded from `environ`, then ours, then `extra`."""
    env = {name: value for name, value in environ.items() if name.startswith(FORWARDED_PREFIXES)}
    env["VERL_USE_EXTERNAL_MODULES"] = "pixelis_verl.plugin"
    # The recipe's own ray_init.runtime_env may set a variable given here too (PIXELIS_DATA_ROOT): the recipe wins.
    env["RAY_OVERRIDE_JOB_RUNTIME_ENV"] = "1"
    # Offline follows the recipe, not the submitting shell (the Makefile exports HF_HUB_OFFLINE=1 for the tests) nor
    # the nodes' (the image sets 1): explicitly 0 or 1 in every process of the job.
    env["HF_HUB_OFFLINE"] = "0" if OmegaConf.select(cfg, "pixelis.allow_hub_download", default=False) else "1"
    env.update(extra)
    return env


def build_job(
    recipe: str,
    overrides: list[str],
    extra_env: dict[str, str],
    environ: dict[str, str],
    python: str = "python",
    working_dir: Path = REPO_ROOT,
) -> tuple[str, dict[str, Any], str]:
    """(entrypoint, runtime_env, run_dir) of the job; composes the recipe, raises RecipeError on a mistake."""
    cfg = compose_recipe(recipe, overrides)
    entry = entry_module(cfg, recipe)
    # The run directory is fixed here (a ${now:} in it would otherwise differ on the cluster) and told to the job.
    run_dir = _selected(cfg, "pixelis.run_dir")[0]
    overrides = [o for o in overrides if not o.startswith("pixelis.run_dir=")] + [f"pixelis.run_dir={run_dir}"]
    cfg.pixelis.run_dir = run_dir  # as the job will compose it: what interpolates the run dir now sees this one
    check_shared_paths(cfg)
    entrypoint = shlex.join([python, "-m", entry, "--config-name", recipe, *overrides])
    runtime_env = {
        "working_dir": str(working_dir),
        "excludes": EXCLUDES,
        "env_vars": job_env_vars(cfg, extra_env, environ),
    }
    return entrypoint, runtime_env, run_dir


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"'{text}' is not KEY=VALUE")
    return name, value


def follow(client: Any, job_id: str, poll_seconds: float = 2.0) -> str:
    """Print the job's log as it grows until the job ends; return its final status name."""
    shown = 0
    while True:
        status = str(client.get_job_status(job_id).value)
        logs = client.get_job_logs(job_id)
        print(logs[shown:], end="", flush=True)
        shown = len(logs)
        if status in TERMINAL:
            return status
        time.sleep(poll_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pixelis_verl.submit", description=__doc__.splitlines()[0])
    parser.add_argument("--config-name", "-cn", required=True, help="recipe name, a file in recipes/ without .yaml")
    parser.add_argument(
        "--address",
        default=os.environ.get("RAY_API_SERVER_ADDRESS", DEFAULT_ADDRESS),
        help=f"the Ray dashboard's job API (default: $RAY_API_SERVER_ADDRESS or {DEFAULT_ADDRESS})",
    )
    parser.add_argument("--env", type=_env_pair, action="append", default=[], help="KEY=VALUE for every process")
    parser.add_argument("--submission-id", help="the job's id (default: Ray picks one)")
    parser.add_argument("--python", default="python", help="the Python on the cluster's nodes (default: python)")
    parser.add_argument("--no-wait", action="store_true", help="return once submitted; follow with ray job logs -f")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. trainer.nnodes=2")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        entrypoint, runtime_env, run_dir = build_job(
            args.config_name, args.overrides, dict(args.env), dict(os.environ), python=args.python
        )
        # before the queue: the job runs it again at its start, where the model folder surely exists
        print(f"submit: {run_preflight(resolve(compose_recipe(args.config_name, args.overrides)))}", flush=True)
    except RecipeError as exc:
        print(f"submit: error: {exc}", file=sys.stderr)
        return 2

    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(args.address)
    job_id = client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env, submission_id=args.submission_id)
    print(f"submit: job {job_id} on {args.address}; run directory {run_dir}", flush=True)
    print(f"submit: follow with: ray job logs --address {args.address} -f {job_id}", flush=True)
    if args.no_wait:
        return 0
    try:
        status = follow(client, job_id)
    except KeyboardInterrupt:
        print(f"\nsubmit: stopped following; the job runs on (ray job stop --address {args.address} {job_id})")
        return 130
    print(f"submit: job {job_id} {status}; run directory {run_dir}", flush=True)
    return TERMINAL[status]


if __name__ == "__main__":
    sys.exit(main())
