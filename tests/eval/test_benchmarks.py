"""Benchmark adapters read hand-written records in each benchmark's published format, built from the real YAMLs."""

import base64
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf
from PIL import Image

import pixelis_verl.eval.benchmarks  # noqa: F401  (registers every adapter)
from pixelis_verl.eval.benchmarks import build_adapter
from pixelis_verl.eval.items import BENCHMARKS, BenchmarkFormatError, BenchmarkItem, media_bytes

CONF = Path(__file__).resolve().parents[2] / "conf" / "eval" / "benchmark"
YAMLS = sorted(p.stem for p in CONF.glob("*.yaml"))


def load(name: str, root: Path, **params):
    """Items of benchmark `name` under `root`, its adapter built from conf/eval/benchmark/<name>.yaml (+ `params`)."""
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))
    return build_adapter(cfg["adapter"], {**cfg["params"], **params}, f"eval.benchmark[{name}]").load(root)


def jpeg_bytes(colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def write(path: Path, content: str | bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def jsonl(records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


@pytest.mark.parametrize("name", YAMLS)
def test_every_benchmark_yaml_builds_its_registered_adapter(name):
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))
    assert cfg["name"] == name and cfg["adapter"] in BENCHMARKS
    assert build_adapter(cfg["adapter"], cfg["params"], name).name == cfg["adapter"]


@pytest.mark.parametrize("name", YAMLS)
def test_an_empty_folder_fails_naming_the_file_it_expected(name, tmp_path):
    with pytest.raises(BenchmarkFormatError) as error:
        load(name, tmp_path)
    assert str(tmp_path) in str(error.value)


def test_unknown_params_fail_naming_the_yaml(tmp_path):
    with pytest.raises(ValueError, match=r"eval.benchmark\[vstar\].params: unknown key"):
        load("vstar", tmp_path, question_file="x.jsonl")


# V* Bench


VSTAR_TEXT = (
    "What is the color of the woman's jacket?\n(A) white\n(B) black\n(C) red\n(D) blue\n"
    "Answer with the option's letter from the given choices directly."
)


def test_vstar_parses_options_out_of_the_question_text(tmp_path):
    write(tmp_path / "direct_attributes/sa_4690.jpg", jpeg_bytes())
    write(tmp_path / "relative_position/sa_1.jpg", jpeg_bytes())
    spatial = "Is the cup on the left or right of the dog?\n(A) left\n(B) right\nAnswer with the option's letter."
    write(tmp_path / "test_questions.jsonl", jsonl([
        {"image": "direct_attributes/sa_4690.jpg", "text": VSTAR_TEXT, "category": "direct_attributes",
         "question_id": 0, "label": "B"},
        {"image": "relative_position/sa_1.jpg", "text": spatial, "category": "relative_position",
         "question_id": 1, "label": "A"},
    ]))  # fmt: skip
    first, second = load("vstar", tmp_path)
    assert first.question == "What is the color of the woman's jacket?"
    assert (first.options, first.answer, first.metric) == (["white", "black", "red", "blue"], "B", "choice")
    assert (first.id, first.category, first.images) == (
        "0",
        "direct_attributes",
        [tmp_path / "direct_attributes/sa_4690.jpg"],
    )
    assert (second.options, second.answer, second.category) == (["left", "right"], "A", "relative_position")


def test_vstar_text_without_options_fails_naming_the_line(tmp_path):
    write(tmp_path / "a.jpg", jpeg_bytes())
    write(tmp_path / "test_questions.jsonl", jsonl([{"image": "a.jpg", "text": "What colour is it?", "label": "A"}]))
    with pytest.raises(BenchmarkFormatError, match=r"test_questions.jsonl: line 1: no '\(A\) \.\.\.'"):
        load("vstar", tmp_path)


def test_vstar_missing_image_fails_naming_the_record_and_the_path(tmp_path):
    write(tmp_path / "test_questions.jsonl", "\n" + jsonl([{"image": "gone.jpg", "text": VSTAR_TEXT, "label": "A"}]))
    with pytest.raises(BenchmarkFormatError, match=r"line 2: media file '.*gone.jpg' does not exist"):
        load("vstar", tmp_path)


# HR-Bench


def hrbench_tsv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)


