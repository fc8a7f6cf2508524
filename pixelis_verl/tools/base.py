"""`PixelTool`: what every pixel tool shares on top of verl's `BaseTool`.

verl creates a tool instance per call and calls `execute(instance_id, parameters, agent_data=...)`.
A pixel tool needs, from `agent_data`, the images the model has seen (`image_data`, already resized
by qwen_vl_utils; crops returned by earlier calls are appended after each call, so index i is the
i-th image the model saw) and, when the row provides it, the full-resolution source of a question
image (`tools_kwargs["pixelis"]["source_images"]`, aligned with the question images).

`execute` never raises. verl would turn an exception into a generic text and reward 0; instead an
argument error becomes a one-line explanation the model can act on plus `invalid_call_penalty`, and a
bug is logged with its traceback and answered the same way, so one bad call never ends a rollout.
Every call appends a `StepRecord` to `agent_data.extra_fields["pixelis_steps"]` for the reward.
"""

import abc
import asyncio
import io
import logging
import os
import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from PIL import Image
from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse
from verl.utils.rollout_trace import rollout_trace_op

from pixelis_verl.tools.coords import ToolArgumentError, get_coord_frame, show_value
from pixelis_verl.tools.steps import StepRecord, append_step, observation_feature

__all__ = ["ImageView", "PixelResult", "PixelTool", "PixelToolConfig", "ToolArgumentError", "load_source_image"]

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

    def __post_init__(self) -> None:
        get_coord_frame(self.coord_frame)
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

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> "PixelToolConfig":
        """Build from the YAML dict, rejecting unknown keys so a typo fails at startup, not silently."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown config keys {unknown}; known keys are {sorted(known)}")
        return cls(**config)


@dataclass
class ImageView:
    index: int  # position in agent_data.image_data
    shown: Image.Image  # the image as the model saw it
    source: Image.Image  # the full-resolution source when the row provides one, else `shown`


@dataclass
class PixelResult:
    text: str
    images: list[Image.Image] = field(default_factory=list)
    image_index: int | None = None
    box_source: tuple[int, int, int, int] | None = None  # source pixels, x2/y2 exclusive


def load_source_image(tools_kwargs: dict[str, Any] | None, index: int) -> Image.Image | None:
    """The full-resolution image the row provides for question image `index`, or None.

    Entries of `tools_kwargs["pixelis"]["source_images"]` are `{"bytes": b"..."}`, `{"path": "..."}`
    or a path string. A dict may carry both keys with one None: parquet unifies struct fields across rows.
    """
    sources = ((tools_kwargs or {}).get("pixelis") or {}).get("source_images") or []
    if index >= len(sources) or not sources[index]:
        return None
    entry = sources[index]
    data, path = (entry.get("bytes"), entry.get("path")) if isinstance(entry, dict) else (None, entry)
    if data:
        return Image.open(io.BytesIO(data)).convert("RGB")
    if path:
        return Image.open(path).convert("RGB")
    return None


class PixelTool(BaseTool, abc.ABC):
    """Base of all pixel tools. Subclasses implement `run` and `default_tool_schema`."""

    config_cls: ClassVar[type[PixelToolConfig]] = PixelToolConfig

    def __init__(self, config: dict[str, Any], tool_schema: OpenAIFunctionToolSchema | None = None):
        self.settings = self.config_cls.from_dict(config or {})
        super().__init__(config, tool_schema)

    @abc.abstractmethod
    def default_tool_schema(self) -> OpenAIFunctionToolSchema:
        """The schema used when the YAML entry has no `tool_schema`."""

    def get_openai_tool_schema(self) -> OpenAIFunctionToolSchema:
        # BaseTool.__init__ asks for this before `tool_schema` is set, when the YAML gives none.
        return getattr(self, "tool_schema", None) or self.default_tool_schema()

    @abc.abstractmethod
    def run(self, params: dict[str, Any], agent_data: Any) -> PixelResult:
        """Do the work. Raise ToolArgumentError for anything the model got wrong. Runs in a worker thread."""

    def image_index(self, params: dict[str, Any], agent_data: Any) -> int:
        """The `image_index` argument (default 0, also for null), checked against the images the model has seen."""
        count = len(agent_data.image_data or [])
        if count == 0:
            raise ToolArgumentError(f"{self.name}: there is no image to look at in this conversation")
        value = params.get("image_index")
        value = 0 if value is None else value
        index = None
        if isinstance(value, int) and not isinstance(value, bool):
            index = value
        elif isinstance(value, float) and value.is_integer():
            index = int(value)
        elif isinstance(value, str):
            try:
                index = int(value.strip())
            except ValueError:
                index = None
        if index is None or not 0 <= index < count:
            raise ToolArgumentError(
                f"{self.name}: image_index must be an integer from 0 to {count - 1} "
                f"(0 = the question image); got {show_value(value)}"
            )
        return index

    def view(self, agent_data: Any, index: int) -> ImageView:
        shown = agent_data.image_data[index]
        source = load_source_image(agent_data.tools_kwargs, index)
        return ImageView(index=index, shown=shown, source=source if source is not None else shown)

    def _run_and_observe(self, parameters: Any, agent_data: Any) -> tuple[PixelResult, list[float] | None]:
        if agent_data is None:
            raise RuntimeError(f"{self.name}: execute() needs agent_data=..., as verl's ToolAgentLoop passes it")
        if not isinstance(parameters, dict):
            raise ToolArgumentError(
                f"{self.name}: arguments must be a JSON object of named arguments; got {show_value(parameters)}"
            )
        result = self.run(parameters, agent_data)
        return result, observation_feature(result.images[0]) if result.images else None

    @rollout_trace_op
    async def execute(self, instance_id: str, parameters: dict[str, Any], **kwargs) -> tuple[ToolResponse, float, dict]:
        """Run the tool on `kwargs["agent_data"]`; never raises (see the module docstring)."""
        agent_data = kwargs.get("agent_data")
        started = time.perf_counter()
        result, observation, error, error_kind = None, None, None, None
        try:
            # Off the event loop: pixel work and image decoding are CPU-bound and every trajectory
            # of the worker shares this loop.
            result, observation = await asyncio.to_thread(self._run_and_observe, parameters, agent_data)
        except ToolArgumentError as e:
            error, error_kind = str(e), "argument"
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
            response, reward = ToolResponse(text=error), self.settings.invalid_call_penalty
        elif result.images:
            response, reward = ToolResponse(text=result.text, image=list(result.images)), 0.0
        else:
            response, reward = ToolResponse(text=result.text), 0.0
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
                observation=observation,
            )
            append_step(agent_data, record)
        return response, reward, {"ok": result is not None, "latency_ms": latency_ms}
