"""`mvbench`: MVBench (``OpenGVLab/MVBench``), 20 video tasks of multiple-choice questions (200 each).

``json/<task>.json`` holds each task's questions: ``{"video": "xyz.mp4", "question", "candidates": [...],
"answer": "<the correct candidate's text>"}`` and, in five tasks, ``start``/``end`` (seconds). The records name
the clip relative to its task's folder under ``video/``, and that folder is the authors' table (``TASKS``, from
their ``mvbench.ipynb``): clips are looked up there alone, because names repeat across source datasets
(Perception Test's and CLEVRER's ``video_<n>.mp4``) and across the release's ``data0613/`` copies, so a search of
the whole tree would be ambiguous. ``episodic_reasoning`` ships TVQA clips as folders of frames extracted at
3 fps (``tvqa/frames_fps3_hq/<clip>/``), read at that rate. A task's ``start``/``end`` window is kept on the item
(the frames shown are taken inside it). The category is the task (the JSON's name).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from pixelis_verl.eval.items import (
    BenchmarkAdapter,
    BenchmarkFormatError,
    BenchmarkItem,
    letter_of,
    make_item,
    read_json,
    register_benchmark,
    require_keys,
    require_unique_ids,
    under,
    write_json,
    write_media,
)

KEYS = ("video", "question", "candidates", "answer")


class Task(NamedTuple):
    folder: str  # under the video folder
    frames: bool = False  # clips are folders of frames (at `Params.frame_fps`), not video files


TASKS: dict[str, Task] = {  # the authors' table (Ask-Anything video_chat2/mvbench.ipynb), by JSON name
    "action_sequence": Task("star/Charades_v1_480"),
    "action_prediction": Task("star/Charades_v1_480"),
    "action_antonym": Task("ssv2_video"),
    "fine_grained_action": Task("Moments_in_Time_Raw/videos"),
    "unexpected_action": Task("FunQA_test/test"),
    "object_existence": Task("clevrer/video_validation"),
    "object_interaction": Task("star/Charades_v1_480"),
    "object_shuffle": Task("perception/videos"),
    "moving_direction": Task("clevrer/video_validation"),
    "action_localization": Task("sta/sta_video"),
    "scene_transition": Task("scene_qa/video"),
    "action_count": Task("perception/videos"),
    "moving_count": Task("clevrer/video_validation"),
    "moving_attribute": Task("clevrer/video_validation"),
    "state_change": Task("perception/videos"),
    "fine_grained_pose": Task("nturgbd"),
    "character_order": Task("perception/videos"),
    "egocentric_navigation": Task("vlnqa"),
    "episodic_reasoning": Task("tvqa/frames_fps3_hq", frames=True),
    "counterfactual_inference": Task("clevrer/video_validation"),
}


def _window(record: dict, path: Path, where: str) -> tuple[float, float] | None:
    if "start" not in record and "end" not in record:
        return None
    try:
        start, end = float(record["start"]), float(record["end"])
    except (KeyError, TypeError, ValueError):
        raise BenchmarkFormatError(path, f"{where}: start and end must both be numbers of seconds") from None
    if not 0 <= start <= end:
        raise BenchmarkFormatError(path, f"{where}: the window start={start}, end={end} is not 0 <= start <= end")
    return start, end


@register_benchmark("mvbench")
class MVBenchBenchmark(BenchmarkAdapter):
    @dataclass
    class Params:
        questions: str = "json"  # folder of <task>.json files
        videos: str = "video"  # folder of the source datasets' videos, laid out as in TASKS
        frame_fps: float = 3.0  # the rate the frame-folder tasks were extracted at (frames_fps3_hq)

    def load(self, root: Path) -> list[BenchmarkItem]:
        json_dir, video_dir = root / self.params.questions, root / self.params.videos
        tasks = sorted(json_dir.glob("*.json"))
        if not tasks:
            raise BenchmarkFormatError(json_dir, "no <task>.json file; expected MVBench's json/ folder")
        if not video_dir.is_dir():
            raise BenchmarkFormatError(video_dir, "missing; expected MVBench's video/ folder")
        items = []
        for path in tasks:
            task = TASKS.get(path.stem)
            if task is None:
                raise BenchmarkFormatError(path, f"not an MVBench task; the tasks are {sorted(TASKS)}")
            records = read_json(path, f"a JSON list of questions with keys {list(KEYS)}")
            if not isinstance(records, list):
                raise BenchmarkFormatError(path, f"expected a JSON list of questions; got {type(records).__name__}")
            for number, record in enumerate(records):
                where = f"question {number}"
                require_keys(record, KEYS, path, where)
                clip = under(video_dir / task.folder, record["video"], path, where)
                if not (clip.is_dir() if task.frames else clip.is_file()):
                    kind = "a folder of frames" if task.frames else "a video file"
                    missing = f"{where}: video '{record['video']}': {kind} is missing at '{clip}'"
                    raise BenchmarkFormatError(path, missing)
                options = [str(c) for c in record["candidates"]] if isinstance(record["candidates"], list) else []
                items.append(
                    make_item(
                        path, where,
                        id=f"{path.stem}/{number}", question=str(record["question"]), options=options,
                        answer=letter_of(record["answer"], options, path, where), metric="choice",
                        video=clip, video_fps=self.params.frame_fps if task.frames else None,
                        video_window=_window(record, path, where), category=path.stem,
                    )
                )  # fmt: skip
        return require_unique_ids(items, json_dir)

    def export(self, items: list[BenchmarkItem], root: Path) -> list[BenchmarkItem]:
        """Multiple-choice video questions, the answer written as the correct candidate's text; each under the task
        its category names (another category: the first task whose clips are of the same kind, a file or a folder
        of frames), its id read back as ``<task>/<number>``."""
        records: dict[str, list[dict]] = {}
        loaded: dict[str, list[BenchmarkItem]] = {}
        held = [i for i in items if i.metric == "choice" and i.video is not None and not i.images and _reads_back(i)]
        for number, item in enumerate(held):
            frames = Path(item.video).is_dir()
            name = item.category
            if name not in TASKS or TASKS[name].frames != frames:
                name = next(n for n, t in TASKS.items() if t.frames == frames)
            folder = root / self.params.videos / TASKS[name].folder
            clip = write_media(Path(item.video), folder / f"{number:05d}")
            record = {"video": clip.relative_to(folder).as_posix(), "question": item.question,
                      "candidates": item.options, "answer": (item.options or [])[item.correct_index]}  # fmt: skip
            if item.video_window is not None:
                record |= {"start": item.video_window[0], "end": item.video_window[1]}
            records.setdefault(name, []).append(record)
            fps = self.params.frame_fps if frames else None
            task_items = loaded.setdefault(name, [])
            task_items.append(replace(item, id=f"{name}/{len(task_items)}", category=name, categories=[name],
                                      video=clip, video_fps=fps))  # fmt: skip
        (root / self.params.videos).mkdir(parents=True, exist_ok=True)
        for name, task_records in records.items():
            write_json(root / self.params.questions / f"{name}.json", task_records)
        return [item for name in sorted(loaded) for item in loaded[name]]  # load reads the tasks in name order


def _reads_back(item: BenchmarkItem) -> bool:
    """Whether the correct candidate's text, MVBench's way of giving the answer, reads back as the item's letter (a
    text that looks like a letter, or repeats an earlier candidate, would not)."""
    try:
        return letter_of(item.options[item.correct_index], item.options, Path(), "") == item.answer
    except BenchmarkFormatError:
        return False
