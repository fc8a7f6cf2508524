"""Replaying a trajectory record's tool calls, and drawing where each call acted: the viewer's data side.

The trajectory records (`pixelis_verl.rewards.trajectory_log`) keep what the model wrote and what the tools
recorded, not the images the tools returned. Our pixel ops are deterministic, so each executed call is replayed
with the run's tool config on the same source pixels (a `ToolSession`, as CoTA validation does) to get the text
and images the model got. What to draw comes from the replayed calls' step records (what the tools found, as
data: boxes, points, text-line boxes, frames and their times, a track's boxes by frame); nothing parses the text
the model read. `eval/viewer.py` lays the result out as a page.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw
from verl.utils.dataset.vision_utils import process_image

from pixelis_verl.tools import media
from pixelis_verl.tools.base import PixelTool, PixelToolConfig
from pixelis_verl.tools.session import ToolSession

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("PIXELIS_LOGGING_LEVEL", "WARN"))

PAGE_MAX_SIDE = 512  # images are shrunk to at most this long a side on the page, pixels
MARK_RGB = {"box": (255, 59, 48), "point": (0, 199, 255), "ocr": (255, 149, 0), "track": (52, 199, 89)}


@dataclass
class CallView:
    """One tool call as the page shows it."""

    name: str | None
    arguments: Any
    well_formed: bool = True
    step: dict[str, Any] | None = None  # the run's step record; None: verl did not execute the call
    text: str = ""  # the tool's answer, replayed
    images: list[tuple[Image.Image, str]] = field(default_factory=list)  # returned images, captioned
    overlays: list[tuple[Image.Image, str]] = field(default_factory=list)  # where the call acted, drawn
    problem: str | None = None  # why the page shows less than the model got


@dataclass
class TurnView:
    thought: str
    calls: list[CallView]


@dataclass
class Mark:
    """A box or a point to draw, in pixels of the image drawn on."""

    colour: tuple[int, int, int]
    box: tuple[float, float, float, float] | None = None  # x1, y1, x2, y2
    label: str = ""
    point: tuple[float, float] | None = None


def pair_calls(record: dict[str, Any]) -> list[TurnView]:
    """The record's turns, each executed call paired with its step record.

    A turn's steps are contiguous but in completion order (verl runs a turn's calls concurrently), so a call takes
    the first unpaired step of its turn with its tool name and arguments; a well-formed call without one was not
    executed (unknown tool, past the per-turn limit). Steps no call accounts for are shown in a last turn.
    """
    steps = [s for s in record.get("steps") or [] if isinstance(s, dict)]
    paired, start, turns = [False] * len(steps), 0, []
    for turn in record.get("turns") or []:
        calls = turn.get("calls") or []
        window = range(start, min(len(steps), start + len(calls)))
        views = []
        for call in calls:
            view = CallView(call.get("name"), call.get("arguments"), well_formed=bool(call.get("well_formed")))
            same = (j for j in window if not paired[j] and steps[j].get("tool") == view.name)
            match = next((j for j in same if steps[j].get("args") == view.arguments), None)
            if view.well_formed and match is not None:
                paired[match], view.step = True, steps[match]
            views.append(view)
        start = max([start, *(j + 1 for j in window if paired[j])])
        turns.append(TurnView(turn.get("thought") or "", views))
    left = [CallView(s.get("tool"), s.get("args"), step=s) for s, done in zip(steps, paired, strict=True) if not done]
    if left:
        turns.append(TurnView("(tool steps that no parsed tool call accounts for)", left))
    return turns


def _settings(tools: dict[str, Any]) -> PixelToolConfig:
    return next(tool.settings for tool in tools.values() if isinstance(tool, PixelTool))


def question_media(
    record: dict[str, Any], trajectories_dir: Path, settings: PixelToolConfig
) -> tuple[list[Image.Image], dict[str, Any]]:
    """The question images as the model saw them, and the `tools_kwargs` the row gave its tools.

    Sources are stored copies under `trajectories_dir` or paths under the data root; a video row's question
    images are frames of its video, decoded as the tools decode them. They are resized by verl's own image
    processing (qwen_vl_utils' smart resize to the row's `shown_max_pixels`).
    """
    entry, limits = record.get("media") or {}, settings.media_limits
    sources, raw_images = [], []
    for source in entry.get("source_images") or []:
        if source.get("stored"):
            data = media.resolve_path(source["stored"], str(trajectories_dir)).read_bytes()
            sources.append({"bytes": data})
        else:
            data = media.resolve_path(source["path"], limits.data_root).read_bytes()
            sources.append({"path": source["path"]})
        raw_images.append(Image.open(io.BytesIO(data)))
    tools_kwargs = {"pixelis": {"source_images": sources, "video": entry.get("video")}}
    video = media.video_entry(tools_kwargs)
    if video is not None:
        wanted = media.question_frames(tools_kwargs)
        with media.open_video(video, limits, max_pixels=limits.max_source_pixels) as reader:
            decoded = {frame.index: frame.image for frame in reader.frames(wanted)}
        raw_images = [Image.fromarray(decoded[index]) for index in wanted]
    # Imported late: on CPU machines it imports only once verl's plugin stubbed torchvision (runtime/patches.py).
    from qwen_vl_utils.vision_process import SPATIAL_MERGE_SIZE

    budget = {"max_pixels": entry["shown_max_pixels"]} if entry.get("shown_max_pixels") else {}
    patch = settings.size_factor // SPATIAL_MERGE_SIZE  # the vision patch: size_factor is patch x merge size
    return [process_image({"image": image, **budget}, image_patch_size=patch) for image in raw_images], tools_kwargs


def replay(
    record: dict[str, Any], tools: dict[str, Any], trajectories_dir: Path, request_id: str
) -> tuple[list[Image.Image], list[TurnView], str | None]:
    """(question images, turns with every executed call replayed, why the media could not be loaded)."""
    turns = pair_calls(record)
    settings = _settings(tools)
    try:
        shown, tools_kwargs = question_media(record, trajectories_dir, settings)
    except (media.MediaError, OSError, ValueError, KeyError) as e:
        for call in (c for t in turns for c in t.calls if c.step is not None):
            call.problem = f"not replayed: {e}"
        return [], turns, f"the question's media could not be loaded: {e}"
    with ToolSession(tools, shown, tools_kwargs, request_id) as session:
        for turn in turns:
            _replay_turn(session, [c for c in turn.calls if c.step is not None])
    return shown, turns, None


def _replay_turn(session: ToolSession, calls: list[CallView]) -> None:
    for call in calls:
        if call.name not in session.tools:
            call.problem = f"not replayed: the tool config has no tool named {call.name!r}"
    calls = [call for call in calls if call.name in session.tools]
    if not calls:
        return
    first_index, first_step = len(session.agent_data.image_data), len(session.steps)
    try:
        results = session.call_turn([(call.name, call.arguments) for call in calls])
    except Exception as e:  # a replay problem costs this turn's results, never the page
        logger.warning("viewer: replaying %s failed: %s", [c.name for c in calls], e)
        for call in calls:
            call.problem = f"replay failed: {type(e).__name__}: {e}"
        return
    for call, (text, images, ok), step in zip(calls, results, session.steps[first_step:], strict=True):
        call.text = text
        call.images = list(zip(images, captions(step, first_index, len(images)), strict=True))
        first_index += len(images)
        if ok != bool(call.step.get("ok")):
            worked = {True: "worked", False: "failed"}
            call.problem = f"the replay {worked[ok]}; in the run the call {worked[bool(call.step.get('ok'))]}"
        try:
            call.overlays = overlays(session, session.tools[call.name], step, images)
        except Exception as e:
            logger.warning("viewer: drawing %s failed: %s", call.name, e)
            call.problem = f"could not draw where the call acted: {type(e).__name__}: {e}"


def captions(step: dict[str, Any], first_index: int, count: int) -> list[str]:
    """Each returned image's index in the conversation (what later calls name) and, for video frames, its frame and
    time (from the step record)."""
    frames, times = step.get("frames") or [], step.get("frame_times") or []
    if len(frames) != count:
        frames = [None] * count
    if len(times) != count:
        times = [None] * count
    labels = []
    for i, (frame, time) in enumerate(zip(frames, times, strict=True)):
        where = "" if frame is None else f" · frame {frame}" + ("" if time is None else f" · {time:.2f} s")
        labels.append(f"image {first_index + i}{where}")
    return labels


def overlays(
    session: ToolSession, tool: Any, step: dict[str, Any], images: list[Image.Image]
) -> list[tuple[Image.Image, str]]:
    """Where a call acted, drawn from its step record: on the source of the image it looked at, and a track's path
    on its first key frame."""
    drawn = []
    index = step.get("image_index")
    if index is not None and isinstance(tool, PixelTool):
        view = tool.view(session.agent_data, index)
        drawn.append((draw_marks(view.source, source_marks(step)), f"{tool.name} on image {index}, source pixels"))
    if step.get("track") and step.get("frames") and isinstance(tool, PixelTool) and images:
        drawn.append((_track_path(session, tool, step), f"{tool.name}: path over the listed frames"))
    return drawn


def source_marks(step: dict[str, Any]) -> list[Mark]:
    """The box the call used and what it found there (points segmented, text lines read), in source pixels."""
    marks = [Mark(MARK_RGB["box"], box=tuple(step["box_source"]))] if step.get("box_source") else []
    for found in step.get("marks") or []:
        if found.get("point") is not None:
            marks.append(Mark(MARK_RGB["point"], point=tuple(found["point"]), label=found.get("label", "")))
        if found.get("box") is not None:
            marks.append(Mark(MARK_RGB["ocr"], box=tuple(found["box"]), label=found.get("label", "")))
    return marks


def _track_path(session: ToolSession, tool: PixelTool, step: dict[str, Any]) -> Image.Image:
    """The boxes the call listed by frame (native pixels), joined centre to centre on its first key frame."""
    with tool.video(session.agent_data) as reader:
        native = (reader.info.source_width, reader.info.source_height)
        key_frame = Image.fromarray(reader.frames([step["frames"][0]])[0].image)
    sx, sy = key_frame.width / native[0], key_frame.height / native[1]
    marks = [
        Mark(MARK_RGB["track"], box=(x1 * sx, y1 * sy, x2 * sx, y2 * sy), label=str(listed["frame"]))
        for listed in step["track"]
        if listed.get("box") is not None
        for x1, y1, x2, y2 in [listed["box"]]
    ]
    return draw_marks(key_frame, marks, path=True)


def draw_marks(image: Image.Image, marks: list[Mark], *, path: bool = False) -> Image.Image:
    """`image` shrunk for the page with `marks` (in `image`'s pixels) drawn; `path` joins the boxes' centres."""
    page = for_page(image)
    scale = page.width / image.width
    draw = ImageDraw.Draw(page)
    width = max(2, round(max(page.size) / 160))
    centres = []
    for mark in marks:
        if mark.box is not None:
            x1, y1, x2, y2 = (v * scale for v in mark.box)
            draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=mark.colour, width=width)
            draw.text((x1 + width, y1 + width), mark.label, fill=mark.colour)
            centres.append(((x1 + x2) / 2, (y1 + y2) / 2))
        if mark.point is not None:
            x, y, r = mark.point[0] * scale, mark.point[1] * scale, 3 * width
            draw.ellipse([x - r, y - r, x + r, y + r], outline=mark.colour, width=width)
    if path and len(centres) > 1:
        draw.line(centres, fill=marks[0].colour, width=width, joint="curve")
    return page


def for_page(image: Image.Image) -> Image.Image:
    page = image.convert("RGB")  # a copy, also when the image is RGB already
    page.thumbnail((PAGE_MAX_SIDE, PAGE_MAX_SIDE), Image.Resampling.LANCZOS)
    return page
