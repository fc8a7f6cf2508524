"""Per-call latency of the six pixel tools on one CPU core: a 12-megapixel image and a 300-frame 720p video.

Every tool runs through its verl adapter (`execute` awaited on one event loop, as verl's agent loop calls
it: argument parsing, coordinate mapping, the op, result images, the step record), loaded from
conf/tools/pixel_tools.yaml.
The image source is decoded once (first call) and then served from the decoded-source cache, as it is
for the n trajectories of a GRPO group; the decode is reported on its own. The peer for zoom_in is what
DeepEyes does: a PIL crop of the image the model saw, resized to the same output size.

Targets (issue 3): zoom_in <= 5 ms median; read_text on a 1-megapixel region <= 300 ms (measured on a region
with 3 lines of text and on a dense one with 12: recognition costs per line); segment_object_at
<= 150 ms; tracking >= 60 frames/s at 720p.

Usage: python benchmarks/tools.py [--repeats 20]
Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from verl.experimental.agent_loop.tool_agent_loop import AgentData

from pixelis_verl.data.rl_rows import png_bytes
from pixelis_verl.data.synth.moving_object import generate_moving_object_video, write_video
from pixelis_verl.data.synth.scenes import generate_scene
from pixelis_verl.data.synth.zoom_tasks import WORDS
from pixelis_verl.ops.sizes import fit_size
from pixelis_verl.ops.track import track_object
from pixelis_verl.ops.video import VideoReader
from pixelis_verl.tools.session import load_tools
from pixelis_verl.tools.state import release_trajectory

REPO = Path(__file__).resolve().parent.parent
IMAGE_SIZE = (4000, 3000)  # 12 megapixels
SHOWN_MAX_PIXELS = 1280 * 28 * 28  # Qwen2.5-VL's default max_pixels: the image the model sees
# Two 1155 x 866 (1.0 megapixel) regions, source pixels: a few lines (a sign, a label) and a dense page.
TEXT_REGIONS = {"3_lines": ((200, 200, 1355, 1066), 3), "12_lines": ((2000, 1800, 3155, 2666), 12)}
VIDEO_SIZE, VIDEO_FRAMES, VIDEO_FPS = (1280, 720), 300, 30.0


def text_image() -> Image.Image:
    """A 12 MP scene with printed text lines in each of TEXT_REGIONS."""
    image = generate_scene(0, 0, size=IMAGE_SIZE).image
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=36)
    rng = np.random.default_rng(0)
    for region, lines in TEXT_REGIONS.values():
        draw.rectangle(region, fill=(250, 250, 245))
        for row in range(lines):
            line = " ".join(str(w) for w in rng.choice(WORDS, size=6)) + f" {row * 37 + 11}"
            draw.text((region[0] + 30, region[1] + 30 + row * 70), line, font=font, fill=(20, 20, 20))
    return image


def timed(call, repeats: int) -> list[float]:
    """Milliseconds of each of `repeats` calls of `call(i)`."""
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"median": round(statistics.median(ordered), 2), "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2)}


# One event loop for every call, as in an agent-loop worker; asyncio.run would build and tear down a loop and
# its thread pool per call, which verl never does.
LOOP = asyncio.new_event_loop()


def execute(tool, params: dict, agent_data: AgentData):
    response, _, metrics = LOOP.run_until_complete(tool.execute("bench", params, agent_data=agent_data))
    if not metrics["ok"]:
        raise SystemExit(f"{tool.name}({params}) failed: {response.text}")
    return response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="calls per tool (zoom_in: 5x as many)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core; the OCR backend also runs 1 thread
    cv2.setNumThreads(1)
    rng = np.random.default_rng(1)
    result: dict[str, object] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, pinned to 1",
        "date": time.strftime("%Y-%m-%d"),
    }
    with tempfile.TemporaryDirectory() as root:
        tools = load_tools(REPO / "conf" / "tools" / "pixel_tools.yaml", root)

        # --- image tools on a 12 MP source ---
        source = text_image()
        scene = generate_scene(0, 0, size=IMAGE_SIZE)
        shown = source.resize(fit_size(*IMAGE_SIZE, min_pixels=3136, max_pixels=SHOWN_MAX_PIXELS, factor=28))
        scale = shown.width / IMAGE_SIZE[0]
        tools_kwargs = {"pixelis": {"source_images": [{"bytes": png_bytes(source)}]}}
        image_row = AgentData([], [shown], None, None, None, {}, "bench-image", tools_kwargs)
        start = time.perf_counter()
        execute(tools["zoom_in"], {"bbox_2d": [0, 0, 10, 10]}, image_row)  # decodes the source once
        result["source_decode_ms"] = round((time.perf_counter() - start) * 1000.0, 1)

        boxes = []
        for _ in range(5 * args.repeats):
            w, h = rng.uniform(0.05, 0.5, size=2) * shown.size
            x, y = rng.uniform(0, 1, size=2) * (shown.width - w, shown.height - h)
            boxes.append([round(x), round(y), round(x + w), round(y + h)])
        zoom = stats(timed(lambda i: execute(tools["zoom_in"], {"bbox_2d": boxes[i]}, image_row), len(boxes)))

        def pil_crop(i: int) -> None:  # DeepEyes: crop the image the model saw, resize for the encoder
            crop = shown.crop(boxes[i])
            crop.resize(fit_size(*crop.size, min_pixels=50176, max_pixels=200704, factor=28), Image.Resampling.BICUBIC)

        peer = stats(timed(pil_crop, len(boxes)))
        result.update({f"zoom_in_ms_{k}": v for k, v in zoom.items()})
        result.update({f"pil_crop_ms_{k}": v for k, v in peer.items()})
        result["zoom_in_vs_pil_ratio"] = round(zoom["median"] / peer["median"], 2)

        points = [[round(o.centroid[0] * scale), round(o.centroid[1] * scale)] for o in scene.objects]
        segment = timed(
            lambda i: execute(tools["segment_object_at"], {"point_2d": points[i % len(points)]}, image_row),
            args.repeats,
        )
        masks = sorted(tools["segment_object_at"].state(image_row).masks)
        properties = timed(
            lambda i: execute(tools["get_properties"], {"mask_id": masks[i % len(masks)]}, image_row), args.repeats
        )
        timings = {"segment_object_at": segment, "get_properties": properties}
        for name, (region, _) in TEXT_REGIONS.items():
            box = [round(v * scale) for v in region]

            def read(i: int, box: list[int] = box) -> None:
                execute(tools["read_text"], {"bbox_2d": box}, image_row)

            timings[f"read_text_1mp_{name}"] = timed(read, max(3, args.repeats // 2))
        release_trajectory("bench-image")
        for name, times in timings.items():
            result.update({f"{name}_ms_{k}": v for k, v in stats(times).items()})

        # --- video tools on a 300-frame 720p video ---
        video = generate_moving_object_video(0, 0, size=VIDEO_SIZE, num_frames=VIDEO_FRAMES, fps=VIDEO_FPS)
        (Path(root) / "videos").mkdir()
        write_video(video.frames, Path(root) / "videos" / "bench.mp4", VIDEO_FPS)
        first = Image.fromarray(video.frames[0])
        first = first.resize(fit_size(*VIDEO_SIZE, min_pixels=3136, max_pixels=SHOWN_MAX_PIXELS, factor=28))
        video_kwargs = {"pixelis": {"video": {"path": "videos/bench.mp4", "question_frames": [0]}}}
        video_row = AgentData([], [first], None, None, None, {}, "bench-video", video_kwargs)
        windows = [sorted(rng.choice(VIDEO_FRAMES, size=2, replace=False).tolist()) for _ in range(args.repeats)]
        frames = timed(
            lambda i: execute(
                tools["select_frames"],
                {"start_frame": windows[i][0], "end_frame": windows[i][1], "num_frames": 8},
                video_row,
            ),
            args.repeats,
        )
        result.update({f"select_frames_8_ms_{k}": v for k, v in stats(frames).items()})
        box = [round(v * first.width / VIDEO_SIZE[0]) for v in video.boxes[0]]
        track_ms = timed(
            lambda i: execute(tools["track_object"], {"bbox_2d": box, "end_frame": VIDEO_FRAMES - 1}, video_row), 3
        )
        result["track_object_300_frames_ms_median"] = round(statistics.median(track_ms), 1)
        result["track_fps_with_decode"] = round(VIDEO_FRAMES / (statistics.median(track_ms) / 1000.0), 1)
        with VideoReader(Path(root) / "videos" / "bench.mp4") as reader:
            decoded = list(reader.iter_frames(0, VIDEO_FRAMES - 1))
        op_ms = timed(lambda i: track_object(decoded, tuple(video.boxes[0])), 3)
        result["track_fps_without_decode"] = round(VIDEO_FRAMES / (statistics.median(op_ms) / 1000.0), 1)
        release_trajectory("bench-video")

    for key, value in result.items():
        print(f"{key:>34}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
