import numpy as np
import pytest

from pixelis_verl.data.synth.moving_object import generate_moving_object_video, write_video
from pixelis_verl.data.synth.zoom_tasks import COLOURS, SHAPES
from pixelis_verl.ops.track import direction_word
from pixelis_verl.ops.video import VideoReader


def _centre_colour(frame: np.ndarray, box) -> np.ndarray:
    """Mean colour of the 3x3 pixels at the box centre, inside every shape."""
    cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    return frame[cy - 1 : cy + 2, cx - 1 : cx + 2].reshape(-1, 3).mean(axis=0)


def test_videos_are_deterministic_per_seed_and_index():
    a, b = generate_moving_object_video(7, 3), generate_moving_object_video(7, 3)
    assert a.boxes == b.boxes and (a.colour, a.shape, a.event_frame) == (b.colour, b.shape, b.event_frame)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))
    assert generate_moving_object_video(7, 4).boxes != a.boxes
    assert generate_moving_object_video(8, 3).boxes != a.boxes


@pytest.mark.parametrize("size", [(320, 240), (160, 200)])
def test_frames_and_boxes_fit_the_requested_size(size):
    for index in range(12):
        video = generate_moving_object_video(0, index, size=size, num_frames=20, fps=5)
        assert len(video.frames) == len(video.boxes) == 20 and video.fps == 5.0
        assert all(f.shape == (size[1], size[0], 3) and f.dtype == np.uint8 for f in video.frames)
        assert video.background.shape == (size[1], size[0], 3)
        for x1, y1, x2, y2 in video.boxes:
            assert 0 <= x1 < x2 <= size[0] and 0 <= y1 < y2 <= size[1]
        assert len({(x2 - x1, y2 - y1) for x1, y1, x2, y2 in video.boxes}) == 1


def test_target_is_drawn_in_its_box_in_its_colour():
    for index in (0, 2, 4):
        video = generate_moving_object_video(1, index)
        assert video.colour in COLOURS and video.shape in SHAPES
        for frame, box in zip(video.frames, video.boxes, strict=True):
            assert np.abs(_centre_colour(frame, box) - COLOURS[video.colour]).max() < 12


def test_target_moves_and_its_direction_word_matches_its_net_motion():
    for index in range(16):
        video = generate_moving_object_video(2, index)
        (x0, y0, x1, _), (xn, yn, _, _) = video.boxes[0], video.boxes[-1]
        assert video.direction == direction_word(xn - x0, yn - y0, box_size=x1 - x0)
        assert video.direction != "stationary"


def test_odd_indices_change_the_target_colour_at_the_event_frame():
    assert generate_moving_object_video(3, 0).event_frame is None
    video = generate_moving_object_video(3, 1, num_frames=30)
    assert 10 <= video.event_frame <= 20
    assert video.event.startswith(f"the {video.colour} {video.shape} turns ")
    new_colour = COLOURS[video.event.rsplit(" ", 1)[1]]
    before = _centre_colour(video.frames[video.event_frame - 1], video.boxes[video.event_frame - 1])
    after = _centre_colour(video.frames[video.event_frame], video.boxes[video.event_frame])
    assert np.abs(before - COLOURS[video.colour]).max() < 12
    assert np.abs(after - new_colour).max() < 12


def test_background_is_the_scene_without_the_target():
    video = generate_moving_object_video(4, 0)
    x1, y1, x2, y2 = video.boxes[0]
    outside = np.ones(video.background.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    difference = np.abs(video.frames[0].astype(int) - video.background.astype(int))
    assert difference[outside].mean() < 3 and difference[~outside].mean() > 20


@pytest.mark.parametrize("name", ["clip.mp4", "clip.avi"])
def test_written_video_reads_back_with_every_frame(tmp_path, name):
    video = generate_moving_object_video(5, 0, num_frames=25, fps=12)
    path = write_video(video.frames, tmp_path / name, video.fps)
    with VideoReader(path) as reader:
        assert (reader.info.num_frames, reader.info.fps) == (25, 12.0)
        assert (reader.info.width, reader.info.height) == (320, 240)
        last = reader.frames([24])[0].image
    assert np.abs(last.astype(int) - video.frames[24].astype(int)).mean() < 8


def test_written_frame_folder_is_lossless(tmp_path):
    video = generate_moving_object_video(5, 1, num_frames=4)
    folder = write_video(video.frames, tmp_path / "frames", video.fps)
    assert sorted(p.name for p in folder.iterdir()) == ["00000.png", "00001.png", "00002.png", "00003.png"]
    with VideoReader(folder, fps=video.fps) as reader:
        assert np.array_equal(reader.frames([3])[0].image, video.frames[3])


def test_write_video_refuses_unknown_suffixes(tmp_path):
    with pytest.raises(ValueError, match="clip.gif"):
        write_video([np.zeros((8, 8, 3), np.uint8)], tmp_path / "clip.gif", 10)
