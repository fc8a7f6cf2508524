"""`PixelTool`: what every pixel tool shares on top of verl's `BaseTool`.

verl creates a tool instance per call and calls `execute(instance_id, parameters, agent_data=...)`.
A pixel tool needs, from `agent_data`, the images the model has seen (`image_data`, already resized
by qwen_vl_utils; images returned by earlier calls are appended after each turn, so index i is the
i-th image the model saw) and the media the row provides (`tools_kwargs["pixelis"]`, see
`pixelis_verl.tools.media`): the full-resolution source of each question image and a video.
An image that shows a video frame (a question frame, or a frame a tool returned) has the decoded
native frame as its source.

`execute` never raises. verl would turn an exception into a generic text and reward 0; instead an
argument error becomes a one-line explanation the model can act on plus `invalid_call_penalty`, a
problem with the row's media is explained without a penalty, and a bug is logged with its traceback
and answered like an argument error, so one bad call never ends a rollout. Every call appends a
`StepRecord` to `agent_data.extra_fields["pixelis_steps"]` for the reward.
"""

import abc
import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from PIL import Image
from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse
from verl.utils.rollout_trace import rollout_trace_op

from pixelis_verl.tools import media
from pixelis_verl.tools.arguments import ToolArgumentError, parse_int, show_value
from pixelis_verl.tools.coords import get_coord_frame
from pixelis_verl.tools.state import STORE, TrajectoryState
from pixelis_verl.trajectory.steps import Mark, StepRecord, TrackBox, append_step, observation_feature
from pixelis_verl.typed_config import from_dict

__all__ = ["ImageView", "ModalityError", "PixelResult", "PixelTool", "PixelToolConfig", "ToolArgumentError"]

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("PIXELIS_LOGGING_LEVEL", "WARN"))


@dataclass
class PixelToolConfig:
    """A pixel tool's `config:` block in conf/tools/pixel_tools.yaml; the YAML documents each key."""

    type: str = "native"  # verl's tool type; read by verl's tool registry
    coord_frame: str = "absolute_resized"  # a key of pixelis_verl.tools.coords.COORD_FRAMES
    min_pixels: int = 224 * 224  # returned images: least area, pixels
    max_pixels: int = 448 * 448  # returned images: greatest area, pixels
    size_factor: int = 28  # returned image sides are multiples of this (vision patch x merge size), pixels
    max_aspect_ratio: float = 50.0  # sliver boxes are widened to at most this long/short side ratio
    invalid_call_penalty: float = -0.05  # step reward of a call that fails
    data_root: str | None = None  # media paths in rows resolve inside this directory; None: rows may give no paths
    max_source_pixels: int = 50_000_000  # larger source images are downscaled to this area as they load
    max_decode_pixels: int = 150_000_000  # larger images are refused before decoding (decompression bombs)
    max_video_frames: int = 108_000  # longer videos are refused (an hour at 30 frames/s)
    max_frame_pixels: int = 1280 * 720  # video frames are decoded at most this large (area, pixels)

    def __post_init__(self) -> None:
        get_coord_frame(self.coord_frame)
        if min(self.max_source_pixels, self.max_decode_pixels, self.max_video_frames, self.max_frame_pixels) < 1:
            raise ValueError(
                "pixel tool config: max_source_pixels, max_decode_pixels, max_video_frames and "
                "max_frame_pixels must be positive"
            )
        if not (0 < self.min_pixels <= self.max_pixels and self.size_factor > 0):
            raise ValueError(
                f"pixel tool config: need 0 < min_pixels <= max_pixels and size_factor > 0; got "
                f"min_pixels={self.min_pixels}, max_pixels={self.max_pixels}, size_factor={self.size_factor}"
            )
        if self.max_pixels < self.size_factor**2 or self.max_aspect_ratio < 1:
            raise ValueError(
                f"pixel tool config: need max_pixels >= size_factor**2 and max_aspect_ratio >= 1; got "
                f"max_pixels={self.max_pixels}, size_factor={self.size_factor}, "
                f"max_aspect_ratio={self.max_aspect_ratio}"
            )

    @property
    def media_limits(self) -> media.MediaLimits:
        return media.MediaLimits(
            data_root=self.data_root,
            max_source_pixels=self.max_source_pixels,
            max_decode_pixels=self.max_decode_pixels,
            max_video_frames=self.max_video_frames,
            max_frame_pixels=self.max_frame_pixels,
        )

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> "PixelToolConfig":
        """Build from the YAML dict, rejecting unknown keys so a typo fails at startup, not silently."""
        return from_dict(cls, config, cls.__name__)


