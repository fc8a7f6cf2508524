"""The learner model tier: a small Qwen-VL that phase-1 SFT makes competent but imperfect on the card tasks.

The tiny CI models show the mechanics and cannot succeed with their tools, so no curve made with them means
anything. The learner is large enough to learn the card task family (`data/synth/card_tasks.py`) on two cores and
small enough to build in well under an hour (`tiny/build.py` `SIZES["learner"]`). Built in three steps, all on
the project's own paths:

1. a random base at the learner size (`build_tiny_model(..., size="learner", warm_start=False)`): the locally
   trained tokenizer, the real image processor, the tool-aware chat template;
2. phase-1 SFT of that base through ``python -m pixelis_verl.sft --config-name sft_learner_cpu`` (verl's SFT
   trainer, the token-weighted loss, golden CoTA traces made by executing the tools), so the learner also
   demonstrates phase 1. Two stages of the same recipe (`STAGES`): the first weights the answer token 8x, so the
   model learns to read the colour off the zoomed view; the second continues from it with the answer at weight 1
   and a lower rate, so the calls' arguments (the region copied from the question) recover. Measured
   (docs/results.md section 2): the first stage alone reads the view (teacher-forced answer loss 0.16 nats) but
   copies no region (its greedy calls miss: 4.2% with tools); without the answer weight the model copies regions
   but answers one colour (11.7%); both stages: 22.9%;
3. the last Hugging Face checkpoint becomes ``<out>/<family>``, with a marker recording the build.

    python -m pixelis_verl.tiny.learner --out DIR [--family qwen3_vl] [--force] [SFT overrides ...]
    make learner

`learner_model_path(family)` returns the cached build (``$PIXELIS_LEARNER_DIR``, default
``~/.cache/pixelis_verl/learner``), building it under a file lock on first use. Not part of `make install` or CI.

The default family is Qwen3-VL: the card questions name their regions in its frame (0..1000), so its zoom calls
copy the question's numbers. A Qwen2.5-VL learner (``--family qwen2_5_vl``) builds too, but its tools read pixels
of the shown image, so it would have to convert the question's coordinates, which a model of this size does not
learn.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pixelis_verl.tiny.build import FAMILIES, build_tiny_model, cache_root, cached_build
from pixelis_verl.tiny.build import MARKER as BASE_MARKER

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("PIXELIS_LOGGING_LEVEL", "WARN").upper())

LEARNER_VERSION = 4  # bump whenever the build (size, recipe, task family) changes; cached builds are then rebuilt
MARKER = "pixelis_learner.json"
RECIPE = "sft_learner_cpu"
DEFAULT_FAMILY = "qwen3_vl"  # see the module docstring
SFT_RUN = "sft_run"  # the SFT run directory kept beside the model: metrics.jsonl (the SFT curve) and config.yaml
# Overrides of each SFT stage over the recipe; a stage after the first starts from the one before it.
STAGES: tuple[tuple[str, ...], ...] = (
    (),  # the recipe as it is: 330 steps, answer weight 8, lr 1e-3 cosine to 1e-4
    ("data.token_weights.answer=1", "trainer.total_training_steps=100", "trainer.test_freq=50", "optim.lr=5e-4"),
)


def learner_root() -> Path:
    return cache_root("PIXELIS_LEARNER_DIR", "learner")


def read_marker(path: Path) -> dict | None:
    """The build record of a learner directory, or None when it is missing, stale or unreadable."""
    try:
        marker = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if marker.get("learner_version") == LEARNER_VERSION else None


def build_learner(family: str, out_dir: Path, seed: int = 0, overrides: list[str] | None = None) -> Path:
    """Build the learner of `family` at `out_dir` (base, SFT, checkpoint); returns `out_dir`.

    Everything happens in a sibling staging directory that replaces `out_dir` only when complete.
    """
    out_dir = Path(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise FileExistsError(f"learner: {out_dir} is not empty and holds no {MARKER}; not overwriting it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    start = time.monotonic()
    try:
        base = build_tiny_model(family, staging / "base", seed=seed, warm_start=False, size="learner")
        start_from, steps = base, []
        run_dirs = [staging / (SFT_RUN if number == 0 else f"{SFT_RUN}_{number}") for number in range(len(STAGES))]
        for stage, run_dir in zip(STAGES, run_dirs, strict=True):  # the CLI's overrides apply to every stage
            steps.append(_sft(family, start_from, run_dir, [*stage, *(overrides or [])]))
            start_from = run_dir / "checkpoints" / f"global_step_{steps[-1]}" / "huggingface"
            _complete(start_from, base)
        model = staging / "model"
        shutil.copytree(start_from, model)
        # The model is kept once, below; the synthesised traces (~1.3 GB) can be made again from the recipe's seeds.
        for run_dir in run_dirs:
            shutil.rmtree(run_dir / "checkpoints")
            shutil.rmtree(run_dir / "data", ignore_errors=True)
            shutil.move(run_dir, model / run_dir.name)
        marker = {
            "learner_version": LEARNER_VERSION,
            "family": family,
            "seed": seed,
            "recipe": RECIPE,
            "overrides": list(overrides or []),
            "stages": [list(stage) for stage in STAGES],
            "sft_steps": sum(steps),
            "build_seconds": round(time.monotonic() - start, 1),
        }
        (model / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        model.chmod(0o755)
        shutil.rmtree(out_dir, ignore_errors=True)
        model.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _complete(checkpoint: Path, base: Path) -> None:
    """Copy what a saved checkpoint lacks from the base: processor config, chat template, remote code."""
    for extra in base.iterdir():
        skip = extra.name.startswith("model") or extra.name == BASE_MARKER
        if extra.is_file() and not skip and not (checkpoint / extra.name).exists():
            shutil.copy2(extra, checkpoint / extra.name)


def _sft(family: str, base: Path, run_dir: Path, overrides: list[str]) -> int:
    """Phase 1 on the base through our own SFT entry, with the family's tools (its coordinate frame); returns the
    step of its last checkpoint."""
    tools = FAMILIES[family].tool_config_path()
    command = [sys.executable, "-m", "pixelis_verl.sft", "--config-name", RECIPE]
    command += [f"model.path={base}", f"pixelis.run_dir={run_dir}", f"pixelis.sft_data.tool_config={tools}", *overrides]
    logger.info("learner SFT: %s", " ".join(command))
    code = subprocess.call(command)
    if code != 0:
        raise RuntimeError(f"learner: SFT failed with exit code {code} (its output is above)")
    steps = sorted(int(p.name.rsplit("_", 1)[1]) for p in (run_dir / "checkpoints").glob("global_step_*"))
    if not steps:
        raise RuntimeError(f"learner: SFT saved no checkpoint under {run_dir / 'checkpoints'}")
    return steps[-1]


def learner_model_path(family: str = DEFAULT_FAMILY) -> Path:
    """The cached learner of `family`, built on first use (tens of minutes); safe from parallel processes."""
    if family not in FAMILIES:
        raise ValueError(f"unknown learner family {family!r}; known: {sorted(FAMILIES)}")
    return cached_build(
        learner_root() / family, lambda path: read_marker(path) is not None, lambda path: build_learner(family, path)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the learner model tier: a random base, then phase-1 SFT.")
    parser.add_argument("--out", type=Path, default=None, help="writes OUT/<family>/ (default: the learner cache)")
    parser.add_argument("--family", default=DEFAULT_FAMILY, choices=list(FAMILIES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rebuild even when a current build exists")
    parser.add_argument(
        "overrides", nargs="*", help=f"overrides of the {RECIPE} recipe, e.g. trainer.total_training_steps=100"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    path = (args.out or learner_root()) / args.family
    if read_marker(path) and not args.force and not args.overrides:
        print(f"{args.family}: {path} is current (learner version {LEARNER_VERSION}); --force rebuilds")  # noqa: T201
        return
    build_learner(args.family, path, args.seed, args.overrides)
    print(f"{args.family}: {path}  {(path / MARKER).read_text().strip()}")  # noqa: T201


if __name__ == "__main__":
    main()
