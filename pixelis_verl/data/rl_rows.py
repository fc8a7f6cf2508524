"""Turn synthetic pixel tasks into verl RL parquet rows (the format `verl.utils.dataset.RLHFDataset` reads).

An image task carries its image twice, on purpose: `images` is what the model sees, downscaled by
qwen_vl_utils to at most `shown_max_pixels` (read from the image entry), and
`extra_info.tools_kwargs.pixelis.source_images` is the full-resolution copy the tools work on.
A video task shows its first frame as the question image and writes its frames to an mp4 under
`media_dir`; `tools_kwargs.pixelis.video` names it relative to the tools' data root (`media_dir` is
inside it) and says which frame the question image shows. RLHFDataset moves `extra_info.tools_kwargs`
to the row's `tools_kwargs`, which verl's tool agent loop hands to every tool as `agent_data.tools_kwargs`.
"""

import io
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from pixelis_verl.data.synth.moving_object import write_video
from pixelis_verl.data.synth.tasks import TASK_TOOLS, PixelTask, generate_tasks

DATA_SOURCE = "pixelis/synth_pixel"
ABILITY = "pixel_vqa"
AGENT_NAME = "pixelis_tool_agent"  # conf/agent_loops.yaml registers it with verl
SHOWN_MAX_PIXELS = 448 * 448  # the model's view of an 896 px canvas is 448 px: small targets are unreadable
ALL_KINDS = ("text", "colour", "shape", "sign", "size", "motion", "event")

SYSTEM_PROMPT = (
    "You are a careful visual assistant. The image you are shown is downscaled, so small text and small "
    "objects may be unreadable. Use the tools to look closer before you answer: zoom in, segment and measure "
    "objects, read text, look at video frames and track objects; you may call them several times. When you are "
    "sure, give only the final answer inside <answer></answer>, e.g. <answer>blue</answer>."
)
# The same instructions minus the tools: evaluation's tool-free control.
TOOL_FREE_SYSTEM_PROMPT = (
    "You are a careful visual assistant. The image you are shown is downscaled, so small text and small "
    "objects may be unreadable. Look closely before you answer. When you are sure, give only the final answer "
    "inside <answer></answer>, e.g. <answer>blue</answer>."
)


def with_options(question: str, options: list[str] | None) -> str:
    """The question as the model reads it, its options listed under letters (A), (B), ..."""
    if not options:
        return question
    return question + "\nOptions:\n" + "\n".join(f"({chr(65 + i)}) {option}" for i, option in enumerate(options))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def task_row(
    task: PixelTask,
    index: int,
    split: str,
    media_dir: Path,
    data_root: Path,
    shown_max_pixels: int = SHOWN_MAX_PIXELS,
    select_tools: bool = False,
    tool_free: bool = False,
) -> dict[str, Any]:
    """One RL row: the prompt with the question image, the ground truth for the reward, the media for the tools.

    With `select_tools`, the row offers only its kind's tools (`TASK_TOOLS`) through verl's
    `extra_info.tool_selection`; otherwise every tool of the tool config. With `tool_free`, it offers none and
    carries the tool-free system prompt, as evaluation's control does: the policy of a tool-free GRPO control.
    """
    png = png_bytes(task.image)
    pixelis: dict[str, Any] = {"source_images": [{"bytes": png}], "video": None}
    if task.frames:
        media_dir.mkdir(parents=True, exist_ok=True)
        video = write_video(task.frames, media_dir / f"{split}_{index:06d}.mp4", task.fps)
        # The question image shows frame 0, so its source is the decoded frame, not a separate image.
        pixelis = {"source_images": [], "video": {"path": str(video.relative_to(data_root)), "question_frames": [0]}}
    return rl_row(
        question=task.question,
        answer=task.answer,
        answer_metric=task.answer_metric,
        images=[png],
        pixelis=pixelis,
        shown_max_pixels=shown_max_pixels,
        tool_selection=[] if tool_free else list(TASK_TOOLS[task.kind]) if select_tools else None,
        system_prompt=TOOL_FREE_SYSTEM_PROMPT if tool_free else SYSTEM_PROMPT,
        extra_info={"index": index, "split": split, "kind": task.kind,
                    "target_box": list(task.target_box) if task.target_box else None},
    )  # fmt: skip


def rl_row(
    *,
    question: str,
    answer: str | None,
    answer_metric: str,
    images: list[bytes],
    pixelis: dict[str, Any],
    shown_max_pixels: int,
    tool_selection: list[str] | None,
    extra_info: dict[str, Any],
    data_source: str = DATA_SOURCE,
    system_prompt: str = SYSTEM_PROMPT,
) -> dict[str, Any]:
    """One verl RL row: the prompt with the question images (encoded), the ground truth (None for unlabeled
    requests), the tools' media (`pixelis`)."""
    return {
        "data_source": data_source,
        "prompt": [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": "<image>\n" * len(images) + question},
        ],
        # max_pixels is read by qwen_vl_utils.fetch_image when verl resizes the image for the model.
        "images": [{"bytes": image, "max_pixels": shown_max_pixels} for image in images],
        "ability": ABILITY,
        "reward_model": {"style": "rule", "ground_truth": answer},
        "agent_name": AGENT_NAME,
        "extra_info": {
            **extra_info,
            "question": question,
            "answer": answer,
            "answer_metric": answer_metric,  # read by pixelis_verl.trajectory.answers
            "shown_max_pixels": shown_max_pixels,  # the trajectory viewer shows the images at the model's size
            "tools_kwargs": {"pixelis": pixelis},
            "tool_selection": tool_selection,
        },
    }


def write_task_parquet(
    path: str | Path,
    num: int,
    seed: int,
    split: str,
    kinds: list[str] | tuple[str, ...] = ALL_KINDS,
    data_root: str | Path | None = None,
    shown_max_pixels: int = SHOWN_MAX_PIXELS,
    select_tools: bool = False,
    tool_free: bool = False,
) -> Path:
    """Generate `num` tasks from `seed` and write them as verl RL rows to the parquet file `path`.

    Videos go to `<data_root>/videos/`; `data_root` (default: the parquet's folder) is what the tools' config
    must name as its data root. `select_tools`, `tool_free`: see `task_row`.
    """
    path = Path(path)
    data_root = Path(data_root or path.parent).resolve()
    tasks = generate_tasks(num, seed, kinds)
    rows = [
        task_row(task, i, split, data_root / "videos", data_root, shown_max_pixels, select_tools, tool_free)
        for i, task in enumerate(tasks)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path, index=False)
    return path
