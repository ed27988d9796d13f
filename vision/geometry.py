"""The one coordinate mapping of deskpilot: screen pixels, logical points and model space.

Three spaces meet here:

- screen pixels: what the capture returns (physical pixels); canonical actions use these.
- logical points: what the OS input APIs take on HiDPI systems (pixels / scale).
- model space: the image the model sees, a resized copy of the screen.

Each model backend chooses its image size (usually the largest same-aspect size within its
API's limits, `fit_image_size`; for the Qwen-VL family of vision encoders, and UI-TARS built on
it, `smart_resize`); an image of any other size would be resized by the server, silently
shifting every coordinate the model returns. A family whose coordinates are not pixels of the
image (Qwen3-VL's 0..1000 grid) translates them here too (`GridSpace`), so every coordinate a
model writes reaches the screen through this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class CoordinateError(ValueError):
    """A coordinate or region lies outside the space it was given in."""


@dataclass(frozen=True)
class Size:
    """A width and height in pixels."""

    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"size must be positive, got {self.width}x{self.height}")

    @classmethod
    def parse(cls, text: str) -> Size:
        """Parse `WxH` (e.g. `1280x800`), with an error that names the problem."""
        parts = text.lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ValueError(f"size must look like 1280x800, got {text!r}")
        width, height = int(parts[0]), int(parts[1])
        if not (16 <= width <= 16384 and 16 <= height <= 16384):
            raise ValueError(f"size {text!r} is out of range (16..16384 per side)")
        return cls(width, height)

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def fit_image_size(screen: Size, max_long_edge: int, max_pixels: int) -> Size:
    """The largest same-aspect size within both limits; never larger than `screen`."""
    w, h = screen.width, screen.height
    scale = min(1.0, max_long_edge / max(w, h), math.sqrt(max_pixels / (w * h)))
    if scale >= 1.0:
        return screen
    width = min(w, math.floor(w * scale) + 2)
    while True:  # step down until the rounded height also fits both limits
        height = max(1, round(width * h / w))
        if max(width, height) <= max_long_edge and width * height <= max_pixels:
            return Size(width, height)
        width -= 1


def smart_resize(screen: Size, factor: int, min_pixels: int, max_pixels: int, max_ratio: float = 200) -> Size:
    """The image size the Qwen-VL image processors (and UI-TARS, built on them) resize to.

    Each side becomes a multiple of `factor` (the vision encoder's patch size times its merge size:
    28 for Qwen2-VL/Qwen2.5-VL/UI-TARS, 32 for Qwen3-VL), as close to the original as possible,
    and the area is brought into [min_pixels, max_pixels] keeping the aspect ratio. The sides are
    rounded as those processors round them (Python's round, half to even), so an image sent at this
    size is left alone by the server: `smart_resize` of its result is the result itself.
    ValueError for an aspect ratio over `max_ratio`.
    """
    h, w = screen.height, screen.width
    if max(h, w) / min(h, w) > max_ratio:
        raise ValueError(f"aspect ratio of {screen} is over {max_ratio:g}")
    h_bar = max(factor, round(h / factor) * factor)
    w_bar = max(factor, round(w / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        h_bar = max(factor, math.floor(h / beta / factor) * factor)
        w_bar = max(factor, math.floor(w / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        h_bar = math.ceil(h * beta / factor) * factor
        w_bar = math.ceil(w * beta / factor) * factor
    return Size(w_bar, h_bar)


@dataclass(frozen=True)
class GridSpace:
    """Coordinates on a fixed grid laid over an image (Qwen3-VL: 0..1000 along each side), whatever
    the image's size. A grid value `g` names the position g/steps of the way across the image."""

    steps: int = 1000

    def to_image(self, x: float, y: float, image: Size, screen: Size | None = None) -> tuple[int, int]:
        """Grid point -> the image pixel that contains it.

        With `screen` (the screen the image shows), the image pixel chosen is the one ScreenMap maps
        onto the screen pixel that contains the grid point, so the grid reaches the screen with one
        rounding, not two. Raises CoordinateError outside 0..steps; a grid point is never clamped.
        """
        for name, value in (("x", x), ("y", y)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= self.steps):
                raise CoordinateError(f"({x}, {y}) is outside the 0..{self.steps} grid "
                                      f"({name} must be 0..{self.steps})")
        if screen is None:
            return (min(image.width - 1, math.floor(x * image.width / self.steps)),
                    min(image.height - 1, math.floor(y * image.height / self.steps)))
        sx = min(screen.width - 1, math.floor(x * screen.width / self.steps))
        sy = min(screen.height - 1, math.floor(y * screen.height / self.steps))
        return ScreenMap(screen, image).to_model(sx, sy)

    def from_image(self, x: int, y: int, image: Size) -> tuple[int, int]:
        """Image pixel -> the grid point nearest its centre (for prompts and tests)."""
        _check_inside(x, y, image, "image")
        return (min(self.steps, round((x + 0.5) * self.steps / image.width)),
                min(self.steps, round((y + 0.5) * self.steps / image.height)))


@dataclass(frozen=True)
class ScreenMap:
    """Maps coordinates between a screen (pixels, with its HiDPI scale) and the model's image.

    `scale` is physical pixels per logical point (1.0 on a plain X server, 2.0 on Retina).
    """

    screen: Size
    model: Size
    scale: float = 1.0

    @property
    def ratio_x(self) -> float:
        """Screen pixels per model pixel, horizontally."""
        return self.screen.width / self.model.width

    @property
    def ratio_y(self) -> float:
        """Screen pixels per model pixel, vertically."""
        return self.screen.height / self.model.height

    def to_screen(self, x: int, y: int) -> tuple[int, int]:
        """Model coordinate -> the screen pixel nearest the centre of that model pixel.

        The model image is a resized copy whose pixel m shows what is around screen position
        (m + 0.5) * ratio, so that is where a click on m must land: at most half a screen pixel away
        along each axis. Raises CoordinateError for coordinates outside the model image; they are
        never clamped. Integer arithmetic; `to_model(*to_screen(x, y)) == (x, y)` exactly when the
        model image is not larger than the screen (and screen -> model -> screen is exact when it is).
        """
        _check_inside(x, y, self.model, "model image")
        return _nearest(x, self.model.width, self.screen.width), _nearest(y, self.model.height, self.screen.height)

    def to_model(self, x: int, y: int) -> tuple[int, int]:
        """Screen pixel -> the model pixel that covers its centre."""
        _check_inside(x, y, self.screen, "screen")
        return _nearest(x, self.screen.width, self.model.width), _nearest(y, self.screen.height, self.model.height)

    def region_to_screen(self, region: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """Model-space region (x0, y0, x1, y1), x1/y1 exclusive -> screen region, same form."""
        x0, y0, x1, y1 = region
        if not (0 <= x0 < x1 <= self.model.width and 0 <= y0 < y1 <= self.model.height):
            raise CoordinateError(
                f"region {list(region)} must satisfy 0 <= x0 < x1 <= {self.model.width} "
                f"and 0 <= y0 < y1 <= {self.model.height} (the model image)"
            )
        return (
            int(x0 * self.ratio_x),
            int(y0 * self.ratio_y),
            min(self.screen.width, math.ceil(x1 * self.ratio_x)),
            min(self.screen.height, math.ceil(y1 * self.ratio_y)),
        )

    def to_points(self, x: int, y: int) -> tuple[float, float]:
        """Screen pixel -> logical point, for input APIs that work in points."""
        return x / self.scale, y / self.scale

    def from_points(self, x: float, y: float) -> tuple[int, int]:
        """Logical point -> screen pixel."""
        return round(x * self.scale), round(y * self.scale)


def _nearest(i: int, from_len: int, to_len: int) -> int:
    """The pixel of a `to_len` axis that contains the centre of pixel `i` of a `from_len` axis."""
    return (2 * i + 1) * to_len // (2 * from_len)


def check_on_screen(x: int, y: int, screen: Size) -> None:
    """Raise CoordinateError unless (x, y) is a pixel of `screen`."""
    _check_inside(x, y, screen, "screen")


def _check_inside(x: int, y: int, size: Size, name: str) -> None:
    if not (0 <= x < size.width and 0 <= y < size.height):
        raise CoordinateError(
            f"({x}, {y}) is outside the {name} of {size} "
            f"(x must be 0..{size.width - 1}, y 0..{size.height - 1})"
        )
