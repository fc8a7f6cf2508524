"""Turn synthetic zoom tasks into verl RL parquet rows (the format `verl.utils.dataset.RLHFDataset` reads).

Each row carries the canvas twice, on purpose: `images` is what the model sees, downscaled by
qwen_vl_utils to at most `shown_max_pixels` (read from the image entry), and
`extra_info.tools_kwargs.pixelis.source_images` is the full-resolution copy that `zoom_in` crops
from. RLHFDataset moves `extra_info.tools_kwargs` to the row's `tools_kwargs`, which verl's tool
agent loop hands to every tool as `agent_data.tools_kwargs`.
"""

import io
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from pixelis_verl.data.synth.zoom_tasks import CANVAS_SIZE, ZoomTask, generate_zoom_tasks

DATA_SOURCE = "pixelis/synth_zoom"
ABILITY = "pixel_vqa"
AGENT_NAME = "pixelis_tool_agent"  # conf/agent_loops.yaml registers it with verl
SHOWN_MAX_PIXELS = 448 * 448  # the model's view of an 896 px canvas is 448 px: small targets are unreadable

SYSTEM_PROMPT = (
    "You are a careful visual assistant. The image you are shown is downscaled, so small text and small "
    "objects may be unreadable. Use the zoom_in tool to look at a region at full resolution before you "
    "answer; you may call it several times. When you are sure, give only the final answer, a single word "
    "or number, inside <answer></answer>, e.g. <answer>blue</answer>."
)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def zoom_task_row(task: ZoomTask, index: int, split: str, shown_max_pixels: int = SHOWN_MAX_PIXELS) -> dict[str, Any]:
    """One RL row: the prompt with the canvas, the ground truth for the reward, the source for the tool."""
    png = png_bytes(task.image)
    return {
        "data_source": DATA_SOURCE,
        "prompt": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "<image>\n" + task.question},
        ],
        # max_pixels is read by qwen_vl_utils.fetch_image when verl resizes the image for the model.
        "images": [{"bytes": png, "max_pixels": shown_max_pixels}],
        "ability": ABILITY,
        "reward_model": {"style": "rule", "ground_truth": task.answer},
        "agent_name": AGENT_NAME,
        "extra_info": {
            "index": index,
            "split": split,
            "kind": task.kind,
            "question": task.question,
            "answer": task.answer,
            "target_box": list(task.target_box),
            "tools_kwargs": {"pixelis": {"source_images": [{"bytes": png}]}},
        },
    }


def write_zoom_task_parquet(
    path: str | Path,
    num: int,
    seed: int,
    split: str,
    canvas_size: tuple[int, int] = CANVAS_SIZE,
    shown_max_pixels: int = SHOWN_MAX_PIXELS,
) -> Path:
    """Generate `num` zoom tasks from `seed` and write them as verl RL rows to the parquet file `path`."""
    tasks = generate_zoom_tasks(num, seed, canvas_size)
    rows = [zoom_task_row(task, i, split, shown_max_pixels) for i, task in enumerate(tasks)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path, index=False)
    return path
