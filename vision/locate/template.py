"""Finding an image (a template) on the screen with OpenCV, at several scales.

Matching is normalised cross-correlation (TM_CCOEFF_NORMED) on grayscale, so a uniform change
of brightness does not matter. Places where the screen is flat under the template window score
0 (OpenCV divides by ~0 there and may return NaN, inf or noise), a template with no detail is
refused, and peaks are thinned by non-maximum suppression across all scales, so one on-screen
object is one match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vision.locate.find import Box, NotFound, box_center, check_region, choose, intersect, iou

if TYPE_CHECKING:
    import numpy as np

    from vision.capture import Frame

DEFAULT_SCALES = (1.0, 0.8, 0.9, 1.1, 1.25, 1.5)
FLAT_STD = 2.0  # a template (or screen window) whose gray levels vary less than this has no detail
_MAX_PEAKS = 200  # per scale, before non-maximum suppression
_NMS_IOU = 0.3


@dataclass(frozen=True)
class ImageMatch:
    """Where a template was found: box (screen pixels), score (-1..1), and the template's scale."""

    box: Box
    score: float
    scale: float

    @property
    def center(self) -> tuple[int, int]:
        """The pixel in the middle of the box: where to click."""
        return box_center(self.box)

    def describe(self) -> str:
        """`at [x0, y0, x1, y1] score S scale K`, for error messages."""
        return f"at {list(self.box)} score {self.score:.3f} scale {self.scale:g}"


def load_template(template: np.ndarray | str | Path) -> np.ndarray:
    """A template as a grayscale uint8 image, from pixels (gray, BGR or BGRA) or a file path."""
    import cv2
    import numpy as np

    if isinstance(template, (str, Path)):
        image = cv2.imread(str(template), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise FileNotFoundError(f"cannot read template image {str(template)!r}")
        template = image
    return _gray(np.asarray(template))


def _gray(pixels: np.ndarray) -> np.ndarray:
    import cv2
    import numpy as np

    if pixels.dtype != np.uint8:
        raise ValueError(f"image pixels must be uint8, got {pixels.dtype}")
    if pixels.ndim == 2:
        return pixels
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"image must be HxW, HxWx3 (BGR) or HxWx4, got shape {pixels.shape}")


def find_image(
    frame: Frame | np.ndarray,
    template_pixels: np.ndarray | str | Path,
    *,
    threshold: float = 0.9,
    region: Box | None = None,
    scales: Sequence[float] = DEFAULT_SCALES,
    index: int | None = None,
) -> list[ImageMatch]:
    """Find a template on a frame; matches ranked best first.

    `region` (x0, y0, x1, y1, screen pixels) restricts the search; `scales` are the template
    sizes tried. Several distinct matches at or above `threshold` without `index` raise
    AmbiguousMatch listing each (numbered in reading order, as `index` counts); none raises
    NotFound naming the best score seen. A uniform template raises ValueError.
    """
    import numpy as np

    template = load_template(template_pixels)
    if float(template.std()) < FLAT_STD:
        raise ValueError(
            f"the {template.shape[1]}x{template.shape[0]} template is uniform (no detail); "
            "it would match any flat area of that colour"
        )
    region = check_region(region)
    pixels = getattr(frame, "pixels", frame)
    origin = tuple(getattr(frame, "origin", (0, 0)))
    full = (origin[0], origin[1], origin[0] + pixels.shape[1], origin[1] + pixels.shape[0])
    area = full if region is None else intersect(region, full)
    what = f"image ({template.shape[1]}x{template.shape[0]})"
    if area is None:
        raise NotFound(f"{what} not found: region {list(region or ())} lies outside the frame")
    x0, y0, x1, y1 = area[0] - origin[0], area[1] - origin[1], area[2] - origin[0], area[3] - origin[1]
    search = np.ascontiguousarray(_gray(np.asarray(pixels)[y0:y1, x0:x1]))
    candidates: list[ImageMatch] = []
    best: ImageMatch | None = None
    tried = 0
    tables = _integrals(search)
    for scale in scales:
        found, top = _match_scale(search, tables, template, float(scale), threshold, (area[0], area[1]))
        if top is None:
            continue
        tried += 1
        candidates.extend(found)
        if best is None or top.score > best.score:
            best = top
    if tried == 0:
        raise NotFound(
            f"{what} not found: at every scale {list(scales)} the template is larger than the "
            f"{search.shape[1]}x{search.shape[0]} search area"
        )
    matches = _suppress(candidates)
    if not matches:
        assert best is not None
        raise NotFound(f"{what} not found (needs score >= {threshold:.2f}); best {best.describe()}", [best])
    return choose(matches, index=index, tied=lambda m: True, what=what, describe=ImageMatch.describe)


