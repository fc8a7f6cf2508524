"""`track_object`: follow an object through the row's video, from a box or a mask on a frame the model saw.

The object is given by `bbox_2d` on a video frame image (by default the latest frame image the model
saw) or by a `mask_id` made on one. Tracking runs on the decoded frames (ops/track.py: a real tracker
with lost-target detection and re-acquisition) from `start_frame` (by default the frame that image
shows) to `end_frame`. The model gets a summary, boxes of a few frames, the lost frames, and key
frames with the box drawn; the boxes are in the coordinates of those key frame images.
"""

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image
from verl.tools.schemas import OpenAIFunctionToolSchema

from pixelis_verl.ops.sizes import fit_size
from pixelis_verl.ops.track import TrackerBackend, frame_spans, make_tracker_backend, track_object
from pixelis_verl.ops.video import VideoInfo
from pixelis_verl.ops.zoom import PixelBox, snap_box
from pixelis_verl.tools.arguments import parse_box, parse_int
from pixelis_verl.tools.base import PixelResult, PixelTool, PixelToolConfig, ToolArgumentError
from pixelis_verl.tools.coords import box_from_source, box_to_source, get_coord_frame
from pixelis_verl.tools.schemas import box_param, function_schema, image_index_param, integer_param, mask_id_param
from pixelis_verl.trajectory.steps import TrackBox

TOOL_NAME = "track_object"
BOX_RGB = (0, 255, 0)


@dataclass
class TrackConfig(PixelToolConfig):
    backend: str = "kcf"  # a key of pixelis_verl.ops.track.TRACK_BACKENDS
    backend_options: dict[str, Any] = field(default_factory=dict)  # keyword options of that backend
    max_track_frames: int = 300  # longest window one call tracks, frames
    key_frames: int = 3  # frames returned with the box drawn: first, last and evenly spaced between
    listed_boxes: int = 6  # frames whose box the text lists, evenly spaced


def track_schema(coord_frame: str) -> dict[str, Any]:
    return function_schema(
        TOOL_NAME,
        "Track an object through the video from its bbox_2d or mask_id on a video frame you saw: direction, "
        "lost frames, boxes, key frames with its box in green.",
        {
            "bbox_2d": box_param(coord_frame, "Its box on a video frame image"),
            "mask_id": mask_id_param("Or its mask"),
            "image_index": image_index_param("Frame image the box is on (default: the latest)"),
            "start_frame": integer_param("First frame (default: that image's frame)."),
            "end_frame": integer_param("Last frame, inclusive (default: as far as allowed)."),
        },
        required=[],
    )


def draw_box(image: np.ndarray, box: PixelBox | None) -> Image.Image:
    pixels = image.copy()
    if box is not None:
        thickness = max(2, round(max(pixels.shape[:2]) / 200))
        cv2.rectangle(pixels, box[:2], (box[2] - 1, box[3] - 1), BOX_RGB, thickness)
    return Image.fromarray(pixels)


def evenly_spaced(start: int, end: int, count: int) -> list[int]:
    count = max(1, min(count, end - start + 1))
    if count == 1:
        return [start]
    return sorted({round(start + i * (end - start) / (count - 1)) for i in range(count)})


