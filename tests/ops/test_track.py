import sys

import numpy as np
import pytest

from pixelis_verl.data.synth.moving_object import generate_moving_object_video, write_video
from pixelis_verl.ops.track import (
    DEFAULT_BACKEND,
    TRACK_BACKENDS,
    TrackResult,
    direction_word,
    make_tracker_backend,
    track_object,
)
from pixelis_verl.ops.video import Frame, VideoReader


def _iou(a, b) -> float:
    if b is None:
        return 0.0
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _frames(images, fps: float = 10.0, start: int = 0) -> list[Frame]:
    return [Frame(start + i, (start + i) / fps, image) for i, image in enumerate(images)]


def _assert_follows(truth, result: TrackResult) -> None:
    ious = np.array([_iou(t, b) for t, b in zip(truth, result.boxes, strict=True)])
    assert ious.mean() >= 0.5, ious.round(2)
    assert (ious >= 0.5).mean() >= 0.8, ious.round(2)


@pytest.mark.parametrize("backend", [None, "kcf", "csrt"])
@pytest.mark.parametrize("index", [0, 1, 2])  # index 1 changes colour halfway
def test_tracker_follows_a_moving_object(backend, index):
    video = generate_moving_object_video(0, index, num_frames=30)
    result = track_object(_frames(video.frames), video.boxes[0], backend=backend)
    assert len(result.boxes) == 30 and result.start_frame == 0
    _assert_follows(video.boxes, result)
    assert result.direction == video.direction


def test_tracker_follows_an_object_through_a_decoded_mp4(tmp_path):
    video = generate_moving_object_video(3, 0, num_frames=30)
    path = write_video(video.frames, tmp_path / "clip.mp4", video.fps)
    with VideoReader(path) as reader:
        result = track_object(reader.iter_frames(10, 29), video.boxes[10])
    assert result.start_frame == 10
    _assert_follows(video.boxes[10:], result)


def test_kcf_follows_motion_from_the_very_first_frame():
    """OpenCV's KCF skips detection on its first update; the backend warms it up so no lag is left behind."""
    rng = np.random.default_rng(0)
    background = np.full((120, 160, 3), 225, dtype=np.uint8)
    texture = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
    images, truth = [], []
    for k in range(8):
        x, y = 40 + 3 * k, 30 + 2 * k
        image = background.copy()
        image[y : y + 24, x : x + 24] = texture
        images.append(image)
        truth.append((x, y, x + 24, y + 24))
    result = track_object(_frames(images), truth[0], backend="kcf")
    assert all(np.abs(np.subtract(b, t)).max() <= 1 for b, t in zip(result.boxes, truth, strict=True)), result.boxes


@pytest.mark.parametrize("backend", ["kcf", "csrt"])
def test_target_is_lost_when_it_disappears_and_found_again_when_it_returns(backend):
    video = generate_moving_object_video(0, 2, num_frames=30)
    hidden = range(12, 18)
    images = [frame.copy() for frame in video.frames]
    for k in hidden:  # paint the empty scene over the target
        x1, y1, x2, y2 = video.boxes[k]
        images[k][y1:y2, x1:x2] = video.background[y1:y2, x1:x2]
    result = track_object(_frames(images), video.boxes[0], backend=backend)
    assert set(hidden) <= set(result.lost_frames) and len(result.lost_frames) <= len(hidden) + 2
    assert result.reacquired_frames and result.reacquired_frames[0] in (18, 19)
    assert all(result.boxes[k] is None for k in hidden)
    assert np.mean([_iou(t, b) for t, b in zip(video.boxes[20:], result.boxes[20:], strict=True)]) >= 0.5
    assert "lost at 12-17" in result.summary()


def test_displacement_and_direction_follow_the_motion():
    for index in range(4):
        video = generate_moving_object_video(5, index, num_frames=30)
        result = track_object(_frames(video.frames), video.boxes[0])
        (fx1, fy1, _, _), (lx1, ly1, _, _) = video.boxes[0], video.boxes[-1]
        dx, dy = result.displacement
        assert np.sign(round(dx / 4)) == np.sign(round((lx1 - fx1) / 4))
        assert np.sign(round(dy / 4)) == np.sign(round((ly1 - fy1) / 4))
        assert result.direction == video.direction


@pytest.mark.parametrize(
    ("dx", "dy", "word"),
    [
        (30, 0, "right"),
        (0, -30, "up"),
        (-30, -30, "up-left"),
        (-30, 2, "left"),
        (20, 25, "down-right"),
        (0, 30, "down"),
        (3, -2, "stationary"),
    ],
)
def test_direction_word_reads_image_coordinates(dx, dy, word):
    assert direction_word(dx, dy, box_size=20) == word


def test_summary_is_one_short_line():
    result = TrackResult(
        start_frame=100,
        boxes=[(0, 0, 10, 10), None, None, (40, 5, 50, 15)] + [None, (60, 5, 70, 15)] * 20,
        lost_frames=[101, 102] + list(range(104, 144, 2)),
        reacquired_frames=[103] + list(range(105, 145, 2)),
        displacement=(65.0, 5.0),
        direction="right",
    )
    line = result.summary()
    assert "\n" not in line and len(line) < 200
    assert line.startswith("tracked frames 100-143: right by (+65, +5) px")
    assert "lost at 101-102, 104, 106, ..." in line


def test_unknown_backends_and_options_are_refused_by_name():
    with pytest.raises(ValueError, match="'nope'.*known"):
        make_tracker_backend("nope")
    with pytest.raises(ValueError, match="speed"):
        make_tracker_backend("kcf", speed=3)
    with pytest.raises(ValueError, match="'nope'"):
        track_object(_frames([np.zeros((20, 20, 3), np.uint8)]), (0, 0, 5, 5), backend="nope")
    assert DEFAULT_BACKEND in TRACK_BACKENDS and {"kcf", "csrt", "sam2"} <= set(TRACK_BACKENDS)


def test_bad_inputs_are_refused():
    image = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(ValueError, match="does not overlap the 30x20"):
        track_object(_frames([image, image]), (40, 0, 50, 10))
    with pytest.raises(ValueError, match="no frames"):
        track_object([], (0, 0, 5, 5))
    with pytest.raises(ValueError, match="consecutive; frame 5 after 0"):
        track_object([Frame(0, 0.0, image), Frame(5, 0.5, image)], (0, 0, 5, 5))


def test_sam2_needs_a_checkpoint_and_model_config():
    with pytest.raises(ValueError, match="checkpoint"):
        make_tracker_backend("sam2")


def test_sam2_refuses_a_missing_checkpoint_without_downloading(tmp_path):
    missing = tmp_path / "sam2.1_hiera_small.pt"
    with pytest.raises(FileNotFoundError, match="sam2.1_hiera_small.pt does not exist"):
        make_tracker_backend("sam2", checkpoint=str(missing), model_cfg="configs/sam2.1/sam2.1_hiera_s.yaml")


def test_sam2_refuses_when_the_package_is_missing(tmp_path, monkeypatch):
    checkpoint = tmp_path / "sam2.pt"
    checkpoint.write_bytes(b"weights")
    monkeypatch.setitem(sys.modules, "sam2", None)  # import sam2 now fails as if not installed
    monkeypatch.setitem(sys.modules, "sam2.build_sam", None)
    with pytest.raises(ImportError, match="sam2 package is not installed"):
        make_tracker_backend("sam2", checkpoint=str(checkpoint), model_cfg="configs/sam2.1/sam2.1_hiera_s.yaml")
