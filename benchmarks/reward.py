"""Trajectories scored per second: the pixelis reward against verl's NaiveRewardManager, on one batch.

1,024 five-turn trajectories (each turn: a thought, a tool call, a tool response with a 256-token image;
then an answer), tokenised with the tiny Qwen2.5-VL tokenizer, with the step records our tools write.
Each is scored the way verl's reward workers score it: a one-row DataProto through the manager's
``run_single``, all rows of the batch gathered on one event loop (``RewardLoopWorker.compute_score_batch``).

- ``naive``: verl's ``NaiveRewardManager`` with our rule-based answer score (rewards.answers.compute_score);
- ``pixelis_local``: the full pixelis reward, the curiosity model in-process (no actor);
- ``pixelis_actor``: the full pixelis reward with the curiosity model in its named Ray actor, as in a run.

Figures are per core: this process scores on one core (``torch.set_num_threads(1)``); the actor, when
used, is a second process doing ~1 ms of work per call. The share of a GRPO step compares the reward's
time for one step's trajectories (``--trajectories-per-step``, rft_tiny_cpu: 2 prompts x 4) with the
step time ``benchmarks/cpu_step.py`` measured (``--step-s``).
Targets (issue 4): pixelis within 3x of naive; below 1% of a CPU GRPO step.

Usage: python benchmarks/reward.py [--trajectories 1024] [--repeats 3] [--step-s 7.81]
Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import tempfile
import time

import ray
import torch
from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
from verl.utils import hf_tokenizer

from pixelis_verl.config import compose_recipe, resolve
from pixelis_verl.rewards.manager import PixelisRewardManager
from pixelis_verl.rewards.rows import reward_row
from pixelis_verl.trajectory.answers import compute_score
from pixelis_verl.trajectory.steps import OBSERVATION_DIM, STEPS_KEY

TOOLS = ["zoom_in", "segment_object_at", "get_properties", "read_text", "zoom_in"]
IMAGE_TOKENS = 256


def trajectory(rng: random.Random, tokenizer) -> tuple[list[int], dict, dict]:
    turns, steps = [], []
    for t, tool in enumerate(TOOLS):
        box = [rng.randrange(0, 200), rng.randrange(0, 200)]
        box += [box[0] + rng.randrange(20, 100), box[1] + rng.randrange(20, 100)]
        call = {"name": tool, "arguments": {"bbox_2d": box}}
        turns.append(
            f"Step {t}: the {rng.choice(['sign', 'cup', 'car', 'label'])} is small, so I look at it more closely."
            f"<tool_call>\n{json.dumps(call)}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n"
            f"<|vision_start|>{'<|image_pad|>' * IMAGE_TOKENS}<|vision_end|>Zoomed into {box}.\n</tool_response>"
            "<|im_end|>\n<|im_start|>assistant\n"
        )
        steps.append(
            {
                "tool": tool, "args": call["arguments"], "ok": True, "error": None, "error_kind": None,
                "reward": 0.0, "latency_ms": 5.0, "image_index": t, "box_source": box,
                "region": [v / 400 for v in box], "span": None,
                "input_observation": [rng.random() for _ in range(OBSERVATION_DIM)],
                "observation": [rng.random() for _ in range(OBSERVATION_DIM)] if tool != "read_text" else None,
            }
        )  # fmt: skip
    answer = rng.choice(["red", "blue", "7", "STOP"])
    response = "".join(turns) + f"<answer>{answer}</answer><|im_end|>"
    fields = {"data_source": "synth", "reward_model": {"ground_truth": "red"}, "extra_info": {"kind": "colour"}}
    return tokenizer.encode(response, add_special_tokens=False), fields, {STEPS_KEY: steps}


async def score_batch(make_manager, rows) -> float:
    manager = make_manager()  # verl's managers capture the running loop: built inside it
    await manager.run_single(rows[0])  # warm-up: actor creation, first decode
    start = time.perf_counter()
    await asyncio.gather(*(manager.run_single(row) for row in rows))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--step-s", type=float, default=7.81, help="CPU GRPO step time (benchmarks/cpu_step.py)")
    parser.add_argument("--trajectories-per-step", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as run_dir:
        cfg = {
            backend: resolve(
                compose_recipe(
                    "rft_tiny_cpu",
                    [f"pixelis.run_dir={run_dir}/{backend}", f"pixelis.reward.components.curiosity.backend={backend}"],
                )
            )
            for backend in ("local", "actor")
        }
        tokenizer = hf_tokenizer(cfg["local"].actor_rollout_ref.model.path)
        rng = random.Random(0)
        rows = []
        for _ in range(args.trajectories):
            ids, fields, extra = trajectory(rng, tokenizer)
            rows.append(reward_row(ids[:64], ids, fields, extra))
        tokens = statistics.mean(len(row.batch["responses"][0]) for row in rows)

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        variants = {
            "naive": lambda: NaiveRewardManager(cfg["local"], tokenizer, compute_score),
            "pixelis_local": lambda: PixelisRewardManager(cfg["local"], tokenizer),
            "pixelis_actor": lambda: PixelisRewardManager(cfg["actor"], tokenizer),
        }
        seconds = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, make in variants.items():
                seconds[name].append(asyncio.run(score_batch(make, rows)))
        ray.shutdown()

    result: dict[str, object] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "date": time.strftime("%Y-%m-%d"),
        "trajectories": args.trajectories,
        "response_tokens_mean": round(tokens),
    }
    for name, values in seconds.items():
        best = min(values)
        result[f"{name}_traj_per_s"] = round(args.trajectories / best, 1)
        result[f"{name}_ms_per_traj"] = round(1000 * best / args.trajectories, 3)
        print(f"{name}: {args.trajectories / best:.0f} trajectories/s ({1000 * best / args.trajectories:.2f} ms each)")
    for name in ("pixelis_local", "pixelis_actor"):
        result[f"{name}_vs_naive_time_ratio"] = round(min(seconds[name]) / min(seconds["naive"]), 3)
        per_step = min(seconds[name]) / args.trajectories * args.trajectories_per_step
        result[f"{name}_share_of_cpu_step_pct"] = round(100 * per_step / args.step_s, 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
