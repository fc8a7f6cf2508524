"""Image-only Qwen-VL processors for machines without torchvision (the CPU runtime).

Why this exists: no torchvision build matches the CPU torch we pin, and without torchvision transformers turns every
video processor into a placeholder class. Upstream `Qwen2_5_VLProcessor` / `Qwen3VLProcessor` then cannot be built
(`from_pretrained` tries to instantiate the placeholder and raises), and verl's `hf_processor` catches that, warns
and returns None — the VL model would silently train as text-only. Image processing itself is fine: transformers
falls back to the PIL image processor (`Qwen2VLImageProcessor` resolves to `Qwen2VLImageProcessorPil`).

The classes below subclass the upstream processors, keep their class names (verl chooses `get_rope_index` by
`processor.__class__.__name__`; transformers records `processor_class` by name) and drop the `video_processor`
argument from `__init__` (transformers derives the sub-processor list from that signature). Any video input raises
instead of being silently ignored.

How they are found — two routes, because each covers what the other cannot:

1. `install_cpu_processors()` (called by `pixelis_verl.plugin`, i.e. in every process that imports verl, Ray
   workers included) rebinds the upstream names inside transformers to these classes when torchvision is missing.
   `AutoProcessor` resolves `processor_class` by name through those modules and prefers a class defined outside
   transformers over any `auto_map`, so this works for *any* Qwen-VL checkpoint — real ones too — and independently
   of `trust_remote_code`, which verl defaults to False. This is the route verl relies on.
2. The tiny model directories also carry an `auto_map` to a one-line module that re-exports these classes, so a
   process that never imports verl or pixelis_verl (a notebook, `transformers` alone) still gets them with
   `trust_remote_code=True`. Alone this route would be fragile: with verl's default `trust_remote_code=False` it is
   skipped and `hf_processor` returns None without an error.

On machines with torchvision (GPU clusters) `install_cpu_processors()` does nothing and upstream classes are used.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

from transformers.models.qwen2_5_vl import processing_qwen2_5_vl
from transformers.models.qwen2_vl import processing_qwen2_vl
from transformers.models.qwen3_vl import processing_qwen3_vl

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("PIXELIS_LOGGING_LEVEL", "WARN").upper())

VIDEO_UNSUPPORTED = (
    "{name}: video input is not supported by pixelis_verl's image-only processor (torchvision is not installed, so "
    "transformers has no Qwen video processor). Pass frames as images, or run where torchvision is available."
)


class _ImageOnlyProcessorMixin:
    """`__init__` without `video_processor` (so transformers loads no video processor) and a loud video guard."""

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None, **kwargs):
        # ProcessorMixin pairs positional sub-processors with get_attributes(), which reads *this* signature
        # (image_processor, tokenizer); the upstream __init__'s trailing video_processor=None is therefore dropped.
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    def __call__(self, images: Any = None, text: Any = None, videos: Any = None, **kwargs: Any) -> Any:
        if videos is not None and not (isinstance(videos, list | tuple) and len(videos) == 0):
            raise ValueError(VIDEO_UNSUPPORTED.format(name=type(self).__name__))
        texts = [text] if isinstance(text, str) else (text or [])
        if any(isinstance(t, str) and self.video_token in t for t in texts):
            raise ValueError(VIDEO_UNSUPPORTED.format(name=type(self).__name__))
        return super().__call__(images=images, text=text, **kwargs)


class Qwen2VLProcessor(_ImageOnlyProcessorMixin, processing_qwen2_vl.Qwen2VLProcessor):
    """Qwen2-VL processor without a video processor."""


class Qwen2_5_VLProcessor(_ImageOnlyProcessorMixin, processing_qwen2_5_vl.Qwen2_5_VLProcessor):  # noqa: N801
    """Qwen2.5-VL processor without a video processor."""


class Qwen3VLProcessor(_ImageOnlyProcessorMixin, processing_qwen3_vl.Qwen3VLProcessor):
    """Qwen3-VL processor without a video processor."""


# model_type -> image-only processor; the model package in transformers is named after the model_type.
IMAGE_ONLY_PROCESSORS: dict[str, type] = {
    "qwen2_vl": Qwen2VLProcessor,
    "qwen2_5_vl": Qwen2_5_VLProcessor,
    "qwen3_vl": Qwen3VLProcessor,
}


def install_cpu_processors(force: bool = False) -> bool:
    """Make transformers resolve the Qwen-VL processor names to the image-only classes when torchvision is missing.

    Idempotent. Returns True when the classes are installed. `force` installs them even with torchvision (tests).
    """
    import transformers
    from transformers.models.auto import configuration_auto, processing_auto
    from transformers.utils import is_torchvision_available

    if is_torchvision_available() and not force:
        return False
    for model_type, cls in IMAGE_ONLY_PROCESSORS.items():
        # AutoProcessor's processor_class_from_name() looks names up on the model package; user code on the top level.
        setattr(importlib.import_module(f"transformers.models.{model_type}"), cls.__name__, cls)
        setattr(transformers, cls.__name__, cls)
        # Checkpoints without a processor_class fall back to PROCESSOR_MAPPING[type(config)].
        config_cls = getattr(transformers, configuration_auto.CONFIG_MAPPING_NAMES[model_type])
        processing_auto.PROCESSOR_MAPPING.register(config_cls, cls, exist_ok=True)
    logger.info("pixelis_verl: image-only Qwen-VL processors installed (torchvision is not available)")
    return True
