"""The learning task family: a coloured dot on a framed card, in a region the question names, unreadable until zoomed.

Built to show that the phases *learn* on a CPU-scale model (issue: learning evidence), so it is designed for three
properties, each with a knob in `CardSpec`:

- **the answer is not in the shown image.** The canvas (448 px) is shown to the learner at 224-256 px; the dot
  (`dot_px`, 3-4 px) becomes a 1.5-2 px blur, a few percent of one vision patch. Which of `len(colours)` colours
  it has is meant to be near chance without a tool (the tool-free control measures it);
- **one or two tool calls make it answerable.** The question names the region around the dot as a box in
  0..1000 coordinates of the image (a region-referred question, as in RefCOCO-style region captioning); a
  `zoom_in` on that box returns the region upscaled to >= 224 px, where the dot fills a large share of the view.
  With `decoys`, the question names one region per card and only one holds the dot: the agent zooms them in
  reading order until it finds it;
- **difficulty is a knob.** A wider `region_margin` leaves the dot a smaller share of the zoomed view; smaller
  dots are less visible unzoomed; decoys need a search. `CARD_LEVELS` names three presets, registered as the
  task kinds `card_easy`, `card`, `card_hard`. Their margins were narrowed once, measured: with margins of 2-20 px
  the ~7M learner learnt the calls in 410 SFT steps but read the dot at chance (teacher-forced loss of the
  answer token 1.81 nats, ln 6 = 1.79: benchmarks/token_loss.py), where the dot covered about one of the view's 56
  vision tokens.

Why the question names the region instead of asking the model to find the card: a ~7M-parameter Qwen-VL trained
from scratch on a few thousand examples does not learn to localise (measured while designing this family; its
boxes stayed constant whatever the image, on both families), while it learns to read a colour that fills much of
a zoomed view within a hundred steps. The region is written in Qwen3-VL's native frame (`relative_1000`), so a
model whose tools read that frame calls `zoom_in` with the question's own numbers.

Every task is drawn from its own (seed, index) stream, like the other synthetic kinds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from pixelis_verl.data.synth.zoom_tasks import COLOURS, _add_distractors, _background, _draw_shape
from pixelis_verl.tools.coords import box_from_source

CARD_COLOURS = ("red", "green", "blue", "yellow", "orange", "purple")  # answers: chance is 1/6
CARD_CANVAS = (448, 448)  # pixels; the learner and the tiny models are shown at most 224 x 224 of it
CARD_GAP_PX = 12  # cards keep this far apart, pixels
REGION_FRAME = "relative_1000"  # the frame the question names regions in: Qwen3-VL's, independent of the shown size


@dataclass(frozen=True)
class CardSpec:
    """One difficulty level of the card task; sizes in source pixels, ranges inclusive."""

    card_px: tuple[int, int] = (40, 56)  # side of a card, frame included
    frame_px: int = 4  # black frame width: what keeps the card visible at the shown size
    dot_px: int = 3  # diameter of the coloured dot
    region_margin: tuple[int, int] = (6, 12)  # the named region extends this far beyond the dot on each side
    decoys: int = 0  # framed cards without a dot; the golden trace zooms regions in reading order until the dot
    colours: tuple[str, ...] = CARD_COLOURS
    canvas: tuple[int, int] = CARD_CANVAS


CARD_LEVELS: dict[str, CardSpec] = {
    "card_easy": CardSpec(card_px=(56, 72), dot_px=4, region_margin=(0, 2)),
    "card": CardSpec(dot_px=4, region_margin=(2, 6)),
    "card_hard": CardSpec(card_px=(40, 56), dot_px=3, region_margin=(6, 12), decoys=1),
}


@dataclass
class Card:
    box: tuple[int, int, int, int]  # x1, y1, x2, y2, x2/y2 exclusive
    has_dot: bool
    region: tuple[int, int, int, int] = (0, 0, 0, 0)  # the box the question names: around the dot, or a spot of
    # the same size on a decoy's face


def reading_order(boxes: list[tuple[int, int, int, int]]) -> list[int]:
    """Indices of `boxes` top to bottom, then left to right (by their top-left corners): the golden search order."""
    return sorted(range(len(boxes)), key=lambda i: (boxes[i][1], boxes[i][0]))


def _free_box(rng: np.random.Generator, spec: CardSpec, side: int, taken: list[tuple[int, ...]]) -> tuple[int, ...]:
    margin = 16  # from the canvas edge, pixels
    for _ in range(1000):
        x = int(rng.integers(margin, spec.canvas[0] - margin - side))
        y = int(rng.integers(margin, spec.canvas[1] - margin - side))
        box = (x, y, x + side, y + side)
        if all(_apart(box, other) for other in taken):
            return box
    raise ValueError(f"card task: no room for {spec.decoys + 1} cards of {side} px on a {spec.canvas} canvas")


def _apart(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    g = CARD_GAP_PX
    return a[2] + g <= b[0] or b[2] + g <= a[0] or a[3] + g <= b[1] or b[3] + g <= a[1]


def _draw_card(rng: np.random.Generator, canvas: Image.Image, card: Card, spec: CardSpec, colour: str) -> None:
    """Draw the card; its region is set around the dot (or, on a decoy, around a spot where a dot could be)."""
    x1, y1, x2, y2 = card.box
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=(15, 15, 15))
    f, d = spec.frame_px, spec.dot_px
    draw.rectangle((x1 + f, y1 + f, x2 - 1 - f, y2 - 1 - f), fill=(250, 250, 250))
    # Anywhere on the white face, a pixel clear of the frame.
    dx = int(rng.integers(x1 + f + 1, x2 - f - 1 - d + 1))
    dy = int(rng.integers(y1 + f + 1, y2 - f - 1 - d + 1))
    if card.has_dot:
        _draw_shape(draw, "circle", (dx, dy, dx + d, dy + d), COLOURS[colour])
    lo, hi = spec.region_margin
    left, top, right, bottom = (int(m) for m in rng.integers(lo, hi + 1, size=4))
    width, height = canvas.size
    card.region = (max(dx - left, 0), max(dy - top, 0), min(dx + d + right, width), min(dy + d + bottom, height))


def region_text(region: tuple[int, int, int, int], size: tuple[int, int]) -> str:
    """A region as the question writes it: `[x1, y1, x2, y2]` in `REGION_FRAME` coordinates of an image of `size`."""
    return str(box_from_source(region, REGION_FRAME, size, size))


def card_task(seed: int, index: int, spec: CardSpec) -> tuple[Image.Image, str, str, list[Card]]:
    """(canvas, question, answer colour, cards in drawing order) of task `index` of the stream for `seed`."""
    rng = np.random.default_rng([seed, index, 3])
    canvas = _background(rng, spec.canvas)
    answer = str(rng.choice(spec.colours))
    boxes: list[tuple[int, ...]] = []
    for _ in range(spec.decoys + 1):
        side = int(rng.integers(spec.card_px[0], spec.card_px[1] + 1))
        boxes.append(_free_box(rng, spec, side, boxes))
    dotted = int(rng.integers(len(boxes)))
    cards = [Card(tuple(b), i == dotted) for i, b in enumerate(boxes)]  # type: ignore[arg-type]
    # Distractors first, every card on top: sparing only the dotted card's surroundings would give it away.
    _add_distractors(rng, canvas, keep_clear=None)
    for card in cards:
        _draw_card(rng, canvas, card, spec, answer)
    named = ", ".join(region_text(cards[i].region, spec.canvas) for i in reading_order([c.region for c in cards]))
    if spec.decoys:
        question = f"A small coloured dot is in one of the regions {named} (0-1000 coordinates). What colour is it?"
    else:
        question = f"What colour is the small dot in region {named} (0-1000 coordinates)?"
    return canvas, question + " Answer with one of: " + ", ".join(spec.colours) + ".", answer, cards
