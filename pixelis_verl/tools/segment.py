"""`segment_object_at`: the object under a point, as a mask the model sees and can name in later calls.

The point is mapped to source pixels and segmented there (full resolution, or the native video frame);
the mask is kept in the trajectory's state under a `mask_id` that `get_properties` and `track_object`
accept, and the model gets the image back with the mask drawn over it.
"""

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image
from verl.tools.schemas import OpenAIFunctionToolSchema

from pixelis_verl.ops.segment import SegmentBackend, make_segment_backend, segment_object_at
from pixelis_verl.ops.sizes import fit_size
from pixelis_verl.ops.zoom import REDUCING_GAP
from pixelis_verl.tools.arguments import parse_point
from pixelis_verl.tools.base import PixelResult, PixelTool, PixelToolConfig, ToolArgumentError
from pixelis_verl.tools.coords import box_from_source, point_to_source
from pixelis_verl.tools.schemas import function_schema, image_index_param, point_param
from pixelis_verl.tools.state import StoredMask
from pixelis_verl.trajectory.steps import Mark

TOOL_NAME = "segment_object_at"
OVERLAY_RGB = (255, 0, 255)  # magenta: rare in natural images and in the synthetic palette
OVERLAY_ALPHA = 0.45


@dataclass
class SegmentConfig(PixelToolConfig):
    backend: str = "grabcut"  # a key of pixelis_verl.ops.segment.SEGMENT_BACKENDS
    backend_options: dict[str, Any] = field(default_factory=dict)  # keyword options of that backend
    max_masks: int = 16  # masks kept per trajectory; the oldest is forgotten beyond this


def segment_schema(coord_frame: str) -> dict[str, Any]:
    return function_schema(
        TOOL_NAME,
        "Segment the object under a point; returns the image with its mask in magenta, and a mask_id.",
        {
            "point_2d": point_param(coord_frame, "A point on the object"),
            "image_index": image_index_param("Image the point is on"),
        },
        required=["point_2d"],
    )


def draw_mask(image: Image.Image, mask: np.ndarray) -> Image.Image:
    """`image` with `mask` tinted and outlined."""
    pixels = np.asarray(image.convert("RGB")).copy()
    tint = np.array(OVERLAY_RGB, dtype=np.float32)
    pixels[mask] = (pixels[mask] * (1 - OVERLAY_ALPHA) + tint * OVERLAY_ALPHA).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    thickness = max(1, round(max(mask.shape) / 200))
    cv2.drawContours(pixels, contours, -1, OVERLAY_RGB, thickness)
    return Image.fromarray(pixels)


class SegmentObjectAtTool(PixelTool):
    config_cls = SegmentConfig
    settings: SegmentConfig

    def __init__(self, config: dict[str, Any], tool_schema: OpenAIFunctionToolSchema | None = None):
        super().__init__(config, tool_schema)
        self.backend: SegmentBackend = make_segment_backend(self.settings.backend, **self.settings.backend_options)

    def default_tool_schema(self) -> dict[str, Any]:
        return segment_schema(self.settings.coord_frame)

    def run(self, params: dict[str, Any], agent_data: Any) -> PixelResult:
        if "point_2d" not in params:
            raise ToolArgumentError(f"{self.name}: point_2d is required: [x, y] on the object")
        point = parse_point(self.name, params["point_2d"])
        index = self.image_index(params, agent_data)
        view = self.view(agent_data, index)
        frame = self.settings.coord_frame
        at = point_to_source(self.name, point, frame, view.shown.size, view.source.size, image_index=index)
        seg = segment_object_at(view.source, at, backend=self.backend)
        x1, y1, x2, y2 = seg.box
        stored = StoredMask(index, seg.box, seg.mask[y1:y2, x1:x2].copy(), view.source.size)
        mask_id = self.state(agent_data).add_mask(stored, self.settings.max_masks)
        size = fit_size(
            *view.source.size,
            min_pixels=self.settings.min_pixels,
            max_pixels=self.settings.max_pixels,
            factor=self.settings.size_factor,
        )
        small_mask = cv2.resize(seg.mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        overlay = draw_mask(view.source.resize(size, Image.Resampling.BILINEAR, reducing_gap=REDUCING_GAP), small_mask)
        box = box_from_source(seg.box, frame, view.shown.size, view.source.size)
        fraction = seg.area / (view.source.width * view.source.height)
        text = (
            f"mask_id {mask_id}: the object at [{point[0]:g}, {point[1]:g}] of image {index} spans {box}, "
            f"{fraction:.1%} of the image (score {seg.score:.2f}). The image with the mask comes next."
        )
        frames = None if view.frame is None else [view.frame]
        return PixelResult(
            text=text,
            images=[overlay],
            image_index=index,
            box_source=seg.box,
            source_size=view.source.size,
            frames=frames,
            marks=[Mark(point=[float(at[0]), float(at[1])])],
        )