def hr_row(index, image, answer="C", **extra):
    return {"index": index, "question": "What is written on the sign?", "answer": answer, "category": "single",
            "A": "stop", "B": "yield", "C": "exit 12", "D": "no entry", "image": image, **extra}  # fmt: skip


@pytest.mark.parametrize(("name", "file"), [("hrbench_4k", "hr_bench_4k.tsv"), ("hrbench_8k", "hr_bench_8k.tsv")])
def test_hrbench_reads_base64_images_and_rows_that_reuse_another_rows_image(name, file, tmp_path):
    image = jpeg_bytes()
    hrbench_tsv(tmp_path / file, [
        hr_row(0, base64.b64encode(image).decode(), cycle_category="0"),
        hr_row(1, "0", answer="A", cycle_category="1"),  # VLMEvalKit's TSVs point repeated images at a row index
    ])  # fmt: skip
    first, second = load(name, tmp_path)
    assert (first.question, first.options) == ("What is written on the sign?", ["stop", "yield", "exit 12", "no entry"])
    assert (first.answer, first.metric, first.category, first.id) == ("C", "choice", "single", "0")
    assert first.images == second.images == [image]
    assert second.answer == "A"


def test_hrbench_reads_quotes_as_pandas_writes_them(tmp_path):
    question = 'Does the sign say "STOP", or "GO"?'  # pandas quotes such a cell and doubles its quotes
    row = hr_row(0, base64.b64encode(jpeg_bytes()).decode(), question=question, A='"STOP"', B="GO\tnow")
    hrbench_tsv(tmp_path / "hr_bench_4k.tsv", [row])
    assert '"Does the sign say ""STOP"", or ""GO""?"' in (tmp_path / "hr_bench_4k.tsv").read_text()
    (item,) = load("hrbench_4k", tmp_path)
    assert (item.question, item.options[:2]) == (question, ['"STOP"', "GO\tnow"])


def test_hrbench_missing_column_and_bad_base64_fail_naming_the_file(tmp_path):
    rows = [hr_row(0, base64.b64encode(jpeg_bytes()).decode())]
    hrbench_tsv(tmp_path / "hr_bench_4k.tsv", [{k: v for k, v in r.items() if k != "D"} for r in rows])
    with pytest.raises(BenchmarkFormatError, match=r"hr_bench_4k.tsv: missing column\(s\) \['D'\]"):
        load("hrbench_4k", tmp_path)
    hrbench_tsv(tmp_path / "hr_bench_4k.tsv", [hr_row(0, "not base64 at all!" * 10)])
    with pytest.raises(BenchmarkFormatError, match=r"hr_bench_4k.tsv: row 1 \(index 0\): image is not valid base64"):
        load("hrbench_4k", tmp_path)


# MME-RealWorld and its Lite release


def mme_record(**overrides):
    record = {
        "Question_id": "Perception/Autonomous_Driving/Objects_Identify/0000", "Question Type": "Multiple Choice",
        "Image": "AutonomousDriving/nuScenes/front.jpg", "Text": "What is in front of the ego car?",
        "Answer choices": ["(A) a truck", "(B) a bus", "(C) nothing", "(D) two cars", "(E) All the above are wrong."],
        "Ground truth": "D", "Task": "Perception", "Subtask": "Autonomous_Driving", "Category": "Objects_Identify",
    }  # fmt: skip
    return {**record, **overrides}


def test_mme_realworld_strips_option_letters_and_reports_task_and_subtask(tmp_path):
    write(tmp_path / "AutonomousDriving/nuScenes/front.jpg", jpeg_bytes())
    write(tmp_path / "MME_RealWorld.json", json.dumps([mme_record()]))
    (item,) = load("mme_realworld", tmp_path)
    assert (item.question, item.answer, item.metric) == ("What is in front of the ego car?", "D", "choice")
    assert item.options == ["a truck", "a bus", "nothing", "two cars", "All the above are wrong."]
    assert (item.category, item.images) == (
        "Perception/Autonomous_Driving",
        [tmp_path / "AutonomousDriving/nuScenes/front.jpg"],
    )


