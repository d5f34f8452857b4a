"""Seeded shape scenes: a few coloured shapes of several kinds, sizes and positions on a background.

Shared by the captioning and VQA generators. A :class:`Scene` is pure data (what is where); drawing
is a pure function of the scene, so a scene drawn twice gives the same pixels, and the generators
can derive captions / questions from the same object list the image was drawn from.

Coordinates: ``x`` and ``y`` are the object's centre as fractions of the image side, in [0, 1],
with ``y`` growing downwards (image convention). Sizes are "small" or "large" (radius
``SIZE_RADIUS[size]`` of the image side). Objects never overlap, so every one is fully visible.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross")
COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange")
SIZES: tuple[str, ...] = ("small", "large")
BACKGROUNDS: tuple[str, ...] = ("white", "grey", "black")

# sRGB of each name. The object colours are saturated and far apart, the backgrounds neutral, so a
# colour word is never ambiguous against any background.
COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 35, 35),
    "green": (30, 165, 60),
    "blue": (40, 80, 225),
    "yellow": (245, 215, 30),
    "purple": (140, 55, 185),
    "orange": (250, 135, 20),
}
BACKGROUND_RGB: dict[str, tuple[int, int, int]] = {
    "white": (240, 240, 236),
    "grey": (128, 128, 128),
    "black": (22, 22, 26),
}
# Radius (half the bounding-box side) as a fraction of the image side.
SIZE_RADIUS: dict[str, float] = {"small": 0.085, "large": 0.16}
# Centres keep this margin from the border so that a large object stays inside the image.
_MARGIN = SIZE_RADIUS["large"] + 0.02


@dataclasses.dataclass(frozen=True)
class SceneObject:
    shape: str  # one of SHAPES
    colour: str  # one of COLOURS
    size: str  # "small" | "large"
    x: float  # centre, fraction of the width, 0 = left edge
    y: float  # centre, fraction of the height, 0 = top edge (y downwards)

    def __post_init__(self) -> None:
        checks = (("shape", self.shape, SHAPES), ("colour", self.colour, COLOURS), ("size", self.size, SIZES))
        for field, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"SceneObject.{field}={value!r}; expected one of {list(allowed)}")
        for field, value in (("x", self.x), ("y", self.y)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"SceneObject.{field}={value!r}; expected a fraction of the image side in [0, 1]")


@dataclasses.dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]
    background: str  # one of BACKGROUNDS

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise ValueError(f"Scene.background={self.background!r}; expected one of {list(BACKGROUNDS)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for generators that store the scene beside the image)."""
        return {"background": self.background, "objects": [dataclasses.asdict(o) for o in self.objects]}

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "Scene":
        return cls(objects=tuple(SceneObject(**o) for o in payload["objects"]), background=payload["background"])


def _overlaps(candidate: SceneObject, placed: list[SceneObject]) -> bool:
    for other in placed:
        distance = math.hypot(candidate.x - other.x, candidate.y - other.y)
        # A gap of 0.04 of the side keeps shapes visually separate (and positions unambiguous).
        if distance < SIZE_RADIUS[candidate.size] + SIZE_RADIUS[other.size] + 0.04:
            return True
    return False


