"""The trajectory viewer: hand-built records of an image row and a video row, replayed with the real tools,
rendered to one HTML page, then opened in headless Chromium (the page's script must run and show everything)."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from pixelis_verl.data.rl_rows import png_bytes
from pixelis_verl.data.synth.moving_object import generate_moving_object_video, write_video
from pixelis_verl.eval.replay import pair_calls
from pixelis_verl.eval.viewer import main, write_viewer
from pixelis_verl.rewards.trajectory_log import media_record

TOOL_CONFIG = Path(__file__).resolve().parents[2] / "conf" / "tools" / "pixel_tools.yaml"
SHOWN_MAX_PIXELS = 448 * 448  # the 896x672 image is shown at 504x364, the 320x240 video frame at 308x252
# Images each executed call shows: what it returned plus where it acted, drawn on the source (read_text: OCR
# boxes; track_object: its path on the first key frame; select_frames acts on no image).
IMAGES_PER_CALL = {
    "zoom_in": 1 + 1,
    "segment_object_at": 1 + 1,
    "read_text": 0 + 1,
    "select_frames": 4,
    "track_object": 3 + 1,
}
BAD_BOX = [300, 10, 100, 5]


def call(name: str | None, arguments, well_formed: bool = True) -> dict:
    return {"name": name, "arguments": arguments, "well_formed": well_formed}


def step(tool: str, args: dict, ok: bool = True, error: str | None = None) -> dict:
    """A step record as the run logged it (the viewer replays the call for what it returned)."""
    return {"tool": tool, "args": args, "ok": ok, "error": error, "error_kind": None if ok else "argument",
            "latency_ms": 12.0, "image_index": 0 if ok else None}  # fmt: skip


def record(question: str, media: dict, turns: list, steps: list, pred: str, truth: str, acc: float, **item) -> dict:
    calls = [c for _, cs in turns for c in cs]
    return {
        "data_source": "test/viewer",
        "item": {"question": question, "answer": truth, "index": item.pop("index", 0), **item},
        "ground_truth": truth,
        "pred": pred,
        "info": {
            "accuracy": acc,
            "acc": acc,
            "validity": 0.5,
            "tool_calls": float(len(calls)),
            "malformed_calls": float(sum(not c["well_formed"] for c in calls)),
        },
        "turns": [{"thought": thought, "calls": cs} for thought, cs in turns],
        "steps": steps,
        "response_tokens": 120,
        "seconds": 3.5,
        "media": media,
        "time": float(item.get("id", 0)),
    }


def scene() -> Image.Image:
    """896x672: a red disc, a blue block and a large line of text, all well apart."""
    image = Image.new("RGB", (896, 672), (235, 235, 228))
    draw = ImageDraw.Draw(image)
    draw.ellipse([120, 120, 280, 280], fill=(220, 30, 30))
    draw.rectangle([500, 80, 760, 260], fill=(30, 60, 200))
    draw.text((80, 440), "PIXELIS 42", font=ImageFont.load_default(size=72), fill=(0, 0, 0))
    return image


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """Records of an image row (tools arm), a video row (tools arm) and a tool-free row, with their media."""
    root = tmp_path_factory.mktemp("viewer")
    trajectories, data_root = root / "trajectories", root / "data"
    extra = {"tools_kwargs": {"pixelis": {"source_images": [{"bytes": png_bytes(scene())}], "video": None}},
             "shown_max_pixels": SHOWN_MAX_PIXELS}  # fmt: skip
    image_media = media_record(extra, trajectories)  # the source stored under trajectories/media/, as runs do
    zoom, segment, read = {"bbox_2d": [250, 30, 450, 170]}, {"point_2d": [112, 112]}, {"bbox_2d": [20, 220, 480, 320]}
    bad = "zoom_in: bbox_2d must be [x1, y1, x2, y2] with x1 < x2 and y1 < y2; got [300, 10, 100, 5]"
    image_row = record(
        "What does the sign say?",
        image_media,
        [("Zoom into the block, segment the disc.", [call("zoom_in", zoom), call("segment_object_at", segment)]),
         ("Now the text, and one more zoom.", [call("read_text", read), call("zoom_in", {"bbox_2d": BAD_BOX}),
                                               call(None, None, well_formed=False)]),
         ("The sign reads PIXELIS 42.", [])],
        [step("zoom_in", zoom), step("segment_object_at", segment), step("read_text", read),
         step("zoom_in", {"bbox_2d": BAD_BOX}, ok=False, error=bad)],
        pred="PIXELIS 42", truth="PIXELIS 42", acc=1.0, id=1, arm="tools", category="text",
        options=["PIXELIS 42", "PIXELS 24"],
    )  # fmt: skip

    clip = generate_moving_object_video(seed=0, index=0, size=(320, 240), num_frames=30, fps=10)
    (data_root / "videos").mkdir(parents=True)
    write_video(clip.frames, data_root / "videos" / "clip.mp4", clip.fps)
    video = {"path": "videos/clip.mp4", "question_frames": [0], "fps": None}
    shown_box = [round(v * s, 1) for v, s in zip(clip.boxes[0], (308 / 320, 252 / 240) * 2, strict=True)]
    frames, track = {"num_frames": 4}, {"bbox_2d": shown_box, "image_index": 0}
    video_row = record(
        f"Which way does the {clip.colour} {clip.shape} move?",
        {"source_images": [], "video": video, "shown_max_pixels": SHOWN_MAX_PIXELS},
        [("Look at frames first.", [call("select_frames", frames)]), ("Track it.", [call("track_object", track)])],
        [step("select_frames", frames), step("track_object", track)],
        pred="left", truth=clip.direction, acc=0.0, id=2, arm="tools", category="motion",
    )  # fmt: skip
    control = record("What does the sign say?", image_media, [("It is too small to read.", [])], [],
                     pred="unknown", truth="PIXELIS 42", acc=0.0, id=3, arm="no_tools", category="text")  # fmt: skip
    records = [image_row, video_row, control]
    trajectories.mkdir(parents=True, exist_ok=True)
    (trajectories / "host-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return {"root": root, "trajectories": trajectories, "data_root": data_root, "records": records}


class Page(HTMLParser):
    """Sections, and per tool call its tool, status and <img> count."""

    def __init__(self, text: str):
        super().__init__()
        self.sections, self.calls, self._depth, self._call_depth = [], [], 0, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section" and attrs.get("class") == "trajectory":
            self.sections.append(attrs)
        if tag == "div":
            self._depth += 1
            if "call" in (attrs.get("class") or "").split():
                self.calls.append({"tool": attrs["data-tool"], "status": attrs["data-status"], "images": 0})
                self._call_depth = self._depth
        if tag == "img" and self._call_depth is not None:
            self.calls[-1]["images"] += 1

    def handle_endtag(self, tag):
        if tag == "div":
            if self._depth == self._call_depth:
                self._call_depth = None
            self._depth -= 1


@pytest.fixture(scope="module")
def page(run) -> Path:
    return write_viewer(
        run["records"],
        run["root"] / "viewer.html",
        tool_config=TOOL_CONFIG,
        data_root=run["data_root"],
        trajectories_dir=run["trajectories"],
        title="viewer test",
    )


def test_page_has_one_section_per_trajectory_with_filter_flags(page, run):
    sections = Page(page.read_text()).sections
    assert len(sections) == len(run["records"])
    assert [(s["data-correct"], s["data-used-tool"], s["data-tool-error"], s["data-arm"]) for s in sections] == [
        ("true", "true", "true", "tools"),
        ("false", "true", "false", "tools"),
        ("false", "false", "false", "no_tools"),
    ]
    text = page.read_text()
    for label in (
        "correct (1)",
        "wrong (2)",
        "used a tool (2)",
        "tool error (1)",
        "arm: no_tools (1)",
        "arm: tools (2)",
    ):
        assert label in text


def test_every_executed_call_shows_its_replayed_images_and_overlays(page):
    calls = Page(page.read_text()).calls
    assert [(c["tool"], c["status"]) for c in calls] == [
        ("zoom_in", "ok"), ("segment_object_at", "ok"), ("read_text", "ok"), ("zoom_in", "error"),
        ("None", "malformed"), ("select_frames", "ok"), ("track_object", "ok"),
    ]  # fmt: skip
    for c in calls:
        assert c["images"] == (IMAGES_PER_CALL[c["tool"]] if c["status"] == "ok" else 0), c


def test_page_shows_question_images_at_the_models_size_and_the_tools_text(page):
    text = page.read_text()
    assert "image 0 as shown, 504x364" in text and "image 0 as shown, 308x252" in text
    assert "&quot;PIXELIS 42&quot; at [" in text  # read_text's answer, replayed with the OCR engine
    assert "x1 &lt; x2" in text  # the failing call's error
    assert "frame 0 · 0.00 s" in text  # select_frames captions its frames with their times
    assert text.count('class="problem"') == 0  # every replay matched the run


def test_a_call_whose_replay_cannot_run_is_shown_with_the_reason(run, tmp_path):
    broken = json.loads(json.dumps(run["records"][0]))
    broken["media"]["source_images"] = [{"stored": "media/missing.img"}]
    out = write_viewer([broken], tmp_path / "v.html", tool_config=TOOL_CONFIG, data_root=run["data_root"],
                       trajectories_dir=run["trajectories"], title="broken")  # fmt: skip
    text = out.read_text()
    assert len(Page(text).sections) == 1
    assert "could not be loaded" in text and text.count("not replayed:") == 4


def test_calls_pair_with_steps_by_tool_and_arguments_within_their_turn():
    a, b = {"bbox_2d": [0, 0, 5, 5]}, {"point_2d": [1, 1]}
    record = {
        "turns": [{"thought": "", "calls": [call("zoom_in", a), call("segment_object_at", b), call("nope", {})]},
                  {"thought": "", "calls": [call("zoom_in", b)]}],
        "steps": [step("segment_object_at", b), step("zoom_in", a), step("get_properties", {})],
    }  # fmt: skip
    turns = pair_calls(record)
    assert [[c.step is not None for c in t.calls] for t in turns] == [[True, True, False], [False], [True]]
    assert turns[0].calls[0].step["tool"] == "zoom_in" and turns[-1].calls[0].name == "get_properties"


def test_cli_writes_the_run_dirs_viewer_and_refuses_a_run_without_trajectories(run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(run["trajectories"], run_dir / "trajectories")
    (run_dir / "config.yaml").write_text(
        f"actor_rollout_ref:\n  rollout:\n    multi_turn:\n      tool_config_path: {TOOL_CONFIG}\n"
        f"pixelis:\n  data_root: {run['data_root']}\n"
    )
    assert main([str(run_dir), "--max", "1"]) == 0
    assert len(Page((run_dir / "viewer.html").read_text()).sections) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main([str(empty)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def _chromium(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed: `make install` installs it (Debian package chromium)")
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", *args],
                          capture_output=True, text=True, timeout=180, check=True)  # fmt: skip


def test_page_renders_in_headless_chromium(page, run, tmp_path):
    screenshot = tmp_path / "page.png"
    profile = f"--user-data-dir={tmp_path / 'profile'}"
    _chromium(profile, f"--screenshot={screenshot}", "--window-size=1280,2000", page.as_uri())
    pixels = np.asarray(Image.open(screenshot).convert("L"), dtype=np.float32)
    assert pixels.std() > 20  # text, badges and images, not a blank page
    dom = _chromium(profile, "--dump-dom", page.as_uri()).stdout
    assert len(Page(dom).sections) == len(run["records"])
    assert "showing 3 of 3" in dom  # the filter script ran
