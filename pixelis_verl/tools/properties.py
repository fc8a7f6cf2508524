"""`get_properties`: measured properties of an object, named by a mask_id or a box.

Colour, size, shape and position are computed from the source pixels (ops/properties.py), so a model
comparing two objects gets numbers it cannot read off a downscaled view. Text only: the call shows the
model nothing new to look at, so its step record has no observation feature.
"""

from typing import Any

from pixelis_verl.ops.properties import get_properties
from pixelis_verl.tools.arguments import parse_box, show_value
from pixelis_verl.tools.base import PixelResult, PixelTool, ToolArgumentError
from pixelis_verl.tools.coords import box_from_source, box_to_source
from pixelis_verl.tools.schemas import box_param, function_schema, image_index_param, mask_id_param

TOOL_NAME = "get_properties"


def properties_schema(coord_frame: str) -> dict[str, Any]:
    return function_schema(
        TOOL_NAME,
        "Measure an object given by mask_id or bbox_2d: colour, area, aspect ratio, circularity, orientation, "
        "position.",
        {
            "mask_id": mask_id_param("The object's mask"),
            "bbox_2d": box_param(coord_frame, "Or its box"),
            "image_index": image_index_param("Image the box is on"),
        },
        required=[],
    )


class GetPropertiesTool(PixelTool):
    def default_tool_schema(self) -> dict[str, Any]:
        return properties_schema(self.settings.coord_frame)

    def run(self, params: dict[str, Any], agent_data: Any) -> PixelResult:
        has_mask, has_box = params.get("mask_id") is not None, params.get("bbox_2d") is not None
        if has_mask == has_box:
            raise ToolArgumentError(f"{self.name}: give exactly one of mask_id (from segment_object_at) or bbox_2d")
        if has_mask:
            mask_id, stored = self.state(agent_data).lookup_mask(self.name, params["mask_id"])
            view = self.view(agent_data, stored.image_index)
            if view.source.size != stored.source_size:
                raise ToolArgumentError(f"{self.name}: mask {mask_id} no longer matches image {stored.image_index}")
            props = get_properties(view.source, mask=stored.full())
            subject = f"mask {mask_id}"
        else:
            box = parse_box(self.name, params["bbox_2d"])
            view = self.view(agent_data, self.image_index(params, agent_data))
            source_box = box_to_source(
                self.name, box, self.settings.coord_frame, view.shown.size, view.source.size, image_index=view.index
            )
            x1, y1, x2, y2 = (round(v) for v in source_box)
            if x2 <= x1 or y2 <= y1:
                raise ToolArgumentError(f"{self.name}: bbox_2d {show_value(params['bbox_2d'])} is under a pixel wide")
            props = get_properties(view.source, box=(x1, y1, x2, y2))
            subject = "the object in the box"
        box_shown = box_from_source(props.box, self.settings.coord_frame, view.shown.size, view.source.size)
        text = (
            f"{subject} in image {view.index}: colour {props.colour} {props.rgb}; area {props.relative_size:.2%} "
            f"of the image; aspect ratio {props.aspect_ratio:.2f}; circularity {props.circularity:.2f}; "
            f"orientation {props.orientation_deg:.0f} deg; position {props.position}; box {box_shown}."
        )
        return PixelResult(text=text, image_index=view.index, box_source=props.box, source_size=view.source.size)
