"""CoTA traces for the synthetic pixel tasks, made by running the real tools.

For each task (`tasks.py`) the planner of its kind (`golden.py`) decides the calls that reveal the answer from
the task's ground truth; a `ToolSession` executes them on the task's media exactly as verl's agent loop would,
and the tools' real outputs become the observations. Three variants, one per trace:

- `golden`: the calls that reveal the answer, then the answer.
- `self_correction`: first a plausible wrong action (a zoom into an empty region, frames from the wrong part of
  the video), its real observation and a thought that notices the miss; then the golden calls.
- `trap`: the question carries a confident but wrong suggestion ("someone says it is blue"); the trace checks
  with the tools anyway and answers what they show. Teaches verifying over agreeing.

Every trace is deterministic in (seed, index) and independent of how many are made, so synthesis parallelises
over processes without changing a byte.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pixelis_verl.data.cota import Trace, TraceSet, Video, View
from pixelis_verl.data.replay import run_steps
from pixelis_verl.data.synth.card_tasks import CARD_LEVELS
from pixelis_verl.data.synth.golden import PLANNERS, Call, Frame
from pixelis_verl.data.synth.moving_object import write_video
from pixelis_verl.data.synth.tasks import TASK_KINDS, TASK_TOOLS, PixelTask
from pixelis_verl.data.synth.zoom_tasks import COLOURS, SHAPES, WORDS
from pixelis_verl.ops.track import DIRECTIONS
from pixelis_verl.tools.session import load_tools

GENERATOR = "pixelis_verl.data.synth.traces"
VERSION = 1
DEFAULT_MIX = {"golden": 0.7, "self_correction": 0.2, "trap": 0.1}

# What the agent thinks before each call, by tool; `{what}` names the task's target.
THOUGHTS = {
    "zoom_in": "The {what} is too small to make out at this size. I'll zoom into the region around it.",
    "read_text": "The text of the {what} is tiny. I'll read it with OCR on a box around it.",
    "segment_object_at": "I'll segment the object at this point to measure it.",
    "get_properties": "Now I'll measure the mask I just made.",
    "track_object": "I'll track the {what} through the video and look at its displacement.",
    "select_frames": "I'll look at frames spread over the video to see when the {what} changes.",
}
REFINE_THOUGHT = "The change happens between two of these frames. I'll look at every frame in that interval."
FINAL_THOUGHTS = {
    "text": "The zoomed view shows the writing clearly.",
    "colour": "In the zoomed view the colour is clear.",
    "shape": "In the zoomed view the outline is clear.",
    "sign": "OCR gives the words of the sign.",
    "size": "Comparing the two measured areas gives the larger object.",
    "motion": "The tracked displacement gives the direction.",
    "event": "The first frame showing the new colour is the answer.",
} | {kind: "In the zoomed view the dot's colour is clear." for kind in CARD_LEVELS}
TARGETS = {
    "text": "small box",
    "colour": "small circle",
    "shape": "small object",
    "sign": "small sign",
    "size": "objects",
    "motion": "moving object",
    "event": "object's colour",
} | {kind: "dot on the card" for kind in CARD_LEVELS}
MISS_FIRST = {  # the thought before a self-correction trace's miss
    "zoom_in": "Let me zoom into this area first.",
    "select_frames": "Let me look at the first frames of the video.",
}
MISS_THOUGHT = {  # the thought after it, before the golden calls
    "zoom_in": "The {what} is not in this region. I'll zoom where it actually is.",
    "select_frames": "These frames are not enough to answer. I'll look more carefully.",
}


@dataclass(frozen=True)
class SynthConfig:
    tool_config: Path  # the tools' YAML: coordinate frame and schemas of the model family the traces are for
    view: View
    seed: int = 0
    kinds: tuple[str, ...] = tuple(TASK_KINDS)
    mix: tuple[tuple[str, float], ...] = tuple(DEFAULT_MIX.items())  # (variant, share)


def variant_of(config: SynthConfig, index: int) -> str:
    """The variant of trace `index`: drawn by the mix shares from the trace's own random stream."""
    names, shares = zip(*config.mix, strict=True)
    draw = np.random.default_rng([config.seed, index, 7]).random() * sum(shares)
    return names[int(np.searchsorted(np.cumsum(shares), draw, side="right").clip(max=len(names) - 1))]


def _wrong_answer(task: PixelTask, rng: np.random.Generator) -> str:
    """A plausible answer that is not the task's answer, from the task kind's own vocabulary."""
    if task.kind == "event":
        return str(int(task.answer) + int(rng.choice([-6, -4, -3, 3, 4, 6])))
    if task.kind == "text" and task.answer.isdigit():
        return str(int(task.answer) + int(rng.integers(1, 9)) * 10)
    if task.kind == "sign":
        words = task.answer.split()
        words[int(rng.integers(len(words)))] = str(rng.choice([w for w in WORDS if w not in words]))
        return " ".join(words)
    pools = {"text": WORDS, "colour": COLOURS, "shape": SHAPES, "size": COLOURS, "motion": DIRECTIONS}
    pools |= {kind: spec.colours for kind, spec in CARD_LEVELS.items()}
    return str(rng.choice([w for w in pools[task.kind] if w != task.answer]))


