import io
import os
from pathlib import Path

import pytest
from PIL import Image

from pixelis_verl.tools import media

LIMITS = media.MediaLimits(
    data_root=None,
    max_source_pixels=400 * 300,
    max_decode_pixels=2000 * 2000,
    max_video_frames=100,
    max_frame_pixels=640 * 480,
)


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _limits(root: Path | None) -> media.MediaLimits:
    return media.MediaLimits(**{**LIMITS.__dict__, "data_root": str(root) if root else None})


def test_paths_resolve_inside_the_data_root_only(tmp_path):
    (tmp_path / "a.png").write_bytes(_png((8, 8)))
    assert media.resolve_path("a.png", str(tmp_path)) == tmp_path / "a.png"
    assert media.resolve_path(tmp_path / "a.png", str(tmp_path)) == tmp_path / "a.png"
    with pytest.raises(media.MediaError, match="outside the data root"):
        media.resolve_path("../a.png", str(tmp_path / "sub"))
    with pytest.raises(media.MediaError, match="outside the data root"):
        media.resolve_path("/etc/passwd", str(tmp_path))
    with pytest.raises(media.MediaError, match="no data_root"):
        media.resolve_path("a.png", None)
    with pytest.raises(media.MediaError, match="does not exist"):
        media.resolve_path("b.png", str(tmp_path))


def test_fifos_folders_nul_bytes_long_names_and_symlink_loops_are_refused_in_one_line(tmp_path):
    """A FIFO would block the reader forever; the others used to escape as OSError, ValueError or RuntimeError."""
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "frames").mkdir()
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    cases = {"pipe.png": "not a regular file", "frames": "not a regular file", "a\x00.png": "cannot be opened",
             "x" * 300 + ".png": "cannot be opened", "loop": "cannot be opened"}  # fmt: skip
    for path, reason in cases.items():
        with pytest.raises(media.MediaError, match=reason) as info:
            media.resolve_path(path, str(tmp_path))
        assert "\n" not in str(info.value) and len(str(info.value)) < 200
    assert media.resolve_path("frames", str(tmp_path), folder_ok=True) == tmp_path / "frames"  # a frame folder


def test_the_tool_configs_media_budget_is_read_from_its_first_tool():
    limits = media.tool_media_limits(Path(__file__).parents[2] / "conf" / "tools" / "pixel_tools.yaml", "/data")
    assert limits == media.MediaLimits("/data", 50_000_000, 150_000_000, 108_000, 921_600)


def test_symlinks_out_of_the_data_root_are_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "secret.png"
    root.mkdir()
    outside.write_bytes(_png((8, 8)))
    (root / "link.png").symlink_to(outside)
    with pytest.raises(media.MediaError, match="outside the data root"):
        media.resolve_path("link.png", str(root))


def test_large_sources_are_downscaled_as_they_load():
    tools_kwargs = {"pixelis": {"source_images": [{"bytes": _png((800, 600))}]}}
    image = media.source_image(tools_kwargs, 0, LIMITS)
    assert image.width * image.height <= LIMITS.max_source_pixels and abs(image.width / image.height - 4 / 3) < 0.02


def test_decompression_bombs_are_refused_before_decoding():
    with pytest.raises(media.MediaError, match="above the limit of 4000000 pixels"):
        media.decode_image(_png((2001, 2000)), LIMITS, "source image 0")


def test_undecodable_bytes_are_a_media_error():
    with pytest.raises(media.MediaError, match="could not be decoded"):
        media.decode_image(b"not an image", LIMITS, "source image 0")


def test_decoded_sources_are_shared_between_trajectories_of_a_row():
    tools_kwargs = {"pixelis": {"source_images": [{"bytes": _png((64, 48))}]}}
    first = media.source_image(tools_kwargs, 0, LIMITS)
    again = media.source_image({"pixelis": {"source_images": [{"bytes": _png((64, 48))}]}}, 0, LIMITS)
    assert again is first


def test_rows_without_media_have_no_source_and_no_video():
    assert media.source_image({}, 0, LIMITS) is None
    assert media.source_image({"pixelis": {"source_images": [None]}}, 0, LIMITS) is None
    assert media.video_entry({"pixelis": {"video": None}}) is None and media.question_frames(None) == []
