"""Text on the screen, the front door: read a frame's words once, or find a word or phrase on it.

The modules that do the work, whose public names are re-exported here for callers:
`ocr_engine` (the detector and recognisers in onnxruntime: image to lines and words; models from
`ocr_models`, the wheels that ship them), `text_match` (a query against words: normalising,
similarity, runs of words, the not-found message), `ocr_plan` (which lines a query needs read)
and `ocr_cache` (`TextFinder`: OCR with memory, reading only the lines a query needs and only
the parts of a frame that changed). `ocr` reads everything afresh; `find_text` here is a
one-off TextFinder look-up; use one TextFinder to look up repeatedly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vision.capture import Frame
from vision.locate.find import Box, NotFound, check_region, intersect
from vision.locate.ocr_cache import TextFinder
from vision.locate.ocr_engine import (
    OcrUnavailable,
    TextBox,
    frame_box,
    get_engine,
    load_engine,
    model_paths,
    pixels_of,
    preload,
)
from vision.locate.text_match import DEFAULT_MIN_SCORE, TextMatch, match_text

if TYPE_CHECKING:
    import numpy as np

__all__ = [  # what callers use; the rest lives in the three modules above
    "DEFAULT_MIN_SCORE", "NotFound", "OcrUnavailable", "TextBox", "TextFinder", "TextMatch", "find_text",
    "get_engine", "load_engine", "match_text", "model_paths", "ocr", "preload",
]


def ocr(image: Frame | np.ndarray, *, origin: tuple[int, int] | None = None) -> list[TextBox]:
    """Read the words of a frame or a BGR image; boxes in screen pixels.

    For a bare image, `origin` is its top-left screen pixel (default (0, 0)).
    """
    pixels, frame_origin = pixels_of(image)
    return get_engine().read(pixels, origin if origin is not None else frame_origin)


def find_text(
    frame: Frame | np.ndarray,
    query: str,
    *,
    exact: bool = False,
    region: Box | None = None,
    index: int | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
) -> list[TextMatch]:
    """Find `query` (a word or phrase) on a frame; matches ranked best first.

    `region` (x0, y0, x1, y1, screen pixels) restricts the search, and only that part is read.
    `index` picks the n-th match in reading order and returns just it. Without `index`, several
    matches of equal best score raise AmbiguousMatch listing each; none raises NotFound naming
    the closest text seen (the rules of `text_match.match_text`). No caching: use a TextFinder
    to look up repeatedly.
    """
    region = check_region(region)
    pixels, origin = pixels_of(frame)
    area = frame_box(pixels, origin) if region is None else intersect(region, frame_box(pixels, origin))
    if area is None:
        raise NotFound(f"text {query!r}: region {list(region or ())} lies outside the frame")
    x0, y0, x1, y1 = (area[0] - origin[0], area[1] - origin[1], area[2] - origin[0], area[3] - origin[1])
    finder = TextFinder(background=False)
    return finder.find_text(Frame(pixels[y0:y1, x0:x1], (area[0], area[1])), query, exact=exact, region=region,
                            index=index, min_score=min_score)
