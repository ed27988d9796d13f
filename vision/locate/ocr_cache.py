"""OCR with memory: a TextFinder keeps the last frame's words and re-reads only what changed."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vision.diff import changed_pixels, changed_tiles
from vision.locate.find import Box, box_area, intersect, union
from vision.locate.ocr_engine import OcrEngine, TextBox, as_bgr, frame_box, get_engine, pixels_of
from vision.locate.text_match import DEFAULT_MIN_SCORE, TextMatch, match_text

if TYPE_CHECKING:
    import numpy as np

    from vision.capture import Frame


@dataclass
class OcrStats:
    """What a TextFinder has read: OCR calls and pixels, full and partial re-reads, reuses."""

    ocr_calls: int = 0
    ocr_pixels: int = 0
    full_reads: int = 0
    partial_reads: int = 0
    reuses: int = 0
    last_regions: list[Box] = field(default_factory=list)


class TextFinder:
    """OCR with memory: keeps the last frame's words and, for the next frame, re-reads only
    the parts that changed. A look-up on an unchanged frame costs no OCR at all.

    Changed pixels are found by diffing against the previous frame (`vision.diff`), grouped in
    `tile`-pixel tiles; each changed area is padded by `pad` (x, y), grown to cover every known
    word it touches (a word that changed in part is read again whole), read, and its words
    replace the old ones there. When more than `full_fraction` of the frame changed, or the
    frame's size or origin differ, the whole frame is read again. Thread-safe.
    """

    def __init__(self, *, tile: int = 16, pad: tuple[int, int] = (24, 8), full_fraction: float = 0.4) -> None:
        self.tile = tile
        self.pad = pad
        self.full_fraction = full_fraction
        self.stats = OcrStats()
        self._lock = threading.Lock()
        self._pixels: np.ndarray | None = None
        self._origin: tuple[int, int] = (0, 0)
        self._words: list[TextBox] = []

    def reset(self) -> None:
        """Forget the cached frame and words."""
        with self._lock:
            self._pixels, self._words = None, []

    def read(self, frame: Frame | np.ndarray) -> list[TextBox]:
        """Every word on the frame (screen pixels), reusing what is unchanged since the last call."""
        import cv2

        pixels, origin = pixels_of(frame)
        pixels = as_bgr(pixels)
        with self._lock:
            engine = get_engine()
            previous = self._pixels
            if previous is None or previous.shape != pixels.shape or origin != self._origin:
                return self._read_all(engine, pixels, origin)
            changed = changed_pixels(previous, pixels)
            changed_count = cv2.countNonZero(changed)
            if changed_count == 0:
                self.stats.reuses += 1
                self.stats.last_regions = []
                return list(self._words)
            frame_area = pixels.shape[0] * pixels.shape[1]
            if changed_count > self.full_fraction * frame_area:
                return self._read_all(engine, pixels, origin)
            regions = self._regions_to_read(changed, origin)
            if sum(box_area(r) for r in regions) > self.full_fraction * frame_area:
                return self._read_all(engine, pixels, origin)
            kept = [w for w in self._words if not any(intersect(w.box, r) for r in regions)]
            for r in regions:
                x0, y0, x1, y1 = r[0] - origin[0], r[1] - origin[1], r[2] - origin[0], r[3] - origin[1]
                kept.extend(engine.read(pixels[y0:y1, x0:x1], (r[0], r[1])))
                self.stats.ocr_calls += 1
                self.stats.ocr_pixels += box_area(r)
            self.stats.partial_reads += 1
            self.stats.last_regions = list(regions)
            self._pixels, self._words = pixels.copy(), kept
            return list(kept)

    def find_text(
        self,
        frame: Frame | np.ndarray,
        query: str,
        *,
        exact: bool = False,
        region: Box | None = None,
        index: int | None = None,
        min_score: float = DEFAULT_MIN_SCORE,
    ) -> list[TextMatch]:
        """`find_text` over the whole frame's (cached) words; same rules and errors."""
        words = self.read(frame)
        return match_text(words, query, exact=exact, region=region, index=index, min_score=min_score)

    def _read_all(self, engine: OcrEngine, pixels: np.ndarray, origin: tuple[int, int]) -> list[TextBox]:
        words = engine.read(pixels, origin)
        self.stats.ocr_calls += 1
        self.stats.ocr_pixels += pixels.shape[0] * pixels.shape[1]
        self.stats.full_reads += 1
        self.stats.last_regions = [frame_box(pixels, origin)]
        self._pixels, self._origin, self._words = pixels.copy(), origin, words
        return list(words)

    def _regions_to_read(self, changed: np.ndarray, origin: tuple[int, int]) -> list[Box]:
        """Screen boxes to read again: the padded changed tiles, grown over the words they touch."""
        ox, oy = origin
        regions = [(x0 + ox, y0 + oy, x1 + ox, y1 + oy)
                   for x0, y0, x1, y1 in changed_tiles(changed, tile=self.tile, pad=self.pad)]
        # Grow over touched words and merge overlapping regions until nothing changes.
        while True:
            grown = []
            for r in regions:
                touched = [wd.box for wd in self._words if intersect(wd.box, r)]
                grown.append(union([r, *touched]))
            merged: list[Box] = []
            for r in grown:
                for k, m in enumerate(merged):
                    if intersect(r, m):
                        merged[k] = union([r, m])
                        break
                else:
                    merged.append(r)
            if merged == regions:
                return regions
            regions = merged
