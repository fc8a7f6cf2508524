"""A Ray cluster of several nodes on one machine, on loopback: rehearse the cluster path without a cluster.

``python -m pixelis_verl.local_cluster up --nodes 2`` starts a head and one worker node with the same ``ray start``
commands as docs/cluster.md (token authentication on, the dashboard and its job API on 127.0.0.1), prints the
variables a client needs, and ``down`` stops them. On the CPU runtime each node offers ``--gpus`` logical GPU
slots (one FSDP rank each, see pixelis_verl/runtime/platform.py). The RFT end-to-end test and the cluster
benchmark use :class:`LocalCluster`.

``ray stop`` (what ``down`` runs) stops every Ray process of this machine's user, not only this cluster's.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pixelis_verl.cluster import write_private

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _ray() -> str:
    """The ``ray`` CLI of this Python's environment (a venv's bin is not always on PATH)."""
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")


@dataclass
class LocalCluster:
    """Head + (nodes - 1) workers on loopback, each with `cpus` CPUs and `gpus` (logical) GPUs."""

    state_dir: Path
    nodes: int = 2
    cpus: int = 8
    gpus: int = 1
    gcs_port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)

    @property
    def token_path(self) -> Path:
        return self.state_dir / "ray_auth_token"

    @property
    def address(self) -> str:
        """The job API (``--address`` of ``ray job submit`` and ``python -m pixelis_verl.submit``)."""
        return f"http://{LOOPBACK}:{self.dashboard_port}"

    @property
    def client_env(self) -> dict[str, str]:
        """What a client (and every ``ray start``) needs in its environment to talk to this cluster."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_path)}

    @staticmethod
    def _path() -> str:
        """This Python's bin directory first: a job's ``python`` entrypoint is then this environment's Python."""
        return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

    def _ray_start(self, *args: str) -> None:
        common = [f"--node-ip-address={LOOPBACK}", f"--num-cpus={self.cpus}", f"--num-gpus={self.gpus}"]
        subprocess.run(
            [_ray(), "start", *args, *common, "--disable-usage-stats"],
            check=True,
            env={**os.environ, **self.client_env, "PATH": self._path()},
            capture_output=True,
            text=True,
        )

    def up(self) -> LocalCluster:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not self.token_path.exists():
            write_private(self.token_path, secrets.token_hex(32))
        self._ray_start(
            "--head",
            f"--port={self.gcs_port}",
            f"--dashboard-host={LOOPBACK}",
            f"--dashboard-port={self.dashboard_port}",
        )
        for _ in range(self.nodes - 1):
            self._ray_start(f"--address={LOOPBACK}:{self.gcs_port}")
        return self

    def down(self) -> None:
        subprocess.run([_ray(), "stop"], check=False, capture_output=True, env={**os.environ, **self.client_env})

    def __enter__(self) -> LocalCluster:
        return self.up()

    def __exit__(self, *_exc: object) -> None:
        self.down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pixelis_verl.local_cluster", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=8, help="logical CPUs per node")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs per node (logical training slots on CPU)")
    parser.add_argument("--state-dir", type=Path, default=Path.home() / ".cache" / "pixelis_verl" / "local_cluster")
    args = parser.parse_args(argv)
    cluster = LocalCluster(args.state_dir, nodes=args.nodes, cpus=args.cpus, gpus=args.gpus)
    if args.action == "down":
        cluster.down()
        return 0
    try:
        cluster.up()
    except subprocess.CalledProcessError as exc:
        sys.stderr.write(f"local_cluster: error: {' '.join(exc.cmd[:2])} failed:\n{exc.stderr}{exc.stdout}")
        return 1
    exports = {**cluster.client_env, "RAY_API_SERVER_ADDRESS": cluster.address}
    sys.stdout.write("".join(f"export {name}={value}\n" for name, value in exports.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
