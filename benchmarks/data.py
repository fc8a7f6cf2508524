"""Data pipeline throughput: golden traces synthesised per second per core, and dataset rows converted per second.

- ``synth``: CoTA traces of all seven task kinds (golden variant), every call executed by the real tools and
  every observation image written, in one process (one core: ``torch.set_num_threads(1)``). Baseline in the same
  run: generating the same tasks and writing their question images only, i.e. what a trace costs beyond its task.
  With ``--workers 2`` the parallel rate is reported too.
- ``convert``: DeepEyes-47k-format parquet rows (896 x 896 PNG question images, as in the real files) through our
  ``deepeyes`` converter (decode and check each image, write it into the trace set, the trace JSON). Peer: the
  preprocessing verl-recipe's DeepEyes recipe runs on the same rows (read the parquet, add the tool fields verl's
  multi-turn rollout needs, write the parquet back), which re-encodes nothing.
- ``render``: traces rendered to verl's multi-turn SFT parquet (reading every image back).

Usage: python benchmarks/data.py [--traces 112] [--rows 400] [--workers 2]
Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from _report import report

from pixelis_verl.data.convert import convert_source
from pixelis_verl.data.cota import TraceSet, View
from pixelis_verl.data.parquet import write_sft_parquet
from pixelis_verl.data.rl_rows import png_bytes
from pixelis_verl.data.synth.tasks import TASK_KINDS, generate_tasks
from pixelis_verl.data.synth.traces import SynthConfig, synthesize
from pixelis_verl.tools.session import load_tools, tool_schemas

REPO = Path(__file__).resolve().parents[1]
TOOLS_YAML = REPO / "conf" / "tools" / "pixel_tools.yaml"
VIEW = View("absolute_resized", 4 * 28 * 28, 1280 * 28 * 28, 28)  # Qwen2.5-VL at the RL recipes' 1280 tokens


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def bench_synth(root: Path, num: int, workers: int) -> dict[str, float]:
    root.mkdir(parents=True, exist_ok=True)
    config = SynthConfig(TOOLS_YAML, VIEW, seed=0, kinds=tuple(TASK_KINDS), mix=(("golden", 1.0),))
    synthesize(config, TraceSet(root / "warmup"), len(TASK_KINDS), progress=False)  # OCR/segmenter first loads
    seconds, _ = _timed(lambda: synthesize(config, TraceSet(root / "serial"), num, progress=False))
    result = {"synth_traces_per_s_per_core": num / seconds}

    def tasks_only() -> None:
        for i, task in enumerate(generate_tasks(num, 0, list(TASK_KINDS))):
            task.image.save(root / f"task{i}.png")

    base_seconds, _ = _timed(tasks_only)
    result["tasks_only_per_s"] = num / base_seconds
    result["synth_vs_tasks_only_ratio"] = result["synth_traces_per_s_per_core"] / result["tasks_only_per_s"]
    if workers > 1:
        seconds, _ = _timed(lambda: synthesize(config, TraceSet(root / "par"), num, workers=workers, progress=False))
        result[f"synth_traces_per_s_{workers}_workers"] = num / seconds
    return result


def deepeyes_rows(num: int) -> list[dict]:
    rows = []
    for i, task in enumerate(generate_tasks(num, 1, ["text", "sign"])):
        rows.append({
            "data_source": "vstar",
            "prompt": [{"role": "system", "content": "You are a helpful assistant."},
                       {"role": "user", "content": f"<image>\n{task.question}"}],
            "images": [{"bytes": png_bytes(task.image), "path": None}],
            "ability": "vqa",
            "env_name": "visual_toolbox_v2",
            "reward_model": {"ground_truth": task.answer, "style": "model"},
            "extra_info": {"question": task.question, "index": i},
        })  # fmt: skip
    return rows


def deepeyes_recipe_preprocess(source: Path, out: Path) -> None:
    """The peer: what verl-recipe's deepeyes47k_preprocess does to each row (tool fields added, nothing decoded)."""
    frame = pd.read_parquet(source)
    frame["agent_name"] = "tool_agent"
    frame["extra_info"] = [
        {**info, "need_tools_kwargs": True, "tools_kwargs": {"image_zoom_in_tool": {"create_kwargs": {"image": "x"}}}}
        for info in frame["extra_info"]
    ]
    frame.to_parquet(out)


def bench_convert(root: Path, num: int) -> dict[str, float]:
    root.mkdir(parents=True, exist_ok=True)
    source = root / "deepeyes.parquet"
    pd.DataFrame(deepeyes_rows(num)).to_parquet(source)
    out = TraceSet(root / "converted")
    kwargs = {"view": VIEW, "tools": load_tools(TOOLS_YAML, out.root)}
    seconds, report = _timed(lambda: convert_source("deepeyes", source, out, kwargs, progress=False))
    assert report.kept == num, report.summary()
    peer_seconds, _ = _timed(lambda: deepeyes_recipe_preprocess(source, root / "peer.parquet"))
    ours, peer = num / seconds, num / peer_seconds
    render_seconds, _ = _timed(
        lambda: write_sft_parquet(((t, out.root) for t in out.traces()), tool_schemas(kwargs["tools"]), root / "s.pq")
    )
    return {
        "convert_rows_per_s": ours,
        "deepeyes_recipe_preprocess_rows_per_s": peer,
        "convert_vs_deepeyes_preprocess_ratio": ours / peer,
        "render_sft_rows_per_s": num / render_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=112)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        result = {**bench_synth(root / "synth", args.traces, args.workers), **bench_convert(root / "conv", args.rows)}
    report(result, f"python benchmarks/data.py --traces {args.traces} --rows {args.rows} --workers {args.workers}", 3)


if __name__ == "__main__":
    main()
