"""`zoom_in`: crop a region of an image the model has seen, from the full-resolution source when there is one.

The model sees a downscaled image, so small text and objects are lost. It names a box in the
configured coordinate frame; the box is mapped to source pixels, cropped from the full-resolution
source when the row provides it (else from the shown image), and the crop comes back as a new image.
"""

from typing import Any

from pixelis_verl.ops.zoom import zoom
from pixelis_verl.tools.arguments import parse_box
from pixelis_verl.tools.base import PixelResult, PixelTool, ToolArgumentError
from pixelis_verl.tools.coords import box_to_source
from pixelis_verl.tools.schemas import box_param, function_schema, image_index_param

TOOL_NAME = "zoom_in"


def zoom_in_schema(coord_frame: str) -> dict[str, Any]:
    """zoom_in's OpenAI tool schema for a coordinate frame."""
    return function_schema(
        TOOL_NAME,
        "Zoom into a region of an image to see details at full resolution; returns it as a new image.",
        {
            "bbox_2d": box_param(coord_frame, "The region"),
            "image_index": image_index_param("Image to zoom into"),
        },
        required=["bbox_2d"],
    )


class ZoomInTool(PixelTool):
    """Crop `bbox_2d` of image `image_index` and return it resized within min/max pixels."""

    def default_tool_schema(self) -> dict[str, Any]:
        return zoom_in_schema(self.settings.coord_frame)

    def run(self, params: dict[str, Any], agent_data: Any) -> PixelResult:
        if "bbox_2d" not in params:
            raise ToolArgumentError(
                f"{self.name}: bbox_2d is required: [x1, y1, x2, y2] in {self.settings.coord_frame} coordinates"
            )
        box = parse_box(self.name, params["bbox_2d"])
        index = self.image_index(params, agent_data)
        view = self.view(agent_data, index)
        box_source = box_to_source(
            self.name, box, self.settings.coord_frame, view.shown.size, view.source.size, image_index=index
        )
        crop, used = zoom(
            view.source,
            box_source,
            min_pixels=self.settings.min_pixels,
            max_pixels=self.settings.max_pixels,
            size_factor=self.settings.size_factor,
            max_aspect_ratio=self.settings.max_aspect_ratio,
        )
        text = (
            f"Zoomed into [{', '.join(map(str, used))}] (source pixels) of image {index}; "
            f"crop is {crop.width}x{crop.height}."
        )
        return PixelResult(text=text, images=[crop], image_index=index, box_source=used, source_size=view.source.size)