def random_scene(rng: np.random.Generator, max_objects: int = 4, min_objects: int = 1) -> Scene:
    """Draws 1..max_objects non-overlapping objects with uniform shape, colour, size and position."""
    if not 1 <= min_objects <= max_objects:
        raise ValueError(
            f"expected 1 <= min_objects <= max_objects, got min_objects={min_objects}, max_objects={max_objects}"
        )
    if max_objects > 6:
        raise ValueError(f"max_objects={max_objects}: at most 6 objects fit without overlapping")
    count = int(rng.integers(min_objects, max_objects + 1))
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    placed: list[SceneObject] = []
    while len(placed) < count:
        for _ in range(200):  # rejection sampling of the position; 200 tries is ample for <= 6 objects
            candidate = SceneObject(
                shape=SHAPES[int(rng.integers(len(SHAPES)))],
                colour=COLOURS[int(rng.integers(len(COLOURS)))],
                size=SIZES[int(rng.integers(len(SIZES)))],
                x=float(rng.uniform(_MARGIN, 1.0 - _MARGIN)),
                y=float(rng.uniform(_MARGIN, 1.0 - _MARGIN)),
            )
            if not _overlaps(candidate, placed):
                placed.append(candidate)
                break
        else:  # crowded: start again with a fresh layout
            placed = []
    return Scene(objects=tuple(placed), background=background)


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "triangle":  # pointing up, same height as the bounding box
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == "cross":  # a plus sign with arms a third of the box wide
        a = r / 3.0
        return [
            (cx - a, cy - r), (cx + a, cy - r), (cx + a, cy - a), (cx + r, cy - a), (cx + r, cy + a), (cx + a, cy + a),
            (cx + a, cy + r), (cx - a, cy + r), (cx - a, cy + a), (cx - r, cy + a), (cx - r, cy - a), (cx - a, cy - a),
        ]
    raise ValueError(f"no polygon for shape {shape!r}")


def draw_scene(scene: Scene, image_size: int = 128) -> Image.Image:
    """Renders ``scene`` as an RGB image of ``image_size`` × ``image_size`` pixels.

    The background carries a faint vertical gradient (±10 grey levels) so that it is not a flat
    constant; objects are drawn with 4× supersampling and downscaled, which anti-aliases the edges.
    """
    if image_size < 16:
        raise ValueError(f"image_size={image_size}; expected at least 16 pixels")
    scale = 4
    side = image_size * scale
    base = np.array(BACKGROUND_RGB[scene.background], dtype=np.float32)
    ramp = np.linspace(-10.0, 10.0, side, dtype=np.float32)[:, None, None]  # rows: top darker, bottom lighter
    pixels = np.clip(base[None, None, :] + ramp + np.zeros((side, side, 3), np.float32), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, mode="RGB")
    draw = ImageDraw.Draw(image)
    for item in scene.objects:
        cx, cy, r = item.x * side, item.y * side, SIZE_RADIUS[item.size] * side
        fill = COLOUR_RGB[item.colour]
        if item.shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        elif item.shape == "square":
            s = r * 0.88  # a square of the same area impression as the circle
            draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=fill)
        else:
            draw.polygon(_polygon(item.shape, cx, cy, r), fill=fill)
    return image.resize((image_size, image_size), resample=Image.Resampling.LANCZOS)


def write_jpeg(image: Image.Image, path: str | os.PathLike, quality: int = 90) -> None:
    """Writes ``image`` as a baseline JPEG at ``path`` atomically (temporary sibling, then rename)."""
    from common.io import atomic_path

    with atomic_path(path, suffix=".jpg") as temporary:
        image.convert("RGB").save(temporary, format="JPEG", quality=quality)


# --- spatial language shared by the caption and question generators --------------------------------


def horizontal_relation(a: SceneObject, b: SceneObject) -> str | None:
    """'left of' / 'right of' when a's centre is clearly (> 0.1 of the side) left/right of b's."""
    if a.x < b.x - 0.1:
        return "left of"
    if a.x > b.x + 0.1:
        return "right of"
    return None


def vertical_relation(a: SceneObject, b: SceneObject) -> str | None:
    """'above' / 'below' when a's centre is clearly (> 0.1 of the side) above/below b's."""
    if a.y < b.y - 0.1:
        return "above"
    if a.y > b.y + 0.1:
        return "below"
    return None


def region(item: SceneObject) -> str:
    """Where in the image: 'top left', 'top', 'top right', 'left', 'centre', ..., 'bottom right'."""
    vertical = "top" if item.y < 0.4 else "bottom" if item.y > 0.6 else ""
    horizontal = "left" if item.x < 0.4 else "right" if item.x > 0.6 else ""
    return " ".join(part for part in (vertical, horizontal) if part) or "centre"
