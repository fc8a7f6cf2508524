"""`read_text`: the text in an image or a region of it, read by a real OCR engine at full resolution.

Lines come back in reading order with their boxes (in the model's coordinate frame) and confidences.
Text only, like get_properties: the step record has no observation feature.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from verl.tools.schemas import OpenAIFunctionToolSchema

from pixelis_verl.ops.ocr import OcrBackend, make_ocr_backend, read_text
from pixelis_verl.ops.zoom import snap_box
from pixelis_verl.tools.arguments import parse_box
from pixelis_verl.tools.base import PixelResult, PixelTool, PixelToolConfig
from pixelis_verl.tools.coords import box_from_source, box_to_source
from pixelis_verl.tools.schemas import box_param, function_schema, image_index_param
from pixelis_verl.trajectory.steps import Mark

TOOL_NAME = "read_text"


@dataclass
class ReadTextConfig(PixelToolConfig):
    backend: str = "rapidocr"  # a key of pixelis_verl.ops.ocr.OCR_BACKENDS
    backend_options: dict[str, Any] = field(default_factory=dict)  # keyword options of that backend
    min_confidence: float = 0.5  # lines the engine is less sure of are left out
    max_lines: int = 20  # lines reported, in reading order; the rest are counted


def read_text_schema(coord_frame: str) -> dict[str, Any]:
    return function_schema(
        TOOL_NAME,
        "Read the text in an image or a region of it: lines in reading order with boxes and confidences.",
        {
            "bbox_2d": box_param(coord_frame, "Region to read (default: the whole image)"),
            "image_index": image_index_param("Image to read"),
        },
        required=[],
    )


class ReadTextTool(PixelTool):
    config_cls = ReadTextConfig
    settings: ReadTextConfig

    def __init__(self, config: dict[str, Any], tool_schema: OpenAIFunctionToolSchema | None = None):
        super().__init__(config, tool_schema)
        self.backend: OcrBackend = make_ocr_backend(self.settings.backend, **self.settings.backend_options)

    def default_tool_schema(self) -> dict[str, Any]:
        return read_text_schema(self.settings.coord_frame)

    def run(self, params: dict[str, Any], agent_data: Any) -> PixelResult:
        index = self.image_index(params, agent_data)
        view = self.view(agent_data, index)
        frame, shown, source = self.settings.coord_frame, view.shown.size, view.source.size
        region = None
        if params.get("bbox_2d") is not None:
            box = parse_box(self.name, params["bbox_2d"])
            region = snap_box(box_to_source(self.name, box, frame, shown, source, image_index=index), source)
        lines = read_text(view.source, region, backend=self.backend, min_confidence=self.settings.min_confidence)
        where = f"image {index}"
        if region is not None:
            where = f"{box_from_source(region, frame, shown, source)} of image {index}"
        text = f"No text found in {where}."
        marks: list[Mark] = []
        if lines:
            shown_lines = []
            for n, line in enumerate(lines[: self.settings.max_lines], start=1):
                box = box_from_source(line.box, frame, shown, source)
                shown_lines.append(f"{n}. {json.dumps(line.text, ensure_ascii=False)} at {box} ({line.confidence:.2f})")
                marks.append(Mark(box=[float(v) for v in line.box], label=str(n)))
            more = len(lines) - len(shown_lines)
            text = f"Text in {where}: " + "; ".join(shown_lines) + (f"; and {more} more lines." if more else ".")
        return PixelResult(text=text, image_index=index, box_source=region, source_size=view.source.size, marks=marks)