@dataclass
class ImageView:
    index: int  # position in agent_data.image_data
    shown: Image.Image  # the image as the model saw it
    source: Image.Image  # full resolution: the row's source image or the native video frame, else `shown`
    frame: int | None = None  # the video frame the image shows, if it shows one


@dataclass
class PixelResult:
    text: str
    images: list[Image.Image] = field(default_factory=list)
    image_index: int | None = None
    box_source: tuple[int, int, int, int] | None = None  # source pixels, x2/y2 exclusive
    source_size: tuple[int, int] | None = None  # (width, height) of the image box_source is in
    span: tuple[float, float] | None = None  # the video frames used, as fractions of the video
    frames: list[int] | None = None  # the video frame each returned image shows, when they show frames
    frame_times: list[float] | None = None  # their times in seconds, when the text gives them
    marks: list[Mark] | None = None  # what the call found on the image it acted on, source pixels
    track: list[TrackBox] | None = None  # boxes by frame, the video's native pixels

    @property
    def region(self) -> list[float] | None:
        """`box_source` as fractions of the image it is in: the action's "where", comparable across images."""
        if self.box_source is None or self.source_size is None:
            return None
        w, h = self.source_size
        return [round(v / (w, h)[i % 2], 4) for i, v in enumerate(self.box_source)]


class ModalityError(ToolArgumentError):
    """A video tool called in a conversation that has no video (the reward penalises it separately)."""