def test_mme_realworld_unlettered_choices_fail_naming_the_question(tmp_path):
    write(tmp_path / "AutonomousDriving/nuScenes/front.jpg", jpeg_bytes())
    write(tmp_path / "MME_RealWorld.json", json.dumps([mme_record(**{"Answer choices": ["a truck", "a bus"]})]))
    with pytest.raises(BenchmarkFormatError, match=r"MME_RealWorld.json: question 0: option 'a truck' should start"):
        load("mme_realworld", tmp_path)


def lite_row(**overrides):
    row = {"index": 7, "question": "How many buses are there?", "multi-choice options": ["(A) 3", "(B) 4", "(C) 5"],
           "answer": "B", "category": "Perception/Monitoring", "l2-category": "Vehicle/counting",
           "bytes": base64.b64encode(jpeg_bytes()).decode()}  # fmt: skip
    return {**row, **overrides}


def test_mme_realworld_lite_reads_parquet_shards_with_inline_images(tmp_path):
    (tmp_path / "data").mkdir()
    pd.DataFrame([lite_row()]).to_parquet(tmp_path / "data/train-00000-of-00002.parquet")
    pd.DataFrame([lite_row(index=8, answer="C")]).to_parquet(tmp_path / "data/train-00001-of-00002.parquet")
    first, second = load("mme_realworld_lite", tmp_path)
    assert (first.id, first.question, first.options, first.answer) == (
        "7",
        "How many buses are there?",
        ["3", "4", "5"],
        "B",
    )
    assert (first.category, first.images, first.metric) == ("Perception/Monitoring", [jpeg_bytes()], "choice")
    assert (second.id, second.answer) == ("8", "C")


def test_mme_realworld_lite_answer_outside_the_options_fails_naming_the_row(tmp_path):
    (tmp_path / "data").mkdir()
    pd.DataFrame([lite_row(answer="E")]).to_parquet(tmp_path / "data/train-00000-of-00001.parquet")
    with pytest.raises(BenchmarkFormatError, match=r"train-00000-of-00001.parquet: row 1 \(index 7\): answer 'E'"):
        load("mme_realworld_lite", tmp_path)


# VisualProbe


def test_visualprobe_reads_every_level_with_images_relative_to_the_root(tmp_path):
    for level in ("Easy", "Medium", "Hard"):
        write(tmp_path / f"VisualProbe_{level}/data/visual_probe_{level.lower()}_1.jpg", jpeg_bytes())
        images = [f"VisualProbe_{level}/data/visual_probe_{level.lower()}_1.jpg"]
        if level == "Hard":
            images = [f"data/visual_probe_{level.lower()}_1.jpg"]  # relative to the level's folder: accepted too
        record = {"problem": "<image>\nWhat is the number on the bus?", "images": images, "solution": "42"}
        write(tmp_path / f"VisualProbe_{level}/val.json", json.dumps([record]))
    easy, medium, hard = load("visualprobe", tmp_path)
    assert (easy.question, easy.answer, easy.metric, easy.options) == (
        "What is the number on the bus?",
        "42",
        "exact",
        None,
    )
    assert [i.category for i in (easy, medium, hard)] == ["easy", "medium", "hard"]
    assert [i.id for i in (easy, medium, hard)] == ["easy/0", "medium/0", "hard/0"]
    assert hard.images == [tmp_path / "VisualProbe_Hard/data/visual_probe_hard_1.jpg"]


def test_visualprobe_record_without_solution_fails_naming_it(tmp_path):
    write(tmp_path / "VisualProbe_Easy/val.json", json.dumps([{"problem": "Which?", "images": []}]))
    with pytest.raises(
        BenchmarkFormatError, match=r"VisualProbe_Easy/val.json: question 0: missing key\(s\) \['solution'\]"
    ):
        load("visualprobe", tmp_path)


# TallyQA


def test_tallyqa_counts_are_exact_numbers_split_simple_and_complex(tmp_path):
    write(tmp_path / "VG_100K/2374.jpg", jpeg_bytes())
    write(tmp_path / "test.json", json.dumps([
        {"image": "VG_100K/2374.jpg", "question": "How many dogs?", "answer": 3, "data_source": "amt",
         "image_id": 2374, "question_id": 11, "issimple": True},
        {"image": "VG_100K/2374.jpg", "question": "How many dogs are sleeping?", "answer": 0, "data_source": "amt",
         "image_id": 2374, "question_id": 12, "issimple": False},
    ]))  # fmt: skip
    simple, complex_ = load("tallyqa", tmp_path)
    assert (simple.question, simple.answer, simple.metric, simple.category) == (
        "How many dogs?",
        "3",
        "exact",
        "simple",
    )
    assert (complex_.id, complex_.answer, complex_.category) == ("12", "0", "complex")


