"""End to end: the TTRL loop on verl's workers (FSDP actor, hf rollout, tool agent loop, reward loop) on CPU.

`python -m pixelis_verl.train --config-name ttrl_tiny_cpu` serves a synthetic stream of 32 requests with 4 bad
records mid-batch (a lone surrogate, bad JSON, a duplicate id, a missing question). The first process is killed
with SIGKILL mid-stream (after its first checkpoint), the same command is run again, and the union of what both
wrote is checked: every valid request answered exactly once, every bad record dead-lettered once, an accepted
update that the rollout then ran with, the corridor logged every update, checkpoints pruned whole across the restart.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pixelis_verl.config import REPO_ROOT

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


def _answers(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def _stop_ray() -> None:
    """The killed driver's Ray processes (its local cluster) die with it or are cleared here."""
    subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("ttrl") / "run"
    cmd, env = [*CMD, f"pixelis.run_dir={run_dir}"], {**os.environ}
    answers = run_dir / "ttrl" / "answers.jsonl"
    latest = run_dir / "checkpoints" / "latest_checkpointed_iteration.txt"
    log = (run_dir.parent / "first.log").open("w")
    first = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 900
    while first.poll() is None and time.monotonic() < deadline:
        done = len(_answers(answers))
        if (latest.exists() and done >= 8) or done >= NUM // 2:
            break
        time.sleep(0.5)
    assert first.poll() is None, (
        "the first run ended before it could be killed:\n" + (run_dir.parent / "first.log").read_text()[-4000:]
    )
    killed_after = len(_answers(answers))
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    _stop_ray()
    second = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1200)
    _stop_ray()
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    files = [run_dir / "metrics.1.jsonl", run_dir / "metrics.jsonl"]  # the killed start's, then the restart's
    metrics = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    return {"dir": run_dir, "killed_after": killed_after, "second": second.stdout + second.stderr, "metrics": metrics,
            "checkpointed": latest.exists()}  # fmt: skip


def test_every_valid_request_is_answered_exactly_once_across_the_kill(run):
    assert 0 < run["killed_after"] < NUM
    ids = [record["id"] for record in _answers(run["dir"] / "ttrl" / "answers.jsonl")]
    assert sorted(ids) == [f"req-{i:05d}" for i in range(NUM)]  # none lost, none twice


def test_bad_records_land_in_the_dead_letter_file(run):
    letters = [json.loads(line) for line in (run["dir"] / "ttrl" / "dead_letter.jsonl").read_text().splitlines()]
    reasons = {letter["reason"] for letter in letters}
    assert len(letters) == len({letter["offset"] for letter in letters}) == NUM // 8  # each once, across the kill
    assert "not JSON" in reasons and "question must be a non-empty string" in reasons
    assert "holds text that is not valid UTF-8 (a lone surrogate)" in reasons  # it used to crash after the rollout
    assert any(reason.startswith('duplicate id "req-00000"') for reason in reasons)


def test_the_restart_resumed_from_the_checkpoint(run):
    if run["checkpointed"]:
        assert "[ttrl] resumed from" in run["second"]


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
