"""Resizing and encoding frames for the model, and the image-token estimate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from vision.geometry import Size

if TYPE_CHECKING:
    import numpy as np

ImageFormat = Literal["png", "jpeg", "webp"]
MEDIA_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


@dataclass(frozen=True)
class EncodedImage:
    """Encoded image bytes with their media type and pixel size."""

    data: bytes
    media_type: str
    size: Size

    def base64(self) -> str:
        """The bytes as base64 text, as the Messages API takes them."""
        import base64

        return base64.b64encode(self.data).decode("ascii")


def image_tokens(size: Size) -> int:
    """Claude's estimate of the tokens an image costs: width * height / 750."""
    return math.ceil(size.width * size.height / 750)


def resize(pixels: np.ndarray, size: Size) -> np.ndarray:
    """Resize BGR pixels to `size` (area averaging when shrinking, which keeps text legible)."""
    import cv2

    h, w = pixels.shape[:2]
    if (w, h) == (size.width, size.height):
        return pixels
    interpolation = cv2.INTER_AREA if size.width < w else cv2.INTER_CUBIC
    return cv2.resize(pixels, (size.width, size.height), interpolation=interpolation)


def encode(pixels: np.ndarray, fmt: ImageFormat = "png", quality: int = 85) -> EncodedImage:
    """Encode BGR pixels as PNG (lossless; no row filter and zlib level 1: fastest and, for
    screens, smallest, measured in benchmarks/step_overhead.py), JPEG or WebP (`quality` 1..100)."""
    import cv2

    if fmt not in MEDIA_TYPES:
        raise ValueError(f"image format must be one of {sorted(MEDIA_TYPES)}, got {fmt!r}")
    no_filter = [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE] if hasattr(cv2, "IMWRITE_PNG_FILTER") else []
    params = {
        "png": [cv2.IMWRITE_PNG_COMPRESSION, 1, *no_filter],
        "jpeg": [cv2.IMWRITE_JPEG_QUALITY, quality],
        "webp": [cv2.IMWRITE_WEBP_QUALITY, quality],
    }[fmt]
    ok, buffer = cv2.imencode("." + fmt, pixels, params)
    if not ok:
        raise ValueError(f"encoding a {pixels.shape} image as {fmt} failed")
    return EncodedImage(buffer.tobytes(), MEDIA_TYPES[fmt], Size(pixels.shape[1], pixels.shape[0]))


def encode_for_model(pixels: np.ndarray, size: Size, fmt: ImageFormat = "png") -> EncodedImage:
    """Resize to the model's image size and encode: exactly the image the model receives."""
    return encode(resize(pixels, size), fmt)


def decode(data: bytes) -> np.ndarray:
    """Decode PNG/JPEG/WebP bytes into BGR pixels."""
    import cv2
    import numpy as np

    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError("not a decodable image")
    return pixels
