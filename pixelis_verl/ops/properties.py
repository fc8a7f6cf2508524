"""Measure an object given its mask or box: dominant colour and its name, size, shape, orientation, position.

The numbers are what a model cannot read reliably off a downscaled image and a tool can compute
exactly; `Properties.describe` puts them in one short line for the model. Colour names come from a
small palette matched in CIE Lab, where distance follows perceived difference better than in RGB.
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from pixelis_verl.ops.segment import image_size, read_window, segment_object_in_box
from pixelis_verl.ops.zoom import PixelBox

# Colour names and a typical sRGB value of each; a colour is named by the nearest entry in Lab.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "dark red": (130, 20, 25),
    "orange": (245, 130, 20),
    "yellow": (240, 210, 20),
    "brown": (130, 80, 40),
    "green": (40, 160, 50),
    "dark green": (20, 90, 35),
    "light green": (140, 220, 120),
    "cyan": (40, 190, 210),
    "blue": (40, 80, 220),
    "dark blue": (25, 35, 120),
    "light blue": (135, 190, 240),
    "purple": (130, 50, 170),
    "pink": (240, 130, 180),
    "black": (20, 20, 20),
    "dark grey": (80, 80, 80),
    "grey": (128, 128, 128),
    "light grey": (195, 195, 195),
    "white": (245, 245, 245),
}
CLUSTERS = 3  # k of the k-means that finds the dominant colour (object body, shading, edge blend)
KMEANS_ROUNDS = 10
MAX_SAMPLES = 4096  # pixels of the object the colour is clustered from, on an even grid
CONTOUR_EPS_PX = 1.0  # outlines are simplified to within this; the pixel staircase inflates perimeters ~10%
ISOTROPY_EPS = 1e-3  # second-moment anisotropy below which a shape has no major axis (disc, square)


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab (L 0..100) of uint8 RGB values, any leading shape."""
    flat = rgb.reshape(-1, 1, 3).astype(np.float32) / 255.0
    return cv2.cvtColor(flat, cv2.COLOR_RGB2Lab).reshape(*rgb.shape[:-1], 3)


_PALETTE_LAB = _lab(np.array(list(PALETTE.values()), np.uint8))


def colour_name(rgb: tuple[int, int, int]) -> str:
    """Name of the PALETTE entry nearest to `rgb` in CIE Lab (CIE76 distance)."""
    distances = np.linalg.norm(_PALETTE_LAB - _lab(np.array(rgb, np.uint8)), axis=1)
    return list(PALETTE)[int(np.argmin(distances))]


