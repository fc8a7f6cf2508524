"""The steps the CLI and the SFT recipes share: the view of a model, synthesis of SFT splits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixelis_verl.data.cota import TraceSet, View
from pixelis_verl.data.parquet import write_sft_parquet
from pixelis_verl.data.synth.traces import SynthConfig, synthesize
from pixelis_verl.tools.session import load_tools, tool_schemas


def view_for(tool_config: str | Path, model_path: str, max_pixels: int | None = None) -> View:
    """How `model_path`'s processor shows images, in the coordinate frame of `tool_config`'s tools.

    `max_pixels` caps the shown area below the processor's own limit (as RL rows do with `shown_max_pixels`).
    """
    from verl.utils import hf_processor

    from pixelis_verl.ops.sizes import ImageBudget

    processor = hf_processor(model_path)
    if processor is None:
        raise ValueError(f"{model_path}: no image processor; CoTA traces need a vision-language model")
    budget = ImageBudget.of(processor)
    tools = load_tools(tool_config, ".")
    coord_frame = next(iter(tools.values())).settings.coord_frame
    limit = min(budget.max_pixels, max_pixels) if max_pixels else budget.max_pixels
    return View(coord_frame, budget.min_pixels, limit, budget.factor)


def synth_sft_splits(synth: Any, model_path: str, out_dir: Path) -> dict[str, Path]:
    """Synthesise train/val trace sets (seeds `seed`, `seed + 1`) for a model and render them to SFT parquet.

    `synth` is the recipe's `pixelis.sft_data` block; returns {split: parquet path}.
    """
    view = view_for(synth.tool_config, model_path, synth.get("max_pixels"))
    schemas = tool_schemas(load_tools(synth.tool_config, out_dir))  # the schemas do not depend on the media
    written = {}
    for split, num, seed in (("train", synth.num_train, synth.seed), ("val", synth.num_val, synth.seed + 1)):
        config = SynthConfig(
            Path(synth.tool_config), view, seed=seed, kinds=tuple(synth.kinds), mix=tuple(dict(synth.mix).items())
        )
        traces = TraceSet(out_dir / f"traces_{split}")
        made = synthesize(config, traces, num, workers=synth.workers)
        path = out_dir / f"{split}.parquet"
        write_sft_parquet(((t, traces.root) for t in made), schemas, path)
        written[split] = path
    return written