def test_tallyqa_non_integer_answer_fails_naming_the_question(tmp_path):
    write(tmp_path / "VG_100K/1.jpg", jpeg_bytes())
    record = {"image": "VG_100K/1.jpg", "question": "How many?", "answer": "three", "question_id": 1, "issimple": True}
    write(tmp_path / "test.json", json.dumps([record]))
    with pytest.raises(BenchmarkFormatError, match=r"test.json: question 0: answer must be an integer count"):
        load("tallyqa", tmp_path)


# InfographicVQA


def test_infovqa_keeps_every_accepted_answer_for_anls(tmp_path):
    write(tmp_path / "infographicsvqa_images/10002.jpeg", jpeg_bytes())
    write(tmp_path / "infographicsVQA_val_v1.0_withQT.json", json.dumps({
        "dataset_name": "infographicsVQA", "dataset_split": "val",
        "data": [{"questionId": 65718, "question": "What share of people work from home?",
                  "image_local_name": "10002.jpeg", "answers": ["12%", "12 percent"], "answer_type": ["Single span"]}],
    }))  # fmt: skip
    (item,) = load("infovqa", tmp_path)
    assert (item.id, item.answer, item.answers, item.metric) == ("65718", "12%", ["12%", "12 percent"], "anls")
    assert (item.category, item.images) == ("Single span", [tmp_path / "infographicsvqa_images/10002.jpeg"])


def test_infovqa_question_with_several_answer_types_counts_in_each_type(tmp_path):
    write(tmp_path / "infographicsvqa_images/20001.jpeg", jpeg_bytes())
    write(tmp_path / "infographicsVQA_val_v1.0_withQT.json", json.dumps({
        "dataset_name": "infographicsVQA", "dataset_split": "val",
        "data": [{"questionId": 7, "question": "Which two regions grew?", "image_local_name": "20001.jpeg",
                  "answers": ["asia, europe"], "answer_type": ["Multi-span", "Non-span"]}],
    }))  # fmt: skip
    (item,) = load("infovqa", tmp_path)
    assert (item.category, item.categories) == ("Multi-span, Non-span", ["Multi-span", "Non-span"])


def test_infovqa_without_a_data_list_fails_naming_the_file(tmp_path):
    write(tmp_path / "infographicsVQA_val_v1.0_withQT.json", json.dumps([{"questionId": 1}]))
    with pytest.raises(
        BenchmarkFormatError, match=r'infographicsVQA_val_v1.0_withQT.json: expected an object with a "data"'
    ):
        load("infovqa", tmp_path)


# MVBench


def mvbench_record(video="abc.mp4", answer="closed the door"):
    return {"video": video, "question": "What did the person do after sitting?",
            "candidates": ["opened the box", "closed the door", "took a cup"], "answer": answer}  # fmt: skip


def test_mvbench_finds_videos_by_name_and_answers_by_letter(tmp_path):
    video = write(tmp_path / "video/star/Charades_v1_480/abc.mp4")  # adapters check existence, never decode
    write(tmp_path / "json/action_sequence.json", json.dumps([mvbench_record()]))
    (item,) = load("mvbench", tmp_path)
    assert (item.question, item.options) == (
        "What did the person do after sitting?",
        ["opened the box", "closed the door", "took a cup"],
    )
    assert (item.answer, item.metric, item.category, item.video, item.images) == (
        "B",
        "choice",
        "action_sequence",
        video,
        [],
    )


def test_mvbench_looks_clips_up_in_each_tasks_own_folder(tmp_path):
    # the same name in two source datasets and in the release's data0613/ copy: each task reads its own folder
    perception = write(tmp_path / "video/perception/videos/video_1.mp4")
    clevrer = write(tmp_path / "video/clevrer/video_validation/video_1.mp4")
    write(tmp_path / "video/data0613/perception/videos/video_1.mp4")
    write(tmp_path / "json/action_count.json", json.dumps([mvbench_record(video="video_1.mp4")]))
    write(tmp_path / "json/moving_count.json", json.dumps([mvbench_record(video="video_1.mp4")]))
    count, moving = load("mvbench", tmp_path)
    assert (count.category, count.video, moving.category, moving.video) == (
        "action_count", perception, "moving_count", clevrer
    )  # fmt: skip