def _match_scale(
    search: np.ndarray,
    tables: tuple[np.ndarray, np.ndarray],
    template: np.ndarray,
    scale: float,
    threshold: float,
    offset: tuple[int, int],
) -> tuple[list[ImageMatch], ImageMatch | None]:
    """Peaks at one scale (screen boxes), and the best position even when below threshold."""
    import cv2
    import numpy as np

    th, tw = (max(1, round(n * scale)) for n in template.shape[:2])
    sh, sw = search.shape[:2]
    if tw > sw or th > sh or tw < 3 or th < 3:
        return [], None
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    same = (tw, th) == template.shape[1::-1]
    scaled = template if same else cv2.resize(template, (tw, th), interpolation=interpolation)
    if float(scaled.std()) < FLAT_STD:
        return [], None
    result = cv2.matchTemplate(search, scaled, cv2.TM_CCOEFF_NORMED)
    result = np.nan_to_num(result, nan=0.0, posinf=0.0, neginf=0.0)
    np.clip(result, -1.0, 1.0, out=result)
    result[_window_std(tables, tw, th) < FLAT_STD] = 0.0  # flat screen under the window
    ox, oy = offset

    def at(y: int, x: int) -> ImageMatch:
        return ImageMatch((ox + x, oy + y, ox + x + tw, oy + y + th), round(float(result[y, x]), 4), scale)

    top = at(*(int(v) for v in np.unravel_index(int(np.argmax(result)), result.shape)))
    kernel = np.ones((max(3, th // 2 | 1), max(3, tw // 2 | 1)), np.uint8)
    peaks = (result >= threshold) & (result >= cv2.dilate(result, kernel))
    ys, xs = np.nonzero(peaks)
    if len(ys) > _MAX_PEAKS:
        keep = np.argsort(result[ys, xs])[-_MAX_PEAKS:]
        ys, xs = ys[keep], xs[keep]
    return [at(int(py), int(px)) for py, px in zip(ys, xs, strict=True)], top


def _integrals(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Summed-area tables of the gray levels and of their squares."""
    import cv2

    s, s2 = cv2.integral2(gray, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
    return s, s2


def _window_std(tables: tuple[np.ndarray, np.ndarray], tw: int, th: int) -> np.ndarray:
    """Standard deviation of every tw x th window (indexed by its top-left corner)."""
    import numpy as np

    s, s2 = tables
    n = float(tw * th)

    def window_sum(table: np.ndarray) -> np.ndarray:
        return table[th:, tw:] - table[:-th, tw:] - table[th:, :-tw] + table[:-th, :-tw]

    mean = window_sum(s) / n
    variance = np.maximum(window_sum(s2) / n - mean * mean, 0.0)
    return np.sqrt(variance)


def _suppress(candidates: list[ImageMatch]) -> list[ImageMatch]:
    """Non-maximum suppression: the best of overlapping matches, whatever their scales."""
    kept: list[ImageMatch] = []
    for m in sorted(candidates, key=lambda m: (-m.score, abs(m.scale - 1.0))):
        if all(iou(m.box, k.box) <= _NMS_IOU and not _centre_inside(m, k) for k in kept):
            kept.append(m)
    return kept


def _centre_inside(a: ImageMatch, b: ImageMatch) -> bool:
    (ax, ay), (bx, by) = a.center, b.center
    return (b.box[0] <= ax < b.box[2] and b.box[1] <= ay < b.box[3]) or (
        a.box[0] <= bx < a.box[2] and a.box[1] <= by < a.box[3]
    )
