"""``python -m pixelis_verl.plot``: curves from the metrics verl's own FileLogger writes."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from verl.utils.tracking import FileLogger

from pixelis_verl.plot import PANELS, main, matching, plot_run, read_metrics
from pixelis_verl.rewards.registry import REWARD_COMPONENTS

REPO_ROOT = Path(__file__).resolve().parents[1]


def rft_step(step: int) -> dict:
    """What a pixelis RFT step logs (names as in real runs), plus validation every other step."""
    metrics = {
        "critic/score/mean": 0.1 * step,
        "actor/kl_loss": np.float32(0.01 * step),  # FileLogger serialises numpy scalars
        "actor/ppo_kl": 0.001 * step,
        "response_length/mean": 40.0 + step,
        "response_length/clip_ratio": 0.0,
        "timing_s/step": 3.0,
        "actor/entropy": float("nan"),  # written as null: no point
        **{f"pixelis_reward/{key}/mean": 0.05 * step for key in ("accuracy", "curiosity", "coherence", "acc")},
        **{f"pixelis_reward/{key}/mean": 1.0 / step for key in ("tool_calls", "pixel_ops", "uses_pixel_ops")},
    }
    if step % 2 == 0:
        metrics["val-core/vstar/direct/acc/mean@4"] = 0.3 + 0.01 * step  # data sources may hold '/'
        metrics["val-core/vstar/direct/acc/maj@4/std"] = 0.02
        metrics["val-aux/vstar/direct/curiosity/mean@4"] = 0.02 * step
    return metrics


def ttrl_step(step: int) -> dict:
    return {
        "ttrl/gate_rate": 0.5,
        "ttrl/vote_confidence": 0.6 + 0.01 * step,
        "ttrl/requests_per_second": 2.0 * step,
        "ttrl/rollbacks": float(step > 3),
        "ttrl/kl": 0.002 * step,
    }


def write_metrics(path: Path, steps: range, monkeypatch: pytest.MonkeyPatch, offset: float = 0.0) -> None:
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(path))
    logger = FileLogger("pixelis", "test")
    for step in steps:
        logger.log({key: value + offset for key, value in {**rft_step(step), **ttrl_step(step)}.items()}, step)
    logger.finish()


@pytest.fixture
def resumed_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run started twice: steps 1-4, then a restart from the step-2 checkpoint that redid steps 3-4 and went on."""
    write_metrics(tmp_path / "metrics.1.jsonl", range(1, 5), monkeypatch, offset=100.0)
    write_metrics(tmp_path / "metrics.jsonl", range(3, 7), monkeypatch)
    return tmp_path


def test_plot_run_writes_one_nonblank_png_per_matched_panel(resumed_run: Path):
    paths = plot_run(resumed_run)
    expected = ["reward_components", "tool_calls", "kl", "accuracy", "response_length", "ttrl"]
    assert paths == [resumed_run / "plots" / f"{key}.png" for key in expected]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG"
            pixels = np.asarray(image.convert("L"))
        assert pixels.std() > 5, f"{path.name} looks blank"


def test_resumed_run_reads_every_start_and_the_latest_wins(resumed_run: Path):
    files, series = read_metrics(resumed_run)
    assert [f.name for f in files] == ["metrics.1.jsonl", "metrics.jsonl"]
    steps, values = series["ttrl/kl"]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert values[:2] == pytest.approx([100.002, 100.004])  # only the first start logged steps 1-2
    assert values[2:] == pytest.approx([0.006, 0.008, 0.010, 0.012])  # the restart redid 3-4
    assert "actor/entropy" not in series


def test_plot_writes_to_out_dir(resumed_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    out = tmp_path / "elsewhere"
    assert main([str(resumed_run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed and all(Path(p).parent == out and Path(p).is_file() for p in printed)
    assert not (resumed_run / "plots").exists()


def test_panels_pick_verl_metric_names():
    names = list(rft_step(2)) + list(ttrl_step(2))
    accuracy = matching(PANELS["accuracy"].axes[0], names)
    assert accuracy == ["pixelis_reward/acc/mean", "val-core/vstar/direct/acc/mean@4"]  # std is not a curve
    assert matching(PANELS["kl"].axes[0], names) == ["actor/kl_loss", "actor/ppo_kl", "ttrl/kl"]
    assert not any(matching(axis, ["timing_s/step"]) for panel in PANELS.values() for axis in panel.axes)


def test_every_registered_reward_component_is_plotted():
    from pixelis_verl.rewards import manager  # noqa: F401  (importing the manager registers every component)

    names = [f"pixelis_reward/{name}/mean" for name in REWARD_COMPONENTS]
    assert sorted(matching(PANELS["reward_components"].axes[0], names)) == sorted(names)


def test_cli_without_metrics_exits_2_with_one_line(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "pixelis_verl.plot", str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"plot: error: no metrics.jsonl in {tmp_path} ")
    assert not (tmp_path / "plots").exists()


def test_empty_metrics_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture):
    (tmp_path / "metrics.jsonl").write_text("")
    assert main([str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"plot: error: {tmp_path / 'metrics.jsonl'} held no metrics\n"


def test_only_unplottable_metrics_exit_2_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(tmp_path / "metrics.jsonl"))
    logger = FileLogger("pixelis", "test")
    for step in (1, 2):
        logger.log({"timing_s/step": 3.0, "perf/throughput": 10.0}, step)
    logger.finish()
    capsys.readouterr()
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{tmp_path / 'metrics.jsonl'} held no plottable metric" in err
    assert not (tmp_path / "plots").exists()


def test_partial_last_line_of_a_killed_start_is_skipped(resumed_run: Path):
    with (resumed_run / "metrics.1.jsonl").open("a") as f:
        f.write('{"step":5,"data":{"ttrl/kl":')
    _, series = read_metrics(resumed_run)
    assert series["ttrl/kl"][0] == [1, 2, 3, 4, 5, 6]