class PixelTool(BaseTool, abc.ABC):
    """Base of all pixel tools. Subclasses implement `run` and `default_tool_schema`."""

    config_cls: ClassVar[type[PixelToolConfig]] = PixelToolConfig

    def __init__(self, config: dict[str, Any], tool_schema: OpenAIFunctionToolSchema | None = None):
        self.settings = self.config_cls.from_dict(config or {})
        super().__init__(config, tool_schema)

    @abc.abstractmethod
    def default_tool_schema(self) -> dict[str, Any]:
        """The OpenAI function schema (a dict, from `self.settings`) used when the YAML entry has no `tool_schema`."""

    def get_openai_tool_schema(self) -> OpenAIFunctionToolSchema:
        # BaseTool.__init__ asks for this before `tool_schema` is set, when the YAML gives none.
        schema = getattr(self, "tool_schema", None)
        return schema or OpenAIFunctionToolSchema.model_validate(self.default_tool_schema())

    @abc.abstractmethod
    def run(self, params: dict[str, Any], agent_data: Any) -> PixelResult:
        """Do the work. Raise ToolArgumentError for anything the model got wrong. Runs in a worker thread."""

    def image_index(self, params: dict[str, Any], agent_data: Any, arg: str = "image_index") -> int:
        """The image-index argument `arg` (default 0, also for null), checked against the images the model has seen."""
        count = len(agent_data.image_data or [])
        if count == 0:
            raise ToolArgumentError(f"{self.name}: there is no image to look at in this conversation")
        value = params.get(arg)
        hint = " (0 = the question image)"
        return parse_int(self.name, 0 if value is None else value, arg, low=0, high=count - 1, hint=hint)

    def state(self, agent_data: Any) -> TrajectoryState:
        """What earlier calls of this trajectory left (masks, frame images)."""
        return STORE.get(agent_data.request_id)

    def frame_of(self, agent_data: Any, index: int) -> int | None:
        """The video frame image `index` shows: a question frame of a video row, or a frame a tool returned."""
        question_frames = media.question_frames(agent_data.tools_kwargs)
        if index < len(question_frames):
            return question_frames[index]
        return self.state(agent_data).frame_of(agent_data.image_data[index])

    def video(self, agent_data: Any, *, max_pixels: int | None = None) -> media.VideoReader:
        """A reader for the row's video; a video tool called in a conversation without one is the model's mistake."""
        entry = media.video_entry(agent_data.tools_kwargs)
        if entry is None:
            raise ModalityError(f"{self.name}: this conversation has no video; the tool works on videos only")
        return media.open_video(entry, self.settings.media_limits, max_pixels=max_pixels)

    def view(self, agent_data: Any, index: int) -> ImageView:
        shown = agent_data.image_data[index]
        frame = self.frame_of(agent_data, index)
        if frame is not None:
            with self.video(agent_data, max_pixels=self.settings.max_source_pixels) as reader:
                source = Image.fromarray(reader.frames([frame])[0].image)
        else:
            source = media.source_image(agent_data.tools_kwargs, index, self.settings.media_limits) or shown
        return ImageView(index=index, shown=shown, source=source, frame=frame)

    def _run_and_observe(
        self, parameters: Any, agent_data: Any
    ) -> tuple[PixelResult, list[float] | None, list[float] | None]:
        """The result, the feature of the image acted on (None for a whole video) and of the first image returned."""
        if agent_data is None:
            raise RuntimeError(f"{self.name}: execute() needs agent_data=..., as verl's ToolAgentLoop passes it")
        if not isinstance(parameters, dict):
            raise ToolArgumentError(
                f"{self.name}: arguments must be a JSON object of named arguments; got {show_value(parameters)}"
            )
        result = self.run(parameters, agent_data)
        acted_on = agent_data.image_data[result.image_index] if result.image_index is not None else None
        return (
            result,
            observation_feature(acted_on) if acted_on is not None else None,
            observation_feature(result.images[0]) if result.images else None,
        )

    @rollout_trace_op
    async def execute(self, instance_id: str, parameters: dict[str, Any], **kwargs) -> tuple[ToolResponse, float, dict]:
        """Run the tool on `kwargs["agent_data"]`; never raises (see the module docstring)."""
        agent_data = kwargs.get("agent_data")
        started = time.perf_counter()
        result, input_observation, observation, error, error_kind = None, None, None, None, None
        try:
            # Off the event loop: pixel work and image decoding are CPU-bound and every trajectory
            # of the worker shares this loop.
            result, input_observation, observation = await asyncio.to_thread(
                self._run_and_observe, parameters, agent_data
            )
        except ToolArgumentError as e:
            error, error_kind = str(e), "modality" if isinstance(e, ModalityError) else "argument"
        except media.MediaError as e:
            error, error_kind = f"{self.name}: {e}", "media"
            logger.warning("%s: request %s: %s", self.name, getattr(agent_data, "request_id", None), e)
        except Exception as e:
            logger.exception(
                "%s: call with arguments %s failed (request %s)",
                self.name,
                show_value(parameters),
                getattr(agent_data, "request_id", None),
            )
            error = f"{self.name}: internal error ({type(e).__name__}); the call was not executed"
            error_kind = "internal"
        latency_ms = (time.perf_counter() - started) * 1000.0

        if result is None:
            reward = 0.0 if error_kind == "media" else self.settings.invalid_call_penalty
            response = ToolResponse(text=error)
        elif result.images:
            response, reward = ToolResponse(text=result.text, image=list(result.images)), 0.0
        else:
            response, reward = ToolResponse(text=result.text), 0.0
        if result is not None and result.frames:
            self.state(agent_data).add_frame_images(result.images, result.frames)
        if agent_data is not None:
            record = StepRecord(
                tool=self.name,
                args=parameters,
                ok=result is not None,
                error=error,
                error_kind=error_kind,
                reward=reward,
                latency_ms=latency_ms,
                image_index=result.image_index if result else None,
                box_source=list(result.box_source) if result and result.box_source else None,
                region=result.region if result else None,
                span=list(result.span) if result and result.span else None,
                input_observation=input_observation,
                observation=observation,
                frames=list(result.frames) if result and result.frames else None,
                frame_times=result.frame_times if result else None,
                marks=result.marks if result else None,
                track=result.track if result else None,
            )
            append_step(agent_data, record)
        return response, reward, {"ok": result is not None, "latency_ms": latency_ms}
