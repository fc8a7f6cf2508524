"""The synthetic pixel task set: one verifiable task kind per capability the tools give the model.

| kind | what the model must do | the tool that makes it easy |
|---|---|---|
| text, colour, shape | read a tiny word, colour or shape on a large canvas (zoom_tasks.py) | zoom_in |
| sign | read a short line of tiny text, word for word | read_text (or zoom_in) |
| size | say which of two named objects is larger | segment_object_at + get_properties |
| motion | say which way an object moves in a short video | track_object (or select_frames) |
| event | say at which frame an object changes colour | select_frames |
| card_easy, card, card_hard | name the colour of a dot in a given region (learning family, card_tasks.py) | zoom_in |

Every answer is known by construction. Task `index` of a `(seed, kinds)` stream has kind
`kinds[index % len(kinds)]` and its own random stream, so a task never depends on how many were made.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from pixelis_verl.data.synth.card_tasks import CARD_LEVELS, CardSpec, card_task, reading_order
from pixelis_verl.data.synth.moving_object import generate_moving_object_video
from pixelis_verl.data.synth.scenes import generate_scene
from pixelis_verl.data.synth.zoom_tasks import (
    CANVAS_SIZE,
    WORDS,
    _add_distractors,
    _background,
    draw_label,
    generate_zoom_task,
)

SIGN_WORDS = (2, 3)  # words on a sign, inclusive range
SIGN_TEXT_PX = (9, 12)  # font size range, inclusive: unreadable once the canvas is shown at half size
VIDEO_SIZE = (320, 240)  # pixels
VIDEO_FRAMES = 30
VIDEO_FPS = 10.0


@dataclass
class PixelTask:
    kind: str
    question: str
    answer: str
    image: Image.Image  # the question image at full resolution (for a video task: the first frame)
    frames: list[np.ndarray] = field(default_factory=list)  # video tasks: every frame, RGB uint8
    fps: float | None = None  # video tasks: frames per second
    target_box: tuple[int, int, int, int] | None = None  # where the answer is, pixels of `image`, when it has one
    object_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # objects the question names, in order
    answer_metric: str = "exact"  # how the reward scores the answer: a key of rewards.answers.ANSWER_METRICS


def _zoom_kind(kind: str) -> Callable[[int, int], PixelTask]:
    def make(seed: int, index: int) -> PixelTask:
        task = generate_zoom_task(seed, index * 3 + ("text", "colour", "shape").index(kind), CANVAS_SIZE)
        return PixelTask(kind, task.question, task.answer, task.image, target_box=task.target_box)

    return make


def sign_task(seed: int, index: int) -> PixelTask:
    """A few tiny words on a white sign somewhere on a busy canvas."""
    rng = np.random.default_rng([seed, index, 1])
    canvas = _background(rng, CANVAS_SIZE)
    count = int(rng.integers(SIGN_WORDS[0], SIGN_WORDS[1] + 1))
    answer = " ".join(str(w) for w in rng.choice(WORDS, size=count, replace=False))
    box = draw_label(rng, canvas, answer, int(rng.integers(SIGN_TEXT_PX[0], SIGN_TEXT_PX[1] + 1)), pad=4)
    _add_distractors(rng, canvas, keep_clear=box)
    question = "What does the small sign say? Answer with its exact words."
    # Read text earns credit by similarity (ANLS), as in DocVQA/TextVQA: one wrong letter is not a wrong answer.
    return PixelTask("sign", question, answer, canvas, target_box=box, answer_metric="anls")


def size_task(seed: int, index: int) -> PixelTask:
    """Two of a scene's objects, named by colour: which one is larger? Sizes differ by at least 1.6x."""
    scene = generate_scene(seed, index)
    rng = np.random.default_rng([seed, index, 2])
    a, b = (scene.objects[i] for i in rng.choice(len(scene.objects), size=2, replace=False))
    larger = a if a.area > b.area else b
    question = f"Which object is larger, the {a.colour} {a.shape} or the {b.colour} {b.shape}? Answer with its colour."
    return PixelTask("size", question, larger.colour, scene.image, target_box=larger.box, object_boxes=[a.box, b.box])


def motion_task(seed: int, index: int) -> PixelTask:
    # moving_object makes a colour change in odd-numbered videos: motion tasks take the even ones.
    video = generate_moving_object_video(seed, 2 * index, size=VIDEO_SIZE, num_frames=VIDEO_FRAMES, fps=VIDEO_FPS)
    question = (
        f"In which direction does the {video.colour} {video.shape} move during the video? "
        "Answer with one of: left, right, up, down, up-left, up-right, down-left, down-right."
    )
    first = Image.fromarray(video.frames[0])
    return PixelTask("motion", question, video.direction, first, video.frames, video.fps, video.boxes[0])


def event_task(seed: int, index: int) -> PixelTask:
    video = generate_moving_object_video(seed, 2 * index + 1, size=VIDEO_SIZE, num_frames=VIDEO_FRAMES, fps=VIDEO_FPS)
    question = f"The {video.shape} changes colour once during the video. At which frame number (0 = first) does it?"
    first = Image.fromarray(video.frames[0])
    return PixelTask("event", question, str(video.event_frame), first, video.frames, video.fps, video.boxes[0])


def _card_kind(kind: str, spec: CardSpec) -> Callable[[int, int], PixelTask]:
    """A card level as a task kind: the target is the region with the dot; `object_boxes` lists every region the
    question names in reading order, the order in which the golden trace zooms them until it reaches the dot."""

    def make(seed: int, index: int) -> PixelTask:
        image, question, answer, cards = card_task(seed, index, spec)
        (target,) = [c.region for c in cards if c.has_dot]
        regions = [cards[i].region for i in reading_order([c.region for c in cards])]
        return PixelTask(kind, question, answer, image, target_box=target, object_boxes=regions)

    return make


# The tools a row of each kind offers when rows select their tools (extra_info.tool_selection, a verl feature):
# the ones that solve it plus a generic alternative. Six tool schemas take ~1300 prompt tokens, which the tiny
# CPU models pay on every step; a row that selects 2-3 tools pays a third of that.
TASK_TOOLS: dict[str, tuple[str, ...]] = {
    "text": ("zoom_in", "read_text"),
    "colour": ("zoom_in", "read_text"),
    "shape": ("zoom_in", "read_text"),
    "sign": ("zoom_in", "read_text"),
    "size": ("segment_object_at", "get_properties", "zoom_in"),
    "motion": ("select_frames", "track_object"),
    "event": ("select_frames", "track_object"),
} | {kind: ("zoom_in",) for kind in CARD_LEVELS}  # the learning family: one short schema per prompt

TASK_KINDS: dict[str, Callable[[int, int], PixelTask]] = {
    "text": _zoom_kind("text"),
    "colour": _zoom_kind("colour"),
    "shape": _zoom_kind("shape"),
    "sign": sign_task,
    "size": size_task,
    "motion": motion_task,
    "event": event_task,
} | {kind: _card_kind(kind, spec) for kind, spec in CARD_LEVELS.items()}


def generate_tasks(num: int, seed: int, kinds: list[str] | tuple[str, ...]) -> list[PixelTask]:
    """`num` tasks cycling through `kinds`; deterministic in (seed, kinds)."""
    unknown = sorted(set(kinds) - set(TASK_KINDS))
    if unknown or not kinds:
        raise ValueError(f"synthetic task kinds must be a non-empty list of {sorted(TASK_KINDS)}; got {list(kinds)}")
    return [TASK_KINDS[kinds[i % len(kinds)]](seed, i) for i in range(num)]
