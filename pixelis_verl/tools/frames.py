"""`select_frames`: frames of the row's video in a time or frame window, returned as images with timestamps.

This is how the model localises moments: look at a few frames spread over the whole video, then at
more frames of a shorter window. verl's ToolResponse cannot carry video, so frames go back as images;
each is remembered as showing its frame, so `segment_object_at`, `read_text`, `zoom_in` and
`track_object` can work on it at the video's native resolution.
"""

from dataclasses import dataclass
from typing import Any

from PIL import Image

from pixelis_verl.ops.sizes import fit_size
from pixelis_verl.ops.video import frame_window, select_frames
from pixelis_verl.tools.arguments import parse_int, parse_number
from pixelis_verl.tools.base import PixelResult, PixelTool, PixelToolConfig, ToolArgumentError
from pixelis_verl.tools.schemas import function_schema, integer_param, number_param

TOOL_NAME = "select_frames"


@dataclass
class SelectFramesConfig(PixelToolConfig):
    default_num_frames: int = 4  # frames returned when the model does not say
    max_num_frames: int = 8  # most frames one call returns: each costs image tokens


def select_frames_schema(max_num_frames: int, default_num_frames: int) -> dict[str, Any]:
    return function_schema(
        TOOL_NAME,
        "Get evenly spaced frames of the video, with frame numbers and timestamps, from a time window "
        "(start_s/end_s) or a frame window (start_frame/end_frame).",
        {
            "start_s": number_param("Window start, seconds (default: video start)."),
            "end_s": number_param("Window end, seconds (default: video end)."),
            "start_frame": integer_param("Or window start frame (0 = first)."),
            "end_frame": integer_param("Or window end frame, inclusive."),
            "num_frames": integer_param(f"Frames to return, 1 to {max_num_frames}. Default {default_num_frames}."),
        },
        required=[],
    )


class SelectFramesTool(PixelTool):
    config_cls = SelectFramesConfig
    settings: SelectFramesConfig

    def default_tool_schema(self) -> dict[str, Any]:
        return select_frames_schema(self.settings.max_num_frames, self.settings.default_num_frames)

    def run(self, params: dict[str, Any], agent_data: Any) -> PixelResult:
        with self.video(agent_data) as reader:
            info = reader.info
            last = info.num_frames - 1
            window: dict[str, Any] = {}
            for key in ("start_s", "end_s", "start_frame", "end_frame"):
                value = params.get(key)
                if value is not None and key.endswith("_s"):
                    window[key] = parse_number(self.name, value, key)
                elif value is not None:
                    window[key] = parse_int(self.name, value, key, low=0, high=last)
            count = params.get("num_frames")
            count = self.settings.default_num_frames if count is None else count
            count = parse_int(self.name, count, "num_frames", low=1, high=self.settings.max_num_frames)
            try:
                frame_window(info, **window)
            except ValueError as e:
                raise ToolArgumentError(f"{self.name}: {str(e).split(': ', 1)[1]}") from e
            frames = select_frames(reader, num_frames=count, **window)
        size = fit_size(
            info.width,
            info.height,
            min_pixels=self.settings.min_pixels,
            max_pixels=self.settings.max_pixels,
            factor=self.settings.size_factor,
        )
        images = [Image.fromarray(f.image).resize(size, Image.Resampling.BICUBIC) for f in frames]
        listed = ", ".join(f"frame {f.index} ({f.timestamp_s:.2f} s)" for f in frames)
        text = (
            f"The video has {info.num_frames} frames ({info.duration_s:.2f} s at {info.fps:g} frames/s). "
            f"Next come {len(frames)} images: {listed}."
        )
        span = (frames[0].index / max(last, 1), frames[-1].index / max(last, 1))
        times = [round(f.timestamp_s, 2) for f in frames]
        return PixelResult(text=text, images=images, span=span, frames=[f.index for f in frames], frame_times=times)