class TrackObjectTool(PixelTool):
    config_cls = TrackConfig
    settings: TrackConfig

    def __init__(self, config: dict[str, Any], tool_schema: OpenAIFunctionToolSchema | None = None):
        super().__init__(config, tool_schema)
        self.backend: TrackerBackend = make_tracker_backend(self.settings.backend, **self.settings.backend_options)

    def default_tool_schema(self) -> dict[str, Any]:
        return track_schema(self.settings.coord_frame)

    def initial_box(self, params: dict[str, Any], agent_data: Any, info: VideoInfo) -> tuple[tuple, int]:
        """The object's box in native video pixels, and the frame the image it was given on shows."""
        has_mask, has_box = params.get("mask_id") is not None, params.get("bbox_2d") is not None
        if has_mask == has_box:
            raise ToolArgumentError(f"{self.name}: give exactly one of bbox_2d or mask_id")
        native = (info.source_width, info.source_height)
        if has_mask:
            mask_id, stored = self.state(agent_data).lookup_mask(self.name, params["mask_id"])
            frame = self.frame_of(agent_data, stored.image_index)
            if frame is None:
                raise ToolArgumentError(
                    f"{self.name}: mask {mask_id} was made on image {stored.image_index}, which is not a video frame"
                )
            sx, sy = native[0] / stored.source_size[0], native[1] / stored.source_size[1]
            x1, y1, x2, y2 = stored.box
            return (x1 * sx, y1 * sy, x2 * sx, y2 * sy), frame
        box = parse_box(self.name, params["bbox_2d"])
        if params.get("image_index") is not None:
            index = self.image_index(params, agent_data)
            frame = self.frame_of(agent_data, index)
        else:
            seen = [(i, self.frame_of(agent_data, i)) for i in range(len(agent_data.image_data or []))]
            index, frame = next(((i, f) for i, f in reversed(seen) if f is not None), (None, None))
        if frame is None:
            which = "that image is not" if index is not None else "you have not seen"
            raise ToolArgumentError(
                f"{self.name}: bbox_2d must be on a video frame image and {which} one; call select_frames to see frames"
            )
        shown = agent_data.image_data[index].size
        return box_to_source(self.name, box, self.settings.coord_frame, shown, native, image_index=index), frame

    def window(self, params: dict[str, Any], info: VideoInfo, default_start: int) -> tuple[int, int]:
        last, most = info.num_frames - 1, self.settings.max_track_frames
        start = params.get("start_frame")
        start = default_start if start is None else parse_int(self.name, start, "start_frame", low=0, high=last)
        end = params.get("end_frame")
        end = min(start + most - 1, last) if end is None else parse_int(self.name, end, "end_frame", low=0, high=last)
        if end < start:
            raise ToolArgumentError(f"{self.name}: end_frame {end} comes before start_frame {start}")
        if end - start + 1 > most:
            raise ToolArgumentError(f"{self.name}: one call tracks at most {most} frames; got {start}..{end}")
        return start, end

    def run(self, params: dict[str, Any], agent_data: Any) -> PixelResult:
        with self.video(agent_data) as reader:
            info = reader.info
            native_box, ref_frame = self.initial_box(params, agent_data, info)
            start, end = self.window(params, info, ref_frame)
            decoded, native = (info.width, info.height), (info.source_width, info.source_height)
            scale = info.width / info.source_width, info.height / info.source_height
            box = snap_box(tuple(v * scale[i % 2] for i, v in enumerate(native_box)), decoded)
            key_indices = set(evenly_spaced(start, end, self.settings.key_frames))
            key_images: dict[int, np.ndarray] = {}

            def frames_keeping_keys() -> Any:
                for frame in reader.iter_frames(start, end):
                    if frame.index in key_indices:
                        key_images[frame.index] = frame.image
                    yield frame

            result = track_object(frames_keeping_keys(), box, backend=self.backend)
        size = fit_size(
            *decoded,
            min_pixels=self.settings.min_pixels,
            max_pixels=self.settings.max_pixels,
            factor=self.settings.size_factor,
        )
        keys = sorted(key_images)
        images = [draw_box(key_images[k], result.boxes[k - start]).resize(size, Image.Resampling.BICUBIC) for k in keys]

        def shown(box: PixelBox | None) -> str:
            return "lost" if box is None else str(box_from_source(box, self.settings.coord_frame, size, decoded))

        ew, eh = get_coord_frame(self.settings.coord_frame).extent(size, decoded)
        dx, dy = result.displacement[0] * ew / decoded[0], result.displacement[1] * eh / decoded[1]
        listed_frames = evenly_spaced(start, end, self.settings.listed_boxes)
        listed = "; ".join(f"{k}: {shown(result.boxes[k - start])}" for k in listed_frames)
        lost = f"lost in frames {frame_spans(result.lost_frames)}" if result.lost_frames else "never lost"
        text = (
            f"Tracked frames {start}..{end}: the object moved {result.direction} by ({dx:+.0f}, {dy:+.0f}); {lost}. "
            f"Boxes by frame: {listed}. Next come frames {', '.join(map(str, keys))} with the box drawn."
        )
        last = max(info.num_frames - 1, 1)

        def in_native(box: PixelBox | None) -> list[int] | None:
            return None if box is None else list(snap_box(tuple(v / scale[i % 2] for i, v in enumerate(box)), native))

        return PixelResult(
            text=text,
            images=images,
            box_source=snap_box(native_box, native),
            source_size=native,
            span=(start / last, end / last),
            frames=keys,
            track=[TrackBox(frame=k, box=in_native(result.boxes[k - start])) for k in listed_frames],
        )
