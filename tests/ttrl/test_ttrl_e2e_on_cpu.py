"""End to end: the TTRL loop on verl's workers (FSDP actor, hf rollout, tool agent loop, reward loop) on CPU.

`python -m pixelis_verl.train --config-name ttrl_tiny_cpu` serves a synthetic stream of 32 requests with 4 bad
records mid-batch (a lone surrogate, bad JSON, a duplicate id, a missing question). The run is killed with SIGKILL
twice (after its first answers, then mid-stream after a checkpoint), the same command is run again each time,
and what the three starts wrote together is checked: every valid request answered exactly once, every bad
record dead-lettered once, an accepted update that the rollout then ran with, the corridor logged every update,
checkpoints pruned whole across the restarts.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pixelis_verl.config import REPO_ROOT
from pixelis_verl.ttrl.ledger import LEDGER_FILE, Ledger

pytestmark = pytest.mark.e2e

NUM = 32
CMD = [
    sys.executable, "-m", "pixelis_verl.train", "--config-name", "ttrl_tiny_cpu",
    f"pixelis.synth_stream.num={NUM}",
    "pixelis.synth_stream.bad_every=8",
    "ttrl.checkpoint_every=1",
    "trainer.max_actor_ckpt_to_keep=2",
    # The tiny model answers in few trajectories: learn from any answered request the vote is half sure of.
    "ttrl.gate.threshold=0.3",
    "ttrl.gate.min_answered=1",
]  # fmt: skip


def _ledger(run_dir: Path, table: str) -> list[dict]:
    """The run's answers or dead letters, read beside the process writing them."""
    if not (run_dir / "ttrl" / LEDGER_FILE).exists():
        return []
    ledger = Ledger(run_dir / "ttrl", read_only=True)
    try:
        return list(ledger.answers() if table == "answers" else ledger.dead_letters())
    finally:
        ledger.close()


def _stop_ray() -> None:
    """The killed driver's Ray processes (its local cluster) die with it or are cleared here."""
    subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True, timeout=120)


def _start_and_kill(cmd: list[str], run_dir: Path, log: Path, ready: Callable[[int], bool]) -> int:
    """Start the run and SIGKILL it (its whole process group) once `ready(answers so far)`; returns that count."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 900
        while proc.poll() is None and time.monotonic() < deadline and not ready(len(_ledger(run_dir, "answers"))):
            time.sleep(0.5)
        assert proc.poll() is None, f"the run ended before it could be killed:\n{log.read_text()[-4000:]}"
        answered = len(_ledger(run_dir, "answers"))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    _stop_ray()
    return answered


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("ttrl") / "run"
    cmd = [*CMD, f"pixelis.run_dir={run_dir}"]
    latest = run_dir / "checkpoints" / "latest_checkpointed_iteration.txt"
    # Killed twice: early (a few answers, maybe before any checkpoint), then after a checkpoint, mid-stream.
    first = _start_and_kill(cmd, run_dir, run_dir.parent / "first.log", lambda done: done >= 3)
    second = _start_and_kill(cmd, run_dir, run_dir.parent / "second.log",
                             lambda done: (latest.exists() and done >= first + 8) or done >= NUM // 2)  # fmt: skip
    third = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)
    _stop_ray()
    assert third.returncode == 0, third.stdout[-4000:] + third.stderr[-4000:]
    files = [run_dir / "metrics.1.jsonl", run_dir / "metrics.2.jsonl", run_dir / "metrics.jsonl"]  # oldest first
    metrics = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    return {"dir": run_dir, "killed_after": (first, second), "last": third.stdout + third.stderr, "metrics": metrics,
            "checkpointed": latest.exists()}  # fmt: skip


def test_every_valid_request_is_answered_exactly_once_across_two_kills(run):
    first, second = run["killed_after"]
    assert 0 < first < second < NUM
    ids = [record["id"] for record in _ledger(run["dir"], "answers")]
    assert sorted(ids) == [f"req-{i:05d}" for i in range(NUM)]  # none lost, none twice


def test_each_bad_record_is_dead_lettered_once_across_two_kills(run):
    letters = _ledger(run["dir"], "dead_letters")
    reasons = {letter["reason"] for letter in letters}
    assert len(letters) == len({letter["offset"] for letter in letters}) == NUM // 8  # each once, across the kill
    assert "not JSON" in reasons and "question must be a non-empty string" in reasons
    assert "holds text that is not valid UTF-8 (a lone surrogate)" in reasons  # it used to crash after the rollout
    assert any(reason.startswith('duplicate id "req-00000"') for reason in reasons)


def test_the_restart_resumed_from_the_checkpoint(run):
    if run["checkpointed"]:
        assert "[ttrl] resumed from" in run["last"]


def test_checkpoints_are_pruned_whole_across_the_restart(run):
    from pixelis_verl.ttrl.retention import checkpoint_steps

    root = run["dir"] / "checkpoints"
    latest = int((root / "latest_checkpointed_iteration.txt").read_text())
    assert latest in checkpoint_steps(root) and len(checkpoint_steps(root)) <= 2
    for step in checkpoint_steps(root):  # actor, EMA and state kept or removed together
        assert {"actor", "ema"} <= {p.name for p in (root / f"global_step_{step}").iterdir()}


def test_an_accepted_update_reached_the_actor_and_the_rollout_ran_with_it(run):
    steps = [m["data"] for m in run["metrics"]]
    updates = [s for s in steps if "ttrl/kl" in s]
    assert updates, "no request passed the gate"
    for s in updates:  # the corridor is logged on every update
        assert {"ttrl/corridor_accept", "ttrl/corridor_grow", "ttrl/corridor_rollback", "ttrl/lr_scale"} <= set(s)
    accepted = [i for i, s in enumerate(steps) if s.get("ttrl/corridor_accept") or s.get("ttrl/corridor_grow")]
    assert accepted, "every update was rolled back"
    # The accepted update moved the policy (KL to the EMA, which was the pre-update policy, is above zero) ...
    assert steps[accepted[0]]["ttrl/kl"] > 0
    # ... and every later update's rollout log-probs match the actor's: the rollout served the updated weights.
    later = [s["ttrl/rollout_policy_gap"] for s in steps[accepted[0] + 1 :] if "ttrl/rollout_policy_gap" in s]
    assert later and all(gap < 1e-3 for gap in later)


def test_sampled_trajectories_open_in_the_viewer(run):
    """Every 8th trajectory the reward scored is logged (a SIGKILL may tear only a last line) and renders."""
    from pixelis_verl.eval.viewer import main as viewer_main

    assert viewer_main([str(run["dir"])]) == 0
    html = (run["dir"] / "viewer.html").read_text()
    assert html.count('<section class="trajectory"') >= 4  # 32+ requests x 4 trajectories, every 8th
