"""A run's trajectories as one self-contained HTML page, every tool call replayed to what the model saw.

The trajectory records (`pixelis_verl.rewards.trajectory_log`) keep what the model wrote and what the tools
recorded, not the images the tools returned. Our pixel ops are deterministic, so the viewer replays each
executed call with the run's tool config on the same source pixels (a `ToolSession`, as CoTA validation does)
and gets the text and images the model got. On top it draws, from the replayed calls' step records (what the
tools found, as data; nothing parses the text the model read), where each call acted on the source image (crop,
mask and region boxes, the point segmented, OCR line boxes), a track's path on its first key frame, and captions
every returned image with its image index (what later calls name) and, for video frames, frame and time.
Calls verl never ran (malformed, an unknown tool, past the per-turn limit) are shown as written; a call whose
replay fails shows why, and the page still renders.

The replay and the drawing are `eval/replay.py`; this module lays them out. The page needs no server and no other
file: images are JPEG data URIs, the style and the filter script (`eval/viewer_page/`) inline.

    python -m pixelis_verl.eval.viewer RUN_DIR [--out FILE] [--max N]

reads RUN_DIR/config.yaml (the resolved config every run writes: tool config and data root) and
RUN_DIR/trajectories/, and writes RUN_DIR/viewer.html; it opens RFT, TTRL and evaluation runs alike.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import logging
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from PIL import Image
from tqdm import tqdm

from pixelis_verl.eval.protocols import CORRECT_FROM
from pixelis_verl.eval.replay import CallView, TurnView, for_page, pair_calls, replay
from pixelis_verl.rewards.trajectory_log import read_trajectories
from pixelis_verl.tools.session import load_tools

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("PIXELIS_LOGGING_LEVEL", "WARN"))

JPEG_QUALITY = 70  # of the page's images (0..100): tens of kB each
TOOL_CONFIG_KEY = "actor_rollout_ref.rollout.multi_turn.tool_config_path"
DATA_ROOT_KEY = "pixelis.data_root"
ASSETS = resources.files("pixelis_verl.eval") / "viewer_page"  # the page's style and filter script


def _data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    for_page(image).save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def flags(record: dict[str, Any]) -> dict[str, str]:
    """The filter attributes of a trajectory: correct (true/false/unknown), used-tool, tool-error, arm."""
    info = record.get("info") or {}
    accuracy = info.get("acc", info.get("accuracy"))
    correct = "unknown" if record.get("ground_truth") is None or accuracy is None else str(accuracy >= CORRECT_FROM)
    calls = [c for t in record.get("turns") or [] for c in t.get("calls") or []]
    steps = record.get("steps") or []
    error = any(not s.get("ok") for s in steps) or any(not c.get("well_formed") for c in calls)
    error = error or bool(info.get("malformed_calls"))
    values = {"correct": correct, "used-tool": str(bool(calls or steps)), "tool-error": str(error)}
    return {**{k: v.lower() for k, v in values.items()}, "arm": str((record.get("item") or {}).get("arm") or "")}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _figures(images: list[tuple[Image.Image, str]]) -> str:
    figures = (
        f'<figure><img src="{_data_uri(i)}" alt="{_e(c)}"><figcaption>{_e(c)}</figcaption></figure>' for i, c in images
    )
    return f'<div class="images">{"".join(figures)}</div>' if images else ""


def _arguments(value: Any) -> str:
    """Arguments as JSON, one per line (boxes stay on one line)."""
    try:
        if isinstance(value, dict) and value:
            lines = (
                f"  {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}" for k, v in value.items()
            )
            return "{\n" + ",\n".join(lines) + "\n}"
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def render_call(call: CallView) -> str:
    step = call.step or {}
    if not call.well_formed:
        status, note = "malformed", "not a JSON object with a name and an object of arguments; verl did not run it"
    elif call.step is None:
        status, note = "skipped", "not executed: an unknown tool, or past the per-turn or per-trajectory call limit"
    else:
        status, note = ("ok", "") if step.get("ok") else ("error", f"{step.get('error_kind') or 'error'} error")
    latency = f"{step['latency_ms']:.0f} ms" if isinstance(step.get("latency_ms"), int | float) else ""
    parts = [
        f'<div class="call {status}" data-tool="{_e(call.name)}" data-status="{status}">',
        f'<div class="call-head"><b>{_e(call.name or "(no name)")}</b> <span class="tag {status}">{status}</span> '
        f"<span class=note>{_e(note)} {latency}</span></div>",
        f'<pre class="args">{_e(_arguments(call.arguments))}</pre>',
    ]
    if step.get("error"):
        parts.append(f'<div class="error-text">{_e(step["error"])}</div>')
    if call.text and call.text != step.get("error"):
        parts.append(f'<pre class="text">{_e(call.text)}</pre>')
    parts.append(_figures(call.images + call.overlays))
    if call.problem:
        parts.append(f'<div class="problem">{_e(call.problem)}</div>')
    return "".join(parts) + "</div>"


def render_section(
    number: int, record: dict[str, Any], shown: list[Image.Image], turns: list[TurnView], problem: str | None
) -> str:
    flag = flags(record)
    item, info = record.get("item") or {}, record.get("info") or {}
    badge = {"true": "correct", "false": "wrong"}.get(flag["correct"], "unscored")
    seconds = f"{record['seconds']:.1f} s" if isinstance(record.get("seconds"), int | float) else None
    facts = [record.get("data_source"), f"id {item.get('id', item.get('index'))}", item.get("category"),
             flag["arm"] and f"arm {flag['arm']}", seconds, f"{record.get('response_tokens')} tokens"]  # fmt: skip
    facts_text = " · ".join(str(f) for f in facts if f)
    question = str(item.get("question") or "")
    options = item.get("options") if "\nOptions:\n" not in question else None
    attributes = " ".join(f'data-{k}="{_e(v)}"' for k, v in flag.items())
    parts = [
        f'<section class="trajectory" {attributes}>',
        f'<h2>#{number} <span class="tag {badge}">{badge}</span> <span class=note>{_e(facts_text)}</span></h2>',
        f'<pre class="question">{_e(question)}</pre>',
    ]
    if options:
        parts.append("<ol class=options type=A>" + "".join(f"<li>{_e(o)}</li>" for o in options) + "</ol>")
    parts.append(
        _figures([(image, f"image {i} as shown, {image.width}x{image.height}") for i, image in enumerate(shown)])
    )
    if problem:
        parts.append(f'<div class="problem">{_e(problem)}</div>')
    for t, turn in enumerate(turns, start=1):
        parts.append(
            f'<div class="turn"><div class="turn-head">turn {t}</div><p class="thought">{_e(turn.thought)}</p>'
        )
        parts.extend(render_call(call) for call in turn.calls)
        parts.append("</div>")
    parts.append(
        f'<div class="answer"><span class="tag {badge}">{badge}</span> answer <b>{_e(record.get("pred"))}</b> · '
        f"ground truth <b>{_e(record.get('ground_truth'))}</b></div>"
    )
    rows = "".join(
        f"<tr><td>{_e(k)}</td><td>{v:.4g}</td></tr>" for k, v in sorted(info.items()) if isinstance(v, int | float)
    )
    parts.append(f'<table class="reward"><tr><th>reward term / count</th><th>value</th></tr>{rows}</table></section>')
    return "\n".join(parts)


def _trajectory_html(number: int, record: dict[str, Any], tools: dict[str, Any], trajectories_dir: Path) -> str:
    try:
        shown, turns, problem = replay(record, tools, trajectories_dir, f"viewer-{number}")
    except Exception as e:  # a bug in the replay: show the trajectory as recorded
        logger.exception("viewer: trajectory %d could not be replayed", number)
        shown, turns, problem = [], pair_calls(record), f"replay failed: {type(e).__name__}: {e}"
    return render_section(number, record, shown, turns, problem)


def _filters(records: list[dict[str, Any]]) -> str:
    all_flags = [flags(r) for r in records]
    choices = [("correct", "true", "correct"), ("correct", "false", "wrong"), ("used-tool", "true", "used a tool"),
               ("tool-error", "true", "tool error")]  # fmt: skip
    choices += [("arm", arm, f"arm: {arm}") for arm in sorted({f["arm"] for f in all_flags} - {""})]
    buttons = (
        f'<button class="filter" data-key="{_e(k)}" data-value="{_e(v)}">{_e(label)} '
        f"({sum(f[k] == v for f in all_flags)})</button>"
        for k, v, label in choices
    )
    return f'<nav>{"".join(buttons)} <button id="clear">show all</button> <span id="shown"></span></nav>'


def write_viewer(
    records: list[dict[str, Any]],
    out: Path,
    *,
    tool_config: str | Path,
    data_root: str | Path,
    trajectories_dir: Path,
    title: str,
    max_trajectories: int | None = None,
) -> Path:
    """Write the page for `records` (the first `max_trajectories` of them) to `out`; returns `out`.

    `tool_config` and `data_root` are the run's (the calls are replayed with them); `trajectories_dir` holds the
    records' stored source images.
    """
    shown = records if max_trajectories is None else records[:max_trajectories]
    tools = load_tools(tool_config, data_root)
    sections = [
        _trajectory_html(number, record, tools, Path(trajectories_dir))
        for number, record in enumerate(tqdm(shown, desc="viewer: replaying", unit="trajectory", disable=None))
    ]
    subtitle = (
        f"{len(shown)} of {len(records)} trajectories" if len(shown) < len(records) else f"{len(records)} trajectories"
    )
    style, script = (ASSETS / "page.css").read_text(), (ASSETS / "filter.js").read_text()
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{style}</style></head><body><h1>{_e(title)} <span class=note>{subtitle}</span></h1>"
        f"{_filters(shown)}\n" + "\n".join(sections) + f"\n<script>{script}</script></body></html>\n"
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pixelis_verl.eval.viewer", description="Write a run's trajectories as one HTML page."
    )
    parser.add_argument("run_dir", type=Path, help="a run directory (config.yaml and trajectories/)")
    parser.add_argument("--out", type=Path, help="the page to write (default: RUN_DIR/viewer.html)")
    parser.add_argument("--max", type=int, help="show at most this many trajectories, oldest first")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    directory = args.run_dir / "trajectories"
    records = read_trajectories(directory) if directory.is_dir() else []
    if not records:
        parser.exit(2, f"viewer: error: no trajectory records in {directory} (the run sets pixelis.trajectories.dir)\n")
    config_path = args.run_dir / "config.yaml"
    cfg = OmegaConf.load(config_path) if config_path.is_file() else OmegaConf.create()
    tool_config, data_root = (OmegaConf.select(cfg, key) for key in (TOOL_CONFIG_KEY, DATA_ROOT_KEY))
    if not tool_config or not data_root:
        parser.exit(2, f"viewer: error: {config_path} does not set {TOOL_CONFIG_KEY} and {DATA_ROOT_KEY}\n")
    model = OmegaConf.select(cfg, "actor_rollout_ref.model.path", default="")
    out = write_viewer(
        records,
        args.out or args.run_dir / "viewer.html",
        tool_config=tool_config,
        data_root=data_root,
        trajectories_dir=directory,
        title=f"{args.run_dir.resolve().name}" + (f": {model}" if model else ""),
        max_trajectories=args.max,
    )
    sys.stdout.write(f"viewer: wrote {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
