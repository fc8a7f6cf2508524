import math
import os

import cv2
import numpy as np
import pytest

from pixelis_verl.data.synth.moving_object import write_video
from pixelis_verl.ops import video
from pixelis_verl.ops.video import VideoInfo, VideoReader, frame_window, select_frames

NUM_FRAMES, FPS, SIZE = 60, 10.0, (64, 48)
STEP = 16  # grey levels between codes; mp4 shifts flat greys by a few levels


def _counter_frames(num: int = NUM_FRAMES, size: tuple[int, int] = SIZE) -> list[np.ndarray]:
    """Frame k shows k in base 15: the left half's grey is its low digit, the right half's its high digit."""
    frames = []
    for k in range(num):
        image = np.empty((size[1], size[0], 3), dtype=np.uint8)
        image[:, : size[0] // 2] = 8 + STEP * (k % 15)
        image[:, size[0] // 2 :] = 8 + STEP * (k // 15)
        frames.append(image)
    return frames


def _decoded_index(image: np.ndarray) -> int:
    """The frame an image shows, read to the nearest code (the codec is lossy)."""
    half = image.shape[1] // 2
    low, high = (round((float(part[:, 2:-2].mean()) - 8) / STEP) for part in (image[:, :half], image[:, half:]))
    return low + 15 * high


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    return write_video(_counter_frames(), tmp_path_factory.mktemp("video") / "counter.mp4", FPS)


def _check(frames, indices):
    assert [f.index for f in frames] == indices
    assert [_decoded_index(f.image) for f in frames] == indices
    assert [f.timestamp_s for f in frames] == pytest.approx([i / FPS for i in indices])


def test_reader_reports_the_video(mp4):
    with VideoReader(mp4) as reader:
        assert reader.info == VideoInfo(NUM_FRAMES, FPS, *SIZE)
        assert reader.info.duration_s == pytest.approx(6.0)
        assert (reader.info.source_width, reader.info.source_height) == SIZE


def test_select_frames_spreads_frames_over_a_time_window(mp4):
    with VideoReader(mp4) as reader:
        frames = select_frames(reader, start_s=1.0, end_s=4.0, num_frames=4)
    _check(frames, [10, 20, 30, 40])
    assert all(f.image.dtype == np.uint8 and f.image.shape == (48, 64, 3) for f in frames)


def test_select_frames_spreads_frames_over_a_frame_window(mp4):
    with VideoReader(mp4) as reader:
        _check(select_frames(reader, start_frame=5, end_frame=12, num_frames=3), [5, 9, 12])
        _check(select_frames(reader, start_frame=5, end_frame=12, num_frames=8), list(range(5, 13)))


def test_select_frames_covers_the_whole_video_by_default(mp4):
    with VideoReader(mp4) as reader:
        frames = select_frames(reader)
    assert len(frames) == 8 and frames[0].index == 0 and frames[-1].index == NUM_FRAMES - 1
    _check(frames, [f.index for f in frames])


def test_select_frames_returns_fewer_frames_for_a_short_window_and_the_middle_for_one(mp4):
    with VideoReader(mp4) as reader:
        _check(select_frames(reader, start_frame=3, end_frame=5, num_frames=8), [3, 4, 5])
        _check(select_frames(reader, start_s=2.0, end_s=3.0, num_frames=1), [25])


def test_time_window_holds_every_frame_shown_during_it():
    info = VideoInfo(NUM_FRAMES, FPS, *SIZE)
    assert frame_window(info, start_s=2.3, end_s=2.3) == (23, 23)  # 2.3 * 10 is 22.999... in floats
    assert frame_window(info, start_s=1.05, end_s=1.95) == (10, 19)
    assert frame_window(info, start_s=-5, end_s=100) == (0, NUM_FRAMES - 1)
    assert frame_window(info, start_frame=50, end_frame=500) == (50, NUM_FRAMES - 1)


@pytest.mark.parametrize(
    "window",
    [
        {"start_s": 4.0, "end_s": 3.0},
        {"start_s": 7.0},
        {"end_s": -1.0},
        {"start_frame": 20, "end_frame": 10},
        {"start_frame": NUM_FRAMES},
        {"end_frame": -1},
        {"start_s": 1.0, "end_frame": 20},
        {"start_s": math.nan},
    ],
)
def test_bad_windows_are_refused_with_the_valid_range(window):
    with pytest.raises(ValueError, match="frame_window"):
        frame_window(VideoInfo(NUM_FRAMES, FPS, *SIZE), **window)


def test_empty_window_message_names_the_valid_range():
    with pytest.raises(ValueError, match=r"frames 0\.\.59 \(0-6\.00 s\)"):
        frame_window(VideoInfo(NUM_FRAMES, FPS, *SIZE), start_s=7.0)


def test_select_frames_refuses_fewer_than_one_frame(mp4):
    with VideoReader(mp4) as reader, pytest.raises(ValueError, match="num_frames"):
        select_frames(reader, num_frames=0)


def test_frames_are_returned_ascending_without_repeats_in_any_request_order(mp4):
    with VideoReader(mp4) as reader:
        _check(reader.frames([7, 3, 7]), [3, 7])
        _check(reader.frames([1, 58]), [1, 58])  # back to the start, then to the end


def test_long_jumps_seek_to_the_exact_frame(mp4, monkeypatch):
    monkeypatch.setattr(video, "SEEK_MIN_GAP", 8)
    with VideoReader(mp4) as reader:
        _check(reader.frames([0, 30, 31, 55]), [0, 30, 31, 55])


def test_out_of_range_indices_are_refused(mp4):
    with VideoReader(mp4) as reader:
        with pytest.raises(ValueError, match=r"\[60\] outside 0\.\.59"):
            reader.frames([3, 60])
        with pytest.raises(ValueError, match="empty"):
            reader.iter_frames(9, 8)


def test_iter_frames_streams_an_inclusive_range(mp4):
    with VideoReader(mp4) as reader:
        stream = reader.iter_frames(40, 44)
        assert not isinstance(stream, list)
        _check(list(stream), [40, 41, 42, 43, 44])


def test_frame_folder_reads_images_sorted_by_name_at_the_given_fps(tmp_path):
    folder = write_video(_counter_frames(12), tmp_path / "frames", FPS)
    (folder / "notes.txt").write_text("not a frame")
    with VideoReader(folder, fps=4.0) as reader:
        assert reader.info == VideoInfo(12, 4.0, *SIZE)
        frames = select_frames(reader, start_s=1.0, end_s=2.0, num_frames=2)
    assert [f.index for f in frames] == [4, 8]
    assert [_decoded_index(f.image) for f in frames] == [4, 8]  # PNG is lossless, exact levels
    assert [f.timestamp_s for f in frames] == [1.0, 2.0]


def test_frame_folder_needs_fps(tmp_path):
    folder = write_video(_counter_frames(3), tmp_path / "frames", FPS)
    with pytest.raises(ValueError, match="fps"):
        VideoReader(folder)


def test_max_pixels_downscales_frames_and_keeps_the_source_size(tmp_path):
    path = write_video(_counter_frames(5, (320, 240)), tmp_path / "big.mp4", FPS)
    with VideoReader(path, max_pixels=80 * 60) as reader:
        assert (reader.info.width, reader.info.height) == (80, 60)
        assert (reader.info.source_width, reader.info.source_height) == (320, 240)
        frame = reader.frames([2])[0]
    assert frame.image.shape == (60, 80, 3) and _decoded_index(frame.image) == 2


def test_max_frames_refuses_long_videos(mp4):
    with pytest.raises(ValueError, match="max_frames=50"):
        VideoReader(mp4, max_frames=50)


def test_fps_overrides_the_file_rate(mp4):
    with VideoReader(mp4, fps=20.0) as reader:
        assert reader.frames([10])[0].timestamp_s == pytest.approx(0.5)


@pytest.mark.parametrize("content", [b"", b"this is not a video\n" * 50])
def test_non_video_files_are_refused_naming_the_path(tmp_path, content):
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="clip.mp4"):
        VideoReader(path)


def test_missing_paths_and_empty_folders_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        VideoReader(tmp_path / "missing.mp4")
    with pytest.raises(ValueError, match="no frame images"):
        VideoReader(tmp_path, fps=10)


def test_an_undecodable_frame_image_is_refused(tmp_path):
    folder = write_video(_counter_frames(2), tmp_path / "frames", FPS)
    (folder / "00001.png").write_bytes(b"broken")
    with VideoReader(folder, fps=FPS) as reader, pytest.raises(ValueError, match="00001.png"):
        reader.frames([1])


def test_videos_whose_container_gives_no_frame_count_are_counted(tmp_path, monkeypatch):
    path = write_video(_counter_frames(20), tmp_path / "clip.mp4", FPS)
    real_capture = cv2.VideoCapture

    class NoCount:  # as OpenCV reports a raw .h264 stream: a garbage negative frame count
        def __init__(self, *args):
            self._capture = real_capture(*args)

        def get(self, prop):
            return -1.9e14 if prop == cv2.CAP_PROP_FRAME_COUNT else self._capture.get(prop)

        def __getattr__(self, name):
            return getattr(self._capture, name)

    monkeypatch.setattr(cv2, "VideoCapture", NoCount)
    with VideoReader(path) as reader:
        assert reader.info.num_frames == 20
        _check(reader.frames([0, 19]), [0, 19])
    with pytest.raises(ValueError, match="max_frames=10"):
        VideoReader(path, max_frames=10)


def test_a_folder_with_more_frames_than_allowed_is_refused_while_being_read(tmp_path, monkeypatch):
    folder = write_video(_counter_frames(12), tmp_path / "frames", FPS)
    seen = []
    real_scandir = video.os.scandir

    def counting_scandir(path):
        entries = real_scandir(path)

        class Counting:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                entries.close()

            def __iter__(self):
                for entry in entries:
                    seen.append(entry.name)
                    yield entry

        return Counting()

    monkeypatch.setattr(video.os, "scandir", counting_scandir)
    with pytest.raises(ValueError, match="more than max_frames=5"):
        VideoReader(folder, fps=FPS, max_frames=5)
    assert len(seen) == 6  # stopped at the first frame over the limit, not after listing the folder


def test_only_regular_files_count_as_frames(tmp_path):
    folder = write_video(_counter_frames(3), tmp_path / "frames", FPS)
    outside = write_video(_counter_frames(1), tmp_path / "outside", FPS)
    (folder / "00003.png").symlink_to(next(outside.iterdir()))  # could point anywhere
    os.mkfifo(folder / "00004.png")  # would block a reader forever
    (folder / "00005.png").mkdir()
    with VideoReader(folder, fps=FPS) as reader:
        assert reader.info.num_frames == 3


def test_frame_images_above_the_decode_budget_are_refused_from_their_header(tmp_path, monkeypatch):
    folder = write_video(_counter_frames(2, (320, 240)), tmp_path / "frames", FPS)
    decoded = []
    monkeypatch.setattr(video.cv2, "imread", lambda *a: decoded.append(a) or None)
    with pytest.raises(ValueError, match=r"frame image 00000.png is 320x240, more than max_decode_pixels=10000"):
        VideoReader(folder, fps=FPS, max_decode_pixels=100 * 100)
    assert decoded == []


def test_video_files_above_the_decode_budget_are_refused_before_decoding(tmp_path):
    path = write_video(_counter_frames(2, (320, 240)), tmp_path / "big.mp4", FPS)
    with pytest.raises(ValueError, match=r"a frame is 320x240, more than max_decode_pixels=10000"):
        VideoReader(path, max_decode_pixels=100 * 100)


def test_large_frame_images_decode_reduced_and_keep_their_source_size(tmp_path, monkeypatch):
    folder = write_video(_counter_frames(3, (640, 480)), tmp_path / "frames", FPS)
    flags = []
    real_imread = video.cv2.imread
    monkeypatch.setattr(video.cv2, "imread", lambda path, flag: flags.append(flag) or real_imread(path, flag))
    with VideoReader(folder, fps=FPS, max_pixels=80 * 60) as reader:
        assert (reader.info.width, reader.info.height, reader.info.source_width) == (80, 60, 640)
        frame = reader.frames([2])[0]
    assert flags == [cv2.IMREAD_REDUCED_COLOR_8]
    assert frame.image.shape == (60, 80, 3) and _decoded_index(frame.image) == 2
