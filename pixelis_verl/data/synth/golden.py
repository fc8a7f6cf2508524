"""Golden traces for the synthetic pixel tasks, made by executing the real tools.

A golden trace is what a competent agent does on a task: the tool calls that reveal the answer, the
tools' actual responses (text and images), then the answer. The calls are planned from the task's
ground truth (where the target is, which object is larger, when the event happens); the responses
come from running the tools exactly as verl's agent loop does, so a model warm-started or
fine-tuned on these traces learns the real observation format. The conversation is built the way
verl builds it: the question image is the image the model sees (resized by the processor's rule),
images returned by tools join the conversation after each turn.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from pixelis_verl.data.rl_rows import task_row
from pixelis_verl.data.synth.card_tasks import CARD_LEVELS
from pixelis_verl.data.synth.tasks import PixelTask
from pixelis_verl.ops.sizes import fit_size
from pixelis_verl.tools.coords import box_from_source, point_from_source
from pixelis_verl.tools.session import ToolSession

Call = dict[str, Any]  # {"name": tool name, "arguments": {...}}
Planner = Callable[[PixelTask, "Frame"], list[list[Call]]]  # a list of turns, each a list of calls


@dataclass(frozen=True)
class Frame:
    """How the model sees the question image: its shown size and the coordinate frame tools read."""

    name: str  # a key of COORD_FRAMES
    shown: tuple[int, int]  # (width, height) of the question image as the model sees it
    source: tuple[int, int]  # (width, height) of the question image at full resolution

    def box(self, box: tuple[float, float, float, float], pad: float = 0.0) -> list[int]:
        """A source-pixel box, padded by `pad` source pixels and clipped, in this frame's coordinates."""
        x1, y1 = max(box[0] - pad, 0), max(box[1] - pad, 0)
        x2, y2 = min(box[2] + pad, self.source[0]), min(box[3] + pad, self.source[1])
        return box_from_source((x1, y1, x2, y2), self.name, self.shown, self.source)

    def point(self, x: float, y: float) -> list[int]:
        return point_from_source((x, y), self.name, self.shown, self.source)


def _context_pad(box: tuple[int, int, int, int]) -> int:
    return max(8, (box[2] - box[0]) // 2, (box[3] - box[1]) // 2)


def _zoom(task: PixelTask, frame: Frame) -> list[list[Call]]:
    return [[{"name": "zoom_in", "arguments": {"bbox_2d": frame.box(task.target_box, _context_pad(task.target_box))}}]]


def _search_cards(task: PixelTask, frame: Frame) -> list[list[Call]]:
    """Zoom the regions the question names, one turn at a time in reading order, stopping at the one with the dot
    (the target). The boxes are the question's own: in Qwen3-VL's frame, the same numbers."""
    turns = []
    for box in task.object_boxes:
        turns.append([{"name": "zoom_in", "arguments": {"bbox_2d": frame.box(box)}}])
        if box == task.target_box:
            return turns
    raise ValueError(f"card task: the target {task.target_box} is not among its cards {task.object_boxes}")


def _read(task: PixelTask, frame: Frame) -> list[list[Call]]:
    return [[{"name": "read_text", "arguments": {"bbox_2d": frame.box(task.target_box, 6)}}]]


def _compare(task: PixelTask, frame: Frame) -> list[list[Call]]:
    """Segment both named objects (one turn, two calls), then measure the two masks."""
    centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in task.object_boxes]  # inside every scene shape
    segment = [{"name": "segment_object_at", "arguments": {"point_2d": frame.point(*c)}} for c in centres]
    measure = [{"name": "get_properties", "arguments": {"mask_id": f"m{i + 1}"}} for i in range(len(centres))]
    return [segment, measure]


def _track(task: PixelTask, frame: Frame) -> list[list[Call]]:
    return [[{"name": "track_object", "arguments": {"bbox_2d": frame.box(task.target_box)}}]]


def _find_event(task: PixelTask, frame: Frame, coarse: int = 8) -> list[list[Call]]:
    """Coarse frames over the whole video, then every frame between the two that bracket the change."""
    last = len(task.frames) - 1
    shown = [round(i * last / (coarse - 1)) for i in range(coarse)]
    event = int(task.answer)
    before = max(f for f in shown if f < event)
    after = min(f for f in shown if f >= event)
    fine = {"start_frame": before + 1, "end_frame": after, "num_frames": after - before}
    return [
        [{"name": "select_frames", "arguments": {"num_frames": coarse}}],
        [{"name": "select_frames", "arguments": fine}],
    ]


PLANNERS: dict[str, Planner] = {
    "text": _zoom,
    "colour": _zoom,
    "shape": _zoom,
    "sign": _read,
    "size": _compare,
    "motion": _track,
    "event": _find_event,
} | {kind: _search_cards for kind in CARD_LEVELS}


def prompt_messages(task: PixelTask, system: str) -> list[dict[str, Any]]:
    """The system and user turns of a task's row as verl's RLHFDataset hands them over.

    The row's user turn is "<image>\n" + question, which RLHFDataset splits into these two blocks.
    """
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "\n" + task.question}]},
    ]


def golden_trace(
    task: PixelTask,
    index: int,
    system: str,
    tools: dict[str, Any],
    shown_budget: tuple[int, int, int],
    data_root: Path,
) -> tuple[list[dict[str, Any]], list[Image.Image]]:
    """(messages, images) of the task's golden trace, in the chat format Qwen-VL processors render.

    `shown_budget` is the processor's (min_pixels, max_pixels, factor): the question image is resized by it, as
    qwen_vl_utils does before the model sees it. Media files go under `data_root`, which the tools must read from.
    """
    row = task_row(task, index, "golden", data_root / "videos", data_root)
    shown_size = fit_size(
        *task.image.size, min_pixels=shown_budget[0], max_pixels=shown_budget[1], factor=shown_budget[2]
    )
    shown = task.image.resize(shown_size, Image.Resampling.BICUBIC)
    coord_frame = next(iter(tools.values())).settings.coord_frame
    frame = Frame(coord_frame, shown.size, task.image.size)
    messages = prompt_messages(task, system)
    with ToolSession(tools, [shown], row["extra_info"]["tools_kwargs"], f"golden-{task.kind}-{index}") as session:
        for turn in PLANNERS[task.kind](task, frame):
            messages.append(
                {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": c} for c in turn]}
            )
            results = session.call_turn([(call["name"], call["arguments"]) for call in turn])
            for call, (text, returned, ok) in zip(turn, results, strict=True):
                if not ok:
                    raise RuntimeError(f"golden trace: {call['name']}({call['arguments']}) failed: {text}")
                # verl adds each response as a tool message, images first
                content = [{"type": "image"} for _ in returned] + [{"type": "text", "text": text}]
                messages.append({"role": "tool", "content": content})
        images = list(session.agent_data.image_data)
    messages.append({"role": "assistant", "content": f"<answer>{task.answer}</answer>"})
    return messages, images
