"""The synthetic pixel tasks as request records: one generator for TTRL's synthetic stream and the synthetic
benchmark.

A request is what a user would send (`docs/ttrl.md`): an id, the question and its image (PNG) or video (mp4),
written under `data_root/stream/` and named by a path relative to the data root; with `select_tools`, the
request offers only its kind's tools, as the RL rows do. The answer travels beside it, never in it: the stream
writes it to a key file the driver never reads, the benchmark merges it into its own records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelis_verl.data.synth.moving_object import write_video
from pixelis_verl.data.synth.tasks import TASK_TOOLS, generate_tasks


@dataclass
class SynthRequest:
    record: dict[str, Any]  # the request as sent: id, question, images or video, tools
    answer: str
    answer_metric: str
    kind: str


MEDIA_DIR = "stream"  # under the data root


def synth_requests(
    data_root: str | Path, num: int, seed: int, kinds: list[str], *, select_tools: bool = False
) -> list[SynthRequest]:
    """`num` requests (`req-00000`, ...) of the task `kinds`, their media written under `data_root/stream/`."""
    folder = Path(data_root) / MEDIA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    requests = []
    for i, task in enumerate(generate_tasks(num, seed, kinds)):
        request_id = f"req-{i:05d}"
        if task.frames:
            write_video(task.frames, folder / f"{request_id}.mp4", task.fps)
            record = {"id": request_id, "question": task.question, "video": f"{MEDIA_DIR}/{request_id}.mp4"}
        else:
            task.image.save(folder / f"{request_id}.png")
            record = {"id": request_id, "question": task.question, "images": [f"{MEDIA_DIR}/{request_id}.png"]}
        if select_tools:
            record["tools"] = list(TASK_TOOLS[task.kind])
        requests.append(SynthRequest(record, task.answer, task.answer_metric, task.kind))
    return requests