def test_mvbench_episodic_reasoning_reads_tvqa_frame_folders_at_3_fps_in_their_window(tmp_path):
    clip = tmp_path / "video/tvqa/frames_fps3_hq/castle_s01e01_seg02_clip_00"
    write(clip / "00001.jpg", jpeg_bytes())
    record = mvbench_record(video="castle_s01e01_seg02_clip_00") | {"start": 1.5, "end": 7.25}
    write(tmp_path / "json/episodic_reasoning.json", json.dumps([record]))
    (item,) = load("mvbench", tmp_path)
    assert (item.video, item.video_fps, item.video_window) == (clip, 3.0, (1.5, 7.25))


def test_mvbench_missing_clip_unknown_task_or_escaping_path_fails_naming_it(tmp_path):
    write(tmp_path / "video/clevrer/video_validation/abc.mp4")  # another task's folder does not count
    write(tmp_path / "json/action_sequence.json", json.dumps([mvbench_record()]))
    missing = r"action_sequence.json: question 0: video 'abc.mp4': a video file is missing at '.*star"
    with pytest.raises(BenchmarkFormatError, match=missing):
        load("mvbench", tmp_path)
    write(tmp_path / "json/action_sequence.json", json.dumps([mvbench_record(video="../../../etc/passwd")]))
    with pytest.raises(BenchmarkFormatError, match=r"question 0: media path '../../../etc/passwd' must be relative"):
        load("mvbench", tmp_path)
    (tmp_path / "json/action_sequence.json").unlink()
    write(tmp_path / "json/my_task.json", json.dumps([mvbench_record()]))
    with pytest.raises(BenchmarkFormatError, match=r"my_task.json: not an MVBench task; the tasks are \['action_"):
        load("mvbench", tmp_path)


def test_mvbench_answer_not_among_the_candidates_fails(tmp_path):
    write(tmp_path / "video/star/Charades_v1_480/abc.mp4")
    write(tmp_path / "json/action_sequence.json", json.dumps([mvbench_record(answer="danced")]))
    with pytest.raises(BenchmarkFormatError, match=r"question 0: answer 'danced' is neither a letter"):
        load("mvbench", tmp_path)


# VSI-Bench


VSI_ROWS = [
    {"id": 1, "dataset": "scannet", "scene_name": "scene0011_00", "question_type": "object_rel_direction_easy",
     "question": "If I stand by the fridge facing the table, is the sink to my left or right?",
     "options": ["A. left", "B. right"], "ground_truth": "B"},
    {"id": 2, "dataset": "arkitscenes", "scene_name": "41069025", "question_type": "object_counting",
     "question": "How many chairs are in this room?", "options": None, "ground_truth": "4"},
]  # fmt: skip


@pytest.mark.parametrize("file", ["test-00000-of-00001.parquet", "test.jsonl"])
def test_vsibench_choice_questions_strip_letters_and_numerical_ones_use_mra(file, tmp_path):
    write(tmp_path / "scannet/scene0011_00.mp4")
    write(tmp_path / "arkitscenes/41069025.mp4")
    if file.endswith(".parquet"):
        pd.DataFrame(VSI_ROWS).to_parquet(tmp_path / file)
    else:
        write(tmp_path / file, jsonl(VSI_ROWS))
    choice, count = load("vsibench", tmp_path, questions=file)
    assert (choice.options, choice.answer, choice.metric) == (["left", "right"], "B", "choice")
    assert (choice.category, choice.video) == ("object_rel_direction_easy", tmp_path / "scannet/scene0011_00.mp4")
    assert (count.question, count.options, count.answer, count.metric) == (
        "How many chairs are in this room?",
        None,
        "4",
        "mra",
    )


