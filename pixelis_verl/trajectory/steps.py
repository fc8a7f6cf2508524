"""Step records and every key we add to a trajectory's `extra_fields`: what each pixel-tool call did, for the reward.

verl's tool loop keeps only a float per call (`tool_rewards`). Rewards for validity, efficiency,
coherence and curiosity need more: which tool, with which arguments, whether it worked, and a
small feature of what the model got to see. Each call appends one `StepRecord` to
`agent_data.extra_fields["pixelis_steps"]`, which verl hands to the reward manager inside
`extra_info` (via `non_tensor_batch["tool_extra_fields"]`).
"""

from typing import Any, Literal, TypedDict

import numpy as np
from PIL import Image

STEPS_KEY = "pixelis_steps"
GROUP_KEY = "pixelis_group"  # the GRPO group's figures, left by pixelis_verl.agent_loop for group-level reward terms
SECONDS_KEY = "pixelis_seconds"  # the agent loop's wall time for the trajectory (pixelis_verl.agent_loop)

# The observation feature: RGB mean (3), RGB std (3), 8-bin luminance histogram (8), mean absolute
# horizontal and vertical gradient (2), all in [0, 1], computed on a fixed-size thumbnail so the
# cost does not depend on the crop size and the result is deterministic.
OBSERVATION_DIM = 16
_THUMBNAIL = (32, 32)
_LUMA_BINS = 8


class Mark(TypedDict, total=False):
    """A box (x1, y1, x2, y2) or a point (x, y) a tool found, with a short label (an OCR line's number)."""

    box: list[float]
    point: list[float]
    label: str


class TrackBox(TypedDict):
    frame: int
    box: list[int] | None


class StepRecord(TypedDict):
    tool: str  # the tool's name, e.g. "zoom_in"
    args: Any  # the arguments exactly as the model gave them (usually a dict)
    ok: bool  # True when the call produced an observation
    error: str | None  # the error text shown to the model, None when ok
    # the model's mistake, a video tool in a conversation without video, unusable row media, a bug
    error_kind: Literal["argument", "modality", "media", "internal"] | None
    reward: float  # the step reward returned to verl (0.0, or the invalid-call penalty)
    latency_ms: float  # wall time of the call, including image decoding
    image_index: int | None  # which image the call looked at, when it got that far
    box_source: list[int] | None  # [x1, y1, x2, y2] actually used, source pixels, x2/y2 exclusive
    region: list[float] | None  # the box used as fractions [0, 1] of the image it was on (the action's "where")
    span: list[float] | None  # the video frames used, as fractions [0, 1] of the video (the action's "when")
    input_observation: list[float] | None  # OBSERVATION_DIM floats of the image the call acted on
    observation: list[float] | None  # OBSERVATION_DIM floats of the first returned image, None without one
    # What the call found, as data (the viewer draws it; nothing parses the text the model read):
    frames: list[int] | None  # the video frame each returned image shows
    frame_times: list[float] | None  # and its time in seconds, where the tool told the model
    marks: list[Mark] | None  # boxes and points it found on the image it acted on, in that image's source pixels
    track: list[TrackBox] | None  # the boxes it listed by frame, in the video's native pixels (None: lost)


def observation_feature(image: Image.Image) -> list[float]:
    """A cheap, deterministic 16-float summary of an image, for the curiosity model to predict."""
    pixels = np.asarray(image.convert("RGB").resize(_THUMBNAIL, Image.Resampling.BILINEAR), dtype=np.float64) / 255.0
    luma = pixels @ np.array([0.299, 0.587, 0.114])
    histogram, _ = np.histogram(luma, bins=_LUMA_BINS, range=(0.0, 1.0))
    feature = np.concatenate(
        [
            pixels.mean(axis=(0, 1)),
            pixels.std(axis=(0, 1)),
            histogram / luma.size,
            [np.abs(np.diff(luma, axis=1)).mean(), np.abs(np.diff(luma, axis=0)).mean()],
        ]
    )
    return [float(v) for v in feature]


def append_step(agent_data: Any, record: StepRecord) -> None:
    """Add `record` to the trajectory's step list (created on first use)."""
    agent_data.extra_fields.setdefault(STEPS_KEY, []).append(record)


def uses_pixel_ops(steps: list[StepRecord]) -> bool:
    """Whether a trajectory performed a pixel operation: at least one tool call that produced a result."""
    return any(step.get("ok") for step in steps)
