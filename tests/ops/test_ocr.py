import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from pixelis_verl.ops.ocr import OcrBackend, RapidOcrBackend, TextLine, make_ocr_backend, read_text, reading_order

Placed = tuple[str, tuple[int, int], int]  # text, top-left (x, y) in pixels, font size in pixels


@pytest.fixture(scope="module")
def backend() -> OcrBackend:
    return make_ocr_backend()


def _render(placed: list[Placed], size: tuple[int, int] = (1000, 1000)) -> tuple[Image.Image, list[tuple]]:
    """Black text on white, and the box each string's ink covers."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    boxes = []
    for text, xy, font_size in placed:
        font = ImageFont.load_default(size=font_size)
        draw.text(xy, text, fill="black", font=font)
        boxes.append(draw.textbbox(xy, text, font=font))
    return image, boxes


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def _accuracy(predicted: str, truth: str) -> float:
    return 1 - _edit_distance(predicted, truth) / len(truth)


def _contains(outer: tuple, inner: tuple, slack: int = 2) -> bool:
    return (
        outer[0] <= inner[0] + slack
        and outer[1] <= inner[1] + slack
        and outer[2] >= inner[2] - slack
        and outer[3] >= inner[3] - slack
    )


def test_read_text_reads_rendered_lines_accurately(backend):
    placed = [
        ("Invoice 4821 due 2026-03-14", (80, 60), 32),
        ("Total amount: 1,250.75 EUR", (120, 180), 24),
        ("Ship to Berlin, Platz 7", (60, 300), 20),
        ("Call 030 555 0199 before noon", (200, 420), 16),
    ]
    image, _ = _render(placed)
    lines = read_text(image, backend=backend)
    assert len(lines) == len(placed)
    for line, (truth, _, _) in zip(lines, placed, strict=True):
        assert _accuracy(line.text, truth) >= 0.9, (line.text, truth)
        assert 0.5 <= line.confidence <= 1.0


def test_read_text_reads_a_tight_word_crop(backend):
    image, (ink,) = _render([("Berlin 42", (400, 500), 14)])
    word_box = (ink[0] - 3, ink[1] - 3, ink[2] + 3, ink[3] + 3)  # ~70x20 px, text touching the edges
    lines = read_text(image, word_box, backend=backend)
    assert [line.text for line in lines] == ["Berlin 42"]


def test_read_text_returns_lines_in_reading_order(backend):
    placed = [
        ("Right column", (600, 105), 24),
        ("Second row text", (100, 400), 24),
        ("Left column", (80, 100), 24),
        ("Third row 99", (300, 700), 24),
    ]
    image, _ = _render(placed)
    texts = [line.text for line in read_text(image, backend=backend)]
    assert texts == ["Left column", "Right column", "Second row text", "Third row 99"]


def test_read_text_in_a_box_reads_only_that_region_in_image_coordinates(backend):
    image, (inside_ink, _) = _render([("Harbour 17", (620, 540), 24), ("Station 305", (100, 120), 24)])
    region = (560, 500, 900, 620)
    lines = read_text(image, region, backend=backend)
    assert [line.text for line in lines] == ["Harbour 17"]
    assert _contains(lines[0].box, inside_ink)
    assert _contains(region, lines[0].box, slack=0)


def test_read_text_clips_a_box_that_overhangs_the_image(backend):
    image, (ink,) = _render([("Edge 88", (420, 260), 20)], size=(500, 300))
    lines = read_text(np.asarray(image), (380, 220, 900, 900), backend=backend)
    assert [line.text for line in lines] == ["Edge 88"]
    assert _contains(lines[0].box, ink)


def test_read_text_gives_the_same_lines_from_concurrent_threads(backend):
    images = [_render([(f"Gate {n} closes 18:{n}5", (30, 40 + 20 * n), 20)], size=(400, 200))[0] for n in range(4)]
    serial = [read_text(image, backend=backend) for image in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(lambda image: read_text(image, backend=backend), images)) == serial


def test_read_text_on_a_blank_image_finds_nothing(backend):
    assert read_text(Image.new("RGB", (640, 480), "white"), backend=backend) == []


def test_read_text_on_a_tiny_image_or_one_pixel_high_box_finds_nothing(backend):
    assert read_text(Image.new("RGB", (5, 5), "white"), backend=backend) == []
    image, _ = _render([("Some text 123", (100, 100), 24)], size=(400, 200))
    assert read_text(image, (0, 110, 400, 111), backend=backend) == []


@pytest.mark.parametrize("box", [(50, 50, 50, 80), (60, 50, 40, 80), (500, 0, 600, 10), (-20, -20, 0, 0)])
def test_read_text_rejects_an_empty_or_outside_box(backend, box):
    with pytest.raises(ValueError, match="read_text: box"):
        read_text(Image.new("RGB", (200, 100), "white"), box, backend=backend)


def test_read_text_rejects_an_array_that_is_not_rgb(backend):
    with pytest.raises(ValueError, match="RGB uint8 HxWx3"):
        read_text(np.zeros((10, 10), dtype=np.uint8), backend=backend)


def test_make_ocr_backend_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="'tesseract'.*known: \\['rapidocr'\\]"):
        make_ocr_backend("tesseract")


def test_make_ocr_backend_rejects_an_unknown_option():
    with pytest.raises(ValueError, match="det_limit"):
        make_ocr_backend("rapidocr", det_limit=960)


def test_make_ocr_backend_builds_each_configuration_once(backend):
    assert make_ocr_backend() is backend
    assert make_ocr_backend(num_threads=1, text_score=0.6) is make_ocr_backend(text_score=0.6, num_threads=1)


def test_rapidocr_backend_says_how_to_install_a_missing_engine(monkeypatch):
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install --no-deps rapidocr_onnxruntime==1.4.4"):
        RapidOcrBackend()


def _line(text: str, box: tuple[int, int, int, int]) -> TextLine:
    return TextLine(text, box, 1.0)


def test_reading_order_goes_by_rows_then_left_to_right():
    lines = [
        _line("d", (10, 100, 90, 120)),
        _line("b", (300, 12, 380, 30)),  # slightly lower than "a" but on its row
        _line("c", (500, 8, 540, 26)),
        _line("a", (10, 10, 90, 28)),
    ]
    assert [line.text for line in reading_order(lines)] == ["a", "b", "c", "d"]


def test_reading_order_keeps_a_taller_word_on_its_row():
    lines = [_line("small", (200, 20, 260, 34)), _line("Big", (10, 10, 120, 50)), _line("next", (10, 60, 80, 74))]
    assert [line.text for line in reading_order(lines)] == ["Big", "small", "next"]


def test_reading_order_splits_lines_that_overlap_by_less_than_half():
    lines = [_line("lower", (10, 25, 90, 45)), _line("upper", (200, 10, 280, 30))]  # 5 of 20 px overlap
    assert [line.text for line in reading_order(lines)] == ["upper", "lower"]