def test_vsibench_missing_video_and_non_numeric_truth_fail_naming_the_row(tmp_path):
    pd.DataFrame(VSI_ROWS).to_parquet(tmp_path / "test-00000-of-00001.parquet")
    with pytest.raises(BenchmarkFormatError, match=r"row 1 \(id 1\): media file '.*scannet/scene0011_00.mp4' does not"):
        load("vsibench", tmp_path)
    write(tmp_path / "scannet/scene0011_00.mp4")
    write(tmp_path / "arkitscenes/41069025.mp4")
    pd.DataFrame([VSI_ROWS[1] | {"ground_truth": "many"}]).to_parquet(tmp_path / "test-00000-of-00001.parquet")
    with pytest.raises(BenchmarkFormatError, match=r"row 1 \(id 2\): numerical ground_truth 'many' is not a number"):
        load("vsibench", tmp_path)


# our own JSONL


def test_jsonl_reads_options_media_and_accepted_answers_relative_to_its_folder(tmp_path):
    write(tmp_path / "sets/img/a.png", jpeg_bytes())
    write(tmp_path / "sets/img/b.png", jpeg_bytes())
    write(tmp_path / "sets/clip.mp4")
    write(tmp_path / "sets/mine.jsonl", jsonl([
        {"id": "q1", "question": "Which shape?", "options": ["circle", "square"], "answer": "square",
         "image": "img/a.png"},
        {"id": "q2", "question": "What is written?", "answer": "exit", "answers": ["exit", "EXIT 12"], "metric": "anls",
         "images": ["img/a.png", "img/b.png"], "category": "text"},
        {"id": "q3", "question": "When does it stop?", "answer": "17", "video": "clip.mp4", "extra": "ignored"},
    ]))  # fmt: skip
    shape, text, clip = load("jsonl", tmp_path, file="sets/mine.jsonl")
    assert (shape.options, shape.answer, shape.metric, shape.images) == (
        ["circle", "square"],
        "B",
        "choice",
        [tmp_path / "sets/img/a.png"],
    )
    assert (text.metric, text.answers, text.category, len(text.images)) == ("anls", ["exit", "EXIT 12"], "text", 2)
    assert (clip.metric, clip.video, clip.images) == ("exact", tmp_path / "sets/clip.mp4", [])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"benchmark.jsonl: line 1: not JSON"),
        (json.dumps({"id": "q", "question": "?"}), r"line 1: missing key\(s\) \['answer'\]"),
        (
            json.dumps({"id": "q", "question": "?", "answer": "x", "image": "gone.png"}),
            r"line 1: media file .*gone.png",
        ),
        (json.dumps({"id": "q", "question": "?", "answer": "x"}), r"line 1: item q: no image and no video"),
        (
            json.dumps({"id": "q", "question": "?", "answer": "x", "image": "a.png", "metric": "bleu"}),
            r"metric must be",
        ),
    ],
)
def test_jsonl_malformed_records_fail_naming_the_line(line, message, tmp_path):
    write(tmp_path / "a.png", jpeg_bytes())
    write(tmp_path / "benchmark.jsonl", line + "\n")
    with pytest.raises(BenchmarkFormatError, match=message):
        load("jsonl", tmp_path)


def test_a_repeated_question_id_fails_naming_it(tmp_path):
    write(tmp_path / "a.png", jpeg_bytes())
    record = {"id": "q1", "question": "?", "answer": "x", "image": "a.png"}
    write(tmp_path / "benchmark.jsonl", jsonl([record, record]))
    with pytest.raises(BenchmarkFormatError, match=r"benchmark.jsonl: question id 'q1' appears more than once"):
        load("jsonl", tmp_path)


# Export: each adapter writes items in its published layout, and reads them back


def adapter_of(name: str):
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))
    return build_adapter(cfg["adapter"], cfg["params"], f"eval.benchmark[{name}]")


