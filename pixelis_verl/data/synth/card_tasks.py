"""The learning task family: a coloured dot on a framed card, visible as a card but unreadable until zoomed.

Built to show that the phases *learn* on a CPU-scale model (issue: learning evidence), so it is designed for three
properties, each with a knob in `CardSpec`:

- **the answer is not in the shown image.** The canvas (448 px) is shown to the model at 224 px; the dot
  (`dot_px`, 3-4 px) becomes a 1.5-2 px blur, a few percent of one 14 px vision patch, inside a white card.
  Which of `len(colours)` colours it has is meant to be near chance without a tool (the tool-free control
  measures it);
- **one or two tool calls make it answerable.** The card's thick black frame stays visible at the shown size, so
  a model can find it; a zoom onto the card returns it upscaled (>= 224 px), where the dot spans about 10 px.
  With `decoys`, other framed cards carry no dot, and the agent zooms card after card in reading order until it
  finds the dot;
- **difficulty is a knob.** Smaller cards need more precise boxes; smaller dots are less visible unzoomed; decoys
  need a search. `CARD_LEVELS` names three presets, registered as the task kinds `card_easy`, `card`, `card_hard`.

Every task is drawn from its own (seed, index) stream, like the other synthetic kinds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from pixelis_verl.data.synth.zoom_tasks import COLOURS, _add_distractors, _background, _draw_shape

CARD_COLOURS = ("red", "green", "blue", "yellow", "orange", "purple")  # answers: chance is 1/6
CARD_CANVAS = (448, 448)  # pixels; the learner and the tiny models are shown at most 224 x 224 of it
CARD_GAP_PX = 12  # cards keep this far apart, pixels


@dataclass(frozen=True)
class CardSpec:
    """One difficulty level of the card task; sizes in source pixels, ranges inclusive."""

    card_px: tuple[int, int] = (40, 56)  # side of a card, frame included
    frame_px: int = 4  # black frame width: what keeps the card visible at the shown size
    dot_px: int = 3  # diameter of the coloured dot
    decoys: int = 0  # framed cards without a dot; the golden trace zooms cards in reading order until the dot
    colours: tuple[str, ...] = CARD_COLOURS
    canvas: tuple[int, int] = CARD_CANVAS


CARD_LEVELS: dict[str, CardSpec] = {
    "card_easy": CardSpec(card_px=(56, 72), dot_px=4),
    "card": CardSpec(),
    "card_hard": CardSpec(card_px=(32, 44), dot_px=3, decoys=1),
}


@dataclass
class Card:
    box: tuple[int, int, int, int]  # x1, y1, x2, y2, x2/y2 exclusive
    has_dot: bool


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
    x1, y1, x2, y2 = card.box
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=(15, 15, 15))
    f = spec.frame_px
    draw.rectangle((x1 + f, y1 + f, x2 - 1 - f, y2 - 1 - f), fill=(250, 250, 250))
    if card.has_dot:  # anywhere on the white face, a pixel clear of the frame
        d = spec.dot_px
        dx = int(rng.integers(x1 + f + 1, x2 - f - 1 - d + 1))
        dy = int(rng.integers(y1 + f + 1, y2 - f - 1 - d + 1))
        _draw_shape(draw, "circle", (dx, dy, dx + d, dy + d), COLOURS[colour])


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
    if spec.decoys:
        question = "One of the framed cards has a small coloured dot on it. What colour is the dot?"
    else:
        question = "What colour is the small dot on the framed card?"
    return canvas, question + " Answer with one of: " + ", ".join(spec.colours) + ".", answer, cards