def _miss(task: PixelTask, frame: Frame, rng: np.random.Generator) -> Call:
    """A first action that looks reasonable and reveals nothing: a zoom away from the target, or the wrong frames."""
    if task.frames:
        return {"name": "select_frames", "arguments": {"start_frame": 0, "end_frame": 2, "num_frames": 3}}
    boxes = [task.target_box, *task.object_boxes]
    width, height = task.image.size
    side = min(max(64, (task.target_box[2] - task.target_box[0]) * 3), min(width, height) // 3)
    for _ in range(100):
        x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
        box = (x, y, x + side, y + side)
        if not any(_overlap(box, other) for other in boxes):
            return {"name": "zoom_in", "arguments": {"bbox_2d": frame.box(box)}}
    raise RuntimeError(f"no empty region found for a {task.kind} task")  # scenes leave most of the canvas empty


def _overlap(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class TraceSynthesizer:
    """Makes trace `index` of a config's stream; holds the loaded tools (load once per process)."""

    def __init__(self, config: SynthConfig, out: TraceSet):
        self.config, self.out = config, out
        self.tools = load_tools(config.tool_config, out.root)
        self.coord_frame = next(iter(self.tools.values())).settings.coord_frame

    def trace(self, index: int) -> Trace:
        config = self.config
        kind = config.kinds[index % len(config.kinds)]
        task = TASK_KINDS[kind](config.seed, index)
        variant = variant_of(config, index)
        rng = np.random.default_rng([config.seed, index, 8])
        trace_id = f"synth-{config.seed}-{index:06d}"
        trace = Trace(
            id=trace_id,
            kind=variant,
            task=kind,
            question=task.question,
            images=[self._save_question(task, trace_id)],
            view=config.view,
            steps=[],
            answer=task.answer,
            answer_metric=task.answer_metric,
            tools=list(TASK_TOOLS[kind]),
            final_thought=FINAL_THOUGHTS[kind],
            provenance={"source": "pixelis/synth", "generator": GENERATOR, "version": VERSION, "seed": config.seed,
                        "index": index},
        )  # fmt: skip
        if task.frames:
            trace.video = self._save_video(task, trace_id)
        frame = Frame(self.coord_frame, config.view.shown_size(task.image.size), task.image.size)
        plan = [call for turn in PLANNERS[kind](task, frame) for call in turn]
        thoughts = [self._thought(task, call, i) for i, call in enumerate(plan)]
        if variant == "self_correction":
            miss = _miss(task, frame, rng)
            plan = [miss, *plan]
            thoughts = [MISS_FIRST[miss["name"]], MISS_THOUGHT[miss["name"]].format(what=TARGETS[kind]),
                        *thoughts[1:]]  # fmt: skip
        elif variant == "trap":
            wrong = _wrong_answer(task, rng)
            trace.question = f'{task.question} Someone looked quickly and said "{wrong}".'
            trace.final_thought = f"{FINAL_THOUGHTS[kind]} It is not {wrong}."
        run_steps(
            trace, self.out, self.tools, [(t, c["name"], c["arguments"]) for t, c in zip(thoughts, plan, strict=True)]
        )
        return trace

    def _thought(self, task: PixelTask, call: Call, position: int) -> str:
        if call["name"] == "select_frames" and position > 0:
            return REFINE_THOUGHT
        return THOUGHTS[call["name"]].format(what=TARGETS[task.kind])

    def _save_image(self, image: Any, name: str) -> str:
        path = self.out.media_path(name)
        image.save(path, format="PNG")
        return self.out.relative(path)

    def _save_question(self, task: PixelTask, trace_id: str) -> str:
        return self._save_image(task.image, f"{trace_id}/question.png")

    def _save_video(self, task: PixelTask, trace_id: str) -> Video:
        path = write_video(task.frames, self.out.media_path(f"{trace_id}/video.mp4"), task.fps)
        return Video(self.out.relative(path), [0])


_WORKER: TraceSynthesizer | None = None


def _init_worker(config: SynthConfig, root: Path) -> None:
    global _WORKER
    _WORKER = TraceSynthesizer(config, TraceSet(root))


def _make(index: int) -> Trace:
    assert _WORKER is not None
    return _WORKER.trace(index)


def synthesize(
    config: SynthConfig, out: TraceSet, num: int, workers: int = 1, progress: bool = True, start: int = 0
) -> list[Trace]:
    """Traces `start .. start+num-1` of the config's stream, written to `out`; `workers` processes, with a bar."""
    indices = range(start, start + num)
    with contextlib.ExitStack() as stack:
        if workers <= 1:
            _init_worker(config, out.root)
            made = map(_make, indices)
        else:
            context = multiprocessing.get_context("spawn")  # tools hold thread pools and ONNX sessions: no fork
            pool = stack.enter_context(context.Pool(workers, initializer=_init_worker, initargs=(config, out.root)))
            made = pool.imap(_make, indices, chunksize=4)
        traces = list(tqdm(made, total=num, desc="synth", unit="trace", disable=not progress))
    out.write(traces)
    return traces
