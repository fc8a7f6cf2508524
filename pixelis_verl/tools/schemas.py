"""Building blocks of the tools' OpenAI function schemas, worded once for every tool.

verl's pydantic schema keeps only type/description/enum of a parameter (items, minItems, minimum ...
are dropped), so every constraint the model must follow is written into the description. Boxes and
points are described in the tool's configured coordinate frame, so a schema cannot drift from the
frame the tool actually reads.
"""

from typing import Any

from pixelis_verl.tools.coords import get_coord_frame

IMAGE_INDEX_HELP = "0 = the question image, +1 per image a tool returned"


def box_param(coord_frame: str, what: str) -> dict[str, Any]:
    return {
        "type": "array",
        "description": (
            f"{what}: [x1, y1, x2, y2], 4 numbers with x1 < x2 and y1 < y2, in {get_coord_frame(coord_frame).help}."
        ),
    }


def point_param(coord_frame: str, what: str) -> dict[str, Any]:
    return {
        "type": "array",
        "description": f"{what}: [x, y], 2 numbers, in {get_coord_frame(coord_frame).help}.",
    }


def image_index_param(what: str) -> dict[str, Any]:
    return {"type": "integer", "description": f"{what}: {IMAGE_INDEX_HELP}. Default 0."}


def integer_param(description: str) -> dict[str, Any]:
    return {"type": "integer", "description": description}


def number_param(description: str) -> dict[str, Any]:
    return {"type": "number", "description": description}


def mask_id_param(what: str) -> dict[str, Any]:
    return {"type": "string", "description": f'{what}: a mask_id from segment_object_at, e.g. "m1".'}


def function_schema(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }
