"""Pixel-Reasoner SFT trajectories (TIGER-Lab/PixelReasoner-SFT-Data `release.json` + images/ and videos/).

A record has `qid` and `message_list`, Qwen content lists: system; the user turn with the question text and
`{"image": path}` or `{"video": [frame paths]}`; then assistant turns, each reasoning text with at most one
`<tool_call>` (`crop_image` with `bbox_2d` in 0..1 relative coordinates of `target_image`, 1 = the question
image; `select_frames` with 1-based `target_frames`), the tool outputs as user turns, and a last assistant
turn ending in `\\boxed{answer}`.

The calls become our tools' calls, and the observations are what *our* tools return for them, re-executed on
the record's media: `crop_image` -> `zoom_in` (the box mapped to the trace's coordinate frame; Pixel-Reasoner
pads crops by 10% itself, our zoom adds its own context), `select_frames` -> `select_frames` over the window
the listed frames span (the video is the record's frame folder; our tool spaces frames evenly in the window,
so an irregular selection becomes its span). The Guidelines paragraph Pixel-Reasoner appends to questions is
dropped: our system prompt says how to use the tools.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from pixelis_verl.data.convert import Converter, Dropped, register_converter
from pixelis_verl.data.cota import MEDIA_DIR, Trace, Video
from pixelis_verl.data.replay import StepFailed, run_steps

CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
GUIDELINES = re.compile(r"\s*Guidelines:.*$", re.DOTALL)
CROP_TOOLS = ("crop_image", "crop_image_normalized")
FRAME_FPS = 1.0  # Pixel-Reasoner samples videos to frame lists; their timing is not in the data


def boxed(text: str) -> str | None:
    """The content of the last \\boxed{...}, braces balanced."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, pos = 1, start + len("\\boxed{")
    for end in range(pos, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            return text[pos:end].strip()
    return None


def _text(turn: dict[str, Any]) -> str:
    content = turn.get("content")
    if isinstance(content, str):
        return content
    return "".join(item.get("text", "") for item in content or [] if isinstance(item, dict))


@register_converter("pixel_reasoner")
class PixelReasoner(Converter):
    source = "pixel_reasoner_sft"

    def records(self, path: Path) -> Iterator[tuple[str, Any]]:
        self.media_root = self.media_root or path.parent
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a JSON file ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(records, list):
            raise ValueError(f"{path}: expected a JSON list of records; got {type(records).__name__}")
        for number, record in enumerate(records):
            yield str(record.get("qid", number) if isinstance(record, dict) else number), record

    def convert(self, source_id: str, record: Any) -> Trace:
        messages = record.get("message_list") if isinstance(record, dict) else None
        if not isinstance(messages, list) or len(messages) < 3:
            raise Dropped("no message_list")
        user = messages[1]
        media = [
            item for item in user.get("content") or [] if isinstance(item, dict) and set(item) & {"image", "video"}
        ]
        question = GUIDELINES.sub("", _text(user)).strip()
        answer = boxed(_text(messages[-1]))
        if not question or not media:
            raise Dropped("no question or media")
        if answer is None:
            raise Dropped("no \\boxed answer")
        trace_id = self.trace_id(source_id)
        trace = Trace(
            id=trace_id, kind="golden", task="pixel_reasoner", question=question, images=[], view=self.view,
            steps=[], answer=answer, final_thought=_text(messages[-1]).split("\\boxed{")[0].strip(),
            provenance=self.provenance(source_id),
        )  # fmt: skip
        if "video" in media[0]:
            frames = media[0]["video"]
            if not isinstance(frames, list) or not frames:
                raise Dropped("video is not a list of frame images")
            trace.video = self._save_frames(frames, trace_id)
            trace.images = [self.save_image(frames[0], trace_id, "question")]
            trace.tools = ["select_frames"]
        else:
            trace.images = [self.save_image(media[0]["image"], trace_id, "question")]
            trace.tools = ["zoom_in"]
        plan = [self._call(trace, turn) for turn in messages[2:-1] if turn.get("role") == "assistant"]
        try:
            run_steps(trace, self.out, self.tools, [step for step in plan if step is not None])
        except StepFailed as exc:
            raise Dropped(f"our tool refused a call ({str(exc).rsplit(': ', 1)[-1][:60]})") from None
        return trace

    def _call(self, trace: Trace, turn: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
        text = _text(turn)
        match = CALL.search(text)
        if match is None:
            return None  # a reasoning turn without a call
        try:
            call = json.loads(match.group(1))
            name, arguments = call["name"], call["arguments"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise Dropped("malformed tool call") from None
        thought = text[: match.start()].strip()
        if name in CROP_TOOLS:
            return thought, "zoom_in", self._zoom(trace, arguments)
        if name == "select_frames":
            frames = arguments.get("target_frames")
            if not isinstance(frames, list) or not frames or not all(isinstance(f, int) for f in frames):
                raise Dropped("select_frames without a list of target_frames")
            window = {"start_frame": min(frames) - 1, "end_frame": max(frames) - 1, "num_frames": min(len(frames), 8)}
            return thought, "select_frames", window
        raise Dropped(f"unknown operation {name}")

    def _zoom(self, trace: Trace, arguments: dict[str, Any]) -> dict[str, Any]:
        box, target = arguments.get("bbox_2d"), arguments.get("target_image", 1)
        if not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, int | float) for v in box):
            raise Dropped("crop_image without a bbox_2d of 4 numbers")
        if target != 1:
            raise Dropped("crop of a crop (target_image > 1)")  # sizes of their crops are not ours
        with Image.open(self.out.root / trace.images[0]) as image:
            source = image.size
        width, height = trace.view.extent(trace.view.shown_size(source), source)
        return {"bbox_2d": [round(v * (width if i % 2 == 0 else height)) for i, v in enumerate(box)]}

    def _save_frames(self, frames: list[Any], trace_id: str) -> Video:
        folder = self.out.root / MEDIA_DIR / trace_id / "frames"
        folder.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(frames):
            shutil.copyfile(self.resolve(str(frame)), folder / f"{i:05d}{Path(str(frame)).suffix.lower()}")
        return Video(self.out.relative(folder), [0], fps=FRAME_FPS)