def item_pool(folder: Path) -> list[BenchmarkItem]:
    """One item of each shape the layouts differ on: choice and open questions, images as files and as bytes,
    counts, several accepted answers, videos as files and as frame folders, windows, numerical answers."""
    image = write(folder / "in/photo.jpg", jpeg_bytes((10, 200, 10)))
    clip = write(folder / "in/clip.mp4", b"\x00\x00\x00\x18ftypmp42 not decoded by load")
    frames = folder / "in/frames"
    for i in range(2):
        write(frames / f"{i:05d}.jpg", jpeg_bytes((i * 90, 0, 0)))
    return [
        BenchmarkItem("c1", "What colour is the cup?", "B", "choice", [image], options=["red", "green", "blue"],
                      category="attributes"),
        BenchmarkItem("c2", "Which shape is it?", "E", "choice", [jpeg_bytes()], options=list("vwxyz"),
                      category="Perception/Shapes"),
        BenchmarkItem("o1", "What does the sign say?", "exit 12", "exact", [image], category="easy"),
        BenchmarkItem("n1", "How many dots?", "3", "exact", [jpeg_bytes()], category="complex"),
        BenchmarkItem("a1", "What share works from home?", "12%", "anls", [image], answers=["12 percent", "12%"],
                      category="Single span"),
        BenchmarkItem("v1", "Where does it move?", "A", "choice", video=clip, options=["left", "right"],
                      category="moving_direction", video_window=(0.5, 2.0)),
        BenchmarkItem("v2", "What happens next?", "B", "choice", video=frames, video_fps=3.0,
                      options=["it stops", "it turns"], category="episodic_reasoning"),
        BenchmarkItem("m1", "How far apart are the chairs (m)?", "2.5", "mra", video=clip, category="abs_distance"),
        BenchmarkItem("v3", "Which way does it turn?", "B", "choice", video=clip, options=["left", "right"],
                      category="route_plan"),
    ]  # fmt: skip


def comparable(item: BenchmarkItem) -> dict:
    """An item with its media as their bytes (a frame folder: each frame's), so that copies compare equal."""
    video = item.video and Path(item.video)
    frames = video and (
        sorted((p.name, p.read_bytes()) for p in video.iterdir()) if video.is_dir() else video.read_bytes()
    )
    fields = {k: v for k, v in vars(item).items() if k not in ("images", "video")}
    return {**fields, "images": [media_bytes(m) for m in item.images], "video": frames}


HOLDS = {  # benchmark -> the pool items its layout holds
    "hrbench_4k": ["c1"], "hrbench_8k": ["c1"], "infovqa": ["a1"], "jsonl": ["c1", "c2", "o1", "n1", "a1", "m1", "v3"],
    "mme_realworld": ["c1", "c2"], "mme_realworld_lite": ["c1", "c2"], "mvbench": ["v1", "v2", "v3"],
    "tallyqa": ["n1"], "visualprobe": ["o1", "n1"], "vsibench": ["m1", "v3"], "vstar": ["c1", "c2"],
}  # fmt: skip


@pytest.mark.parametrize("name", YAMLS)
def test_export_writes_the_items_a_layout_holds_and_load_reads_them_back(name, tmp_path):
    pool = item_pool(tmp_path)
    exported = adapter_of(name).export(pool, tmp_path / "out")
    loaded = load(name, tmp_path / "out")
    assert [comparable(i) for i in loaded] == [comparable(i) for i in exported]
    originals = {i.question: i for i in pool}
    assert sorted(originals[i.question].id for i in exported) == sorted(HOLDS[name])
    for item in exported:  # what a layout keeps of an item: its question, answer and media
        original = originals[item.question]
        assert (item.answer, item.options, item.metric) == (original.answer, original.options, original.metric)
        assert comparable(item)["images"] == comparable(original)["images"]


def test_export_spells_fields_the_way_the_layout_does(tmp_path):
    exported = {i.question: i for i in adapter_of("visualprobe").export(item_pool(tmp_path), tmp_path / "vp")}
    assert exported["What does the sign say?"].id == "easy/o1"  # the level its category names
    assert exported["How many dots?"].category == "easy"  # a category that is no level: the first level
    tally = adapter_of("tallyqa").export(item_pool(tmp_path), tmp_path / "tally")
    assert [(i.id, i.category) for i in tally] == [("n1", "complex")]
    videos = adapter_of("mvbench").export(item_pool(tmp_path), tmp_path / "mv")
    # categories that are MVBench tasks keep them; route_plan is none: the first task of video files
    assert [(i.id, i.video_fps) for i in videos] == [
        ("action_sequence/0", None), ("episodic_reasoning/0", 3.0), ("moving_direction/0", None)
    ]  # fmt: skip
    (infovqa,) = adapter_of("infovqa").export(item_pool(tmp_path), tmp_path / "info")
    assert infovqa.answers == ["12%", "12 percent"]  # the answer shown first