def dominant_rgb(pixels: np.ndarray) -> tuple[int, int, int]:
    """Median RGB of the biggest k-means cluster (k=CLUSTERS, in Lab) of `pixels` (N x 3 uint8).

    Clustering rather than a plain median keeps shading and the edge's blend with the background from
    pulling the colour; k-means++ starts from a fixed seed, so the answer is deterministic.
    """
    lab = _lab(pixels).astype(np.float64)
    rng = np.random.default_rng(0)
    centres = lab[[int(rng.integers(len(lab)))]]
    for _ in range(1, CLUSTERS):
        d2 = ((lab[:, None] - centres[None]) ** 2).sum(-1).min(1)
        if d2.sum() == 0:
            break
        centres = np.vstack([centres, lab[rng.choice(len(lab), p=d2 / d2.sum())]])
    for _ in range(KMEANS_ROUNDS):
        assign = ((lab[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.stack([lab[assign == j].mean(0) if (assign == j).any() else c for j, c in enumerate(centres)])
    assign = ((lab[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
    biggest = np.bincount(assign).argmax()
    return tuple(int(round(v)) for v in np.median(pixels[assign == biggest], axis=0))


def position_words(centroid: tuple[float, float], size: tuple[int, int]) -> str:
    """Cell of a 3x3 grid over the image holding `centroid`: "top left", "top", ..., "center" ... "bottom right"."""
    column = min(max(int(3 * centroid[0] / size[0]), 0), 2)
    row = min(max(int(3 * centroid[1] / size[1]), 0), 2)
    return " ".join(w for w in (("top", "", "bottom")[row], ("left", "", "right")[column]) if w) or "center"


@dataclass(frozen=True)
class Properties:
    colour: str  # PALETTE name of `rgb`
    rgb: tuple[int, int, int]  # dominant colour: median of the biggest colour cluster
    area: int  # pixels in the mask
    relative_size: float  # area / image area
    aspect_ratio: float  # long side / short side of the min-area rotated rectangle, in pixel extents; >= 1
    circularity: float  # 4*pi*area/perimeter^2 of the simplified outline(s): ~1 disc, 0.84 2:1 ellipse, pi/4 square
    orientation_deg: float  # major axis from the second moments, [0, 180) counter-clockwise from +x as seen on screen
    # (0 horizontal, 90 vertical, 45 rising to the right); 0 when there is no major axis (disc, square)
    centroid: tuple[float, float]  # x, y pixels, pixel (i, j) centred at (i, j) as in the box
    position: str  # 3x3 grid cell of the centroid, e.g. "top left", "center", "bottom"
    box: PixelBox  # tight box of the mask

    def describe(self) -> str:
        """One line for the model, under ~200 characters."""
        return (
            f"{self.colour} {self.rgb}; area {self.area} px ({100 * self.relative_size:.3g}% of the image); "
            f"{self.position}, centre ({self.centroid[0]:.0f}, {self.centroid[1]:.0f}); box {list(self.box)}; "
            f"aspect {self.aspect_ratio:.2f}; circularity {self.circularity:.2f}; "
            f"orientation {self.orientation_deg:.0f}°"
        )


def _object_mask(
    image: Image.Image | np.ndarray, size: tuple[int, int], mask: np.ndarray | None, box: PixelBox | None
) -> np.ndarray:
    if (mask is None) == (box is None):
        raise ValueError("get_properties: pass exactly one of mask= or box=")
    if box is not None:
        x1, y1, x2, y2 = max(int(box[0]), 0), max(int(box[1]), 0), min(int(box[2]), size[0]), min(int(box[3]), size[1])
        if not (x1 < x2 and y1 < y2):  # clipped to the image first, as zoom does
            raise ValueError(f"get_properties: box {list(box)} is empty or outside the {size[0]}x{size[1]} image")
        return segment_object_in_box(image, (x1, y1, x2, y2)).mask
    mask = np.asarray(mask)
    if mask.shape != (size[1], size[0]):
        raise ValueError(f"get_properties: mask shape {mask.shape} does not match the {size[0]}x{size[1]} image")
    if not mask.any():
        raise ValueError("get_properties: mask is empty")
    return mask != 0


def get_properties(
    image: Image.Image | np.ndarray, *, mask: np.ndarray | None = None, box: PixelBox | None = None
) -> Properties:
    """Properties of the object given by `mask` (HxW, nonzero = object) or by `box` (exactly one of them).

    A box is clipped to the image, and the object is the foreground GrabCut finds in it
    (`segment_object_in_box`), not the whole box: the box's background corners would otherwise skew
    colour, area and shape.
    """
    size = image_size(image)
    full = _object_mask(image, size, mask, box).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(full)
    crop = full[y : y + h, x : x + w]
    step = max(1, math.ceil(math.sqrt(cv2.countNonZero(crop) / MAX_SAMPLES)))  # an even grid of <= ~MAX_SAMPLES
    rgb = dominant_rgb(read_window(image, (x, y, x + w, y + h))[::step, ::step][crop[::step, ::step] > 0])

    contours, _ = cv2.findContours(np.pad(crop, 1), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contours = [cv2.approxPolyDP(c, CONTOUR_EPS_PX, True) for c in contours]
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    polygon_area = sum(cv2.contourArea(c) for c in contours)
    sides = cv2.minAreaRect(np.concatenate(contours))[1]

    m = cv2.moments(crop, binaryImage=True)
    mu20, mu02, mu11 = m["mu20"] / m["m00"], m["mu02"] / m["m00"], m["mu11"] / m["m00"]
    anisotropy = math.hypot(mu20 - mu02, 2 * mu11) / max(mu20 + mu02, 1e-9)
    # Image y points down, so the moments' angle is clockwise on screen; negate it for counter-clockwise.
    angle = 0.0 if anisotropy < ISOTROPY_EPS else -0.5 * math.degrees(math.atan2(2 * mu11, mu20 - mu02)) % 180.0
    angle = 0.0 if angle >= 180.0 else angle  # -1e-20 % 180 rounds to 180
    centroid = (x + m["m10"] / m["m00"], y + m["m01"] / m["m00"])
    area = int(m["m00"])
    return Properties(
        colour=colour_name(rgb),
        rgb=rgb,
        area=area,
        relative_size=area / (size[0] * size[1]),
        aspect_ratio=(max(sides) + 1) / (min(sides) + 1),
        circularity=min(1.0, 4 * math.pi * polygon_area / perimeter**2) if perimeter > 0 else 0.0,
        orientation_deg=angle,
        centroid=centroid,
        position=position_words(centroid, size),
        box=(x, y, x + w, y + h),
    )
