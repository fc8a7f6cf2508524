"""`zoom_in`: crop a region of an image the model has seen, from the full-resolution source when there is one;
and `image_zoom_in_tool`, the same operation under the name and arguments Qwen3-VL was trained to call.

The model sees a downscaled image, so small text and objects are lost. It names a box in the
configured coordinate frame; the box is mapped to source pixels, cropped from the full-resolution
source when the row provides it (else from the shown image), and the crop comes back as a new image.

Qwen3-VL calls its own zoom tool zero-shot (Qwen-Agent's ``image_zoom_in_tool``: ``bbox_2d`` in relative
0..1000 coordinates, ``label``, ``img_idx``; a box under 32 pixels a side grown around its centre to 32; the crop
upscaled by ``smart_resize`` with factor 32 to at least 256 * 32 * 32 pixels). Evaluating a base Qwen3-VL with
our ``zoom_in`` name and ``image_index`` argument would measure how well it reads a new schema, not what it can
do with a zoom; `ImageZoomInTool` gives it the interface it knows over the same crop.
"""

from dataclasses import dataclass
from typing import Any

from pixelis_verl.ops.zoom import grow_to_min_side, zoom
from pixelis_verl.tools.arguments import parse_box, show_value
from pixelis_verl.tools.base import PixelResult, PixelTool, PixelToolConfig, ToolArgumentError
from pixelis_verl.tools.coords import box_to_source
from pixelis_verl.tools.schemas import box_param, function_schema, image_index_param, number_param

TOOL_NAME = "zoom_in"
QWEN3_VL_TOOL_NAME = "image_zoom_in_tool"
_MAX_LABEL_CHARS = 100  # a label is echoed in the tool's text; longer ones are cut


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


def image_zoom_in_schema() -> dict[str, Any]:
    """Qwen-Agent's `image_zoom_in_tool` schema: its name, description, argument names and required list."""
    return function_schema(
        QWEN3_VL_TOOL_NAME,
        "Zoom in on a specific region of an image by cropping it based on a bounding box (bbox) and an optional "
        "object label",
        {
            "bbox_2d": {
                "type": "array",
                "description": "The bounding box of the region to zoom in, as [x1, y1, x2, y2], where (x1, y1) is "
                "the top-left corner and (x2, y2) is the bottom-right corner",
            },
            "label": {"type": "string", "description": "The name or label of the object in the specified bounding box"},
            "img_idx": number_param("The index of the zoomed-in image (starting from 0)"),
        },
        required=["bbox_2d", "label", "img_idx"],
    )


class ZoomInTool(PixelTool):
    """Crop `bbox_2d` of image `image_index` and return it resized within min/max pixels."""

    def default_tool_schema(self) -> dict[str, Any]:
        return zoom_in_schema(self.settings.coord_frame)

    def run(self, params: dict[str, Any], agent_data: Any) -> PixelResult:
        return self.zoom(params, agent_data, self.image_index(params, agent_data))

    def zoom(self, params: dict[str, Any], agent_data: Any, index: int, *, min_side: int | None = None) -> PixelResult:
        """Crop `bbox_2d` of image `index`, its source box grown to at least `min_side` pixels a side if given."""
        if "bbox_2d" not in params:
            raise ToolArgumentError(
                f"{self.name}: bbox_2d is required: [x1, y1, x2, y2] in {self.settings.coord_frame} coordinates"
            )
        box = parse_box(self.name, params["bbox_2d"])
        view = self.view(agent_data, index)
        box_source = box_to_source(
            self.name, box, self.settings.coord_frame, view.shown.size, view.source.size, image_index=index
        )
        if min_side is not None:
            box_source = grow_to_min_side(box_source, view.source.size, min_side)
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


@dataclass
class ImageZoomInConfig(PixelToolConfig):
    """`image_zoom_in_tool`'s config: Qwen-Agent's numbers are the defaults; its frame is relative_1000 only."""

    coord_frame: str = "relative_1000"  # Qwen3-VL's grounding frame; the tool's schema cannot say another
    size_factor: int = 32  # Qwen3-VL's patch x merge size, smart_resize's factor
    min_pixels: int = 256 * 32 * 32  # smart_resize's min_pixels in Qwen-Agent: small crops are upscaled to this
    max_pixels: int = 12_845_056  # smart_resize's default max_pixels (Qwen-Agent passes none)
    min_side: int = 32  # a box with a side under this many source pixels is grown around its centre

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.coord_frame != "relative_1000" or self.min_side < 1:
            raise ValueError(
                f"{QWEN3_VL_TOOL_NAME}: coord_frame must be relative_1000 (Qwen3-VL's frame, which its schema "
                f"assumes) and min_side >= 1; got coord_frame={self.coord_frame!r}, min_side={self.min_side}"
            )


class ImageZoomInTool(ZoomInTool):
    """`image_zoom_in_tool(bbox_2d, label, img_idx)`: Qwen3-VL's own zoom over `zoom_in`'s crop."""

    config_cls = ImageZoomInConfig

    def default_tool_schema(self) -> dict[str, Any]:
        return image_zoom_in_schema()

    def run(self, params: dict[str, Any], agent_data: Any) -> PixelResult:
        if "img_idx" not in params:
            raise ToolArgumentError(f"{self.name}: img_idx is required: the index of the image, starting from 0")
        label = params.get("label")
        if label is not None and not isinstance(label, str):
            raise ToolArgumentError(f"{self.name}: label must be a string; got {show_value(label)}")
        index = self.image_index(params, agent_data, "img_idx")
        result = self.zoom(params, agent_data, index, min_side=self.settings.min_side)
        if label:
            result.text = f"{label[:_MAX_LABEL_CHARS]}: {result.text}"
        return result
