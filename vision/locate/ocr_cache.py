"""OCR with memory: a TextFinder keeps the last frame's text lines, re-detects only what changed,
and reads only the lines a query needs (`ocr_plan`)."""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vision.diff import changed_pixels, changed_tiles
from vision.locate.find import Box, box_area, check_region, inside, intersect, iou, union
from vision.locate.ocr_engine import Line, OcrEngine, TextBox, as_bgr, frame_box, get_engine, pixels_of
from vision.locate.ocr_plan import could_hold, needs_fine_detection, to_confirm
from vision.locate.text_match import DEFAULT_MIN_SCORE, TextMatch, match_text

if TYPE_CHECKING:
    import numpy as np

    from vision.capture import Frame

BACKGROUND_CHUNK = 8  # lines the background reader reads at a time (a look-up waits at most for one chunk)
_workers: set[threading.Thread] = set()
_closing = threading.Event()


def _stop_background_readers() -> None:
    """At exit: let running background readers finish their chunk and stop (a thread still inside
    onnxruntime when the interpreter ends would abort the process)."""
    _closing.set()
    for worker in list(_workers):
        worker.join(timeout=10)


atexit.register(_stop_background_readers)


@dataclass
class OcrStats:
    """What a TextFinder has done: detections (`ocr_calls`, over `ocr_pixels`; full and partial),
    reuses of an unchanged frame, and lines read by each recogniser (in look-ups and in the background)."""

    ocr_calls: int = 0
    ocr_pixels: int = 0
    full_reads: int = 0
    partial_reads: int = 0
    reuses: int = 0
    last_regions: list[Box] = field(default_factory=list)
    lines_fast: int = 0
    lines_accurate: int = 0
    lines_background: int = 0
    lines_deferred: int = 0  # left unread by a look-up (their row could not hold the query)
    fine_detections: int = 0  # frames detected again at the fine scale, for a short query


class TextFinder:
    """OCR with memory: keeps the last frame's text lines and what was read there; for the next
    frame, detects again only the parts that changed. A look-up reads only the lines its query
    needs; the lines it skipped are read afterwards in a background thread (`background=True`).
    A query of Latin-script text has lines read for Latin-script characters only (faster); a
    later query with other characters has those lines read again whole.

    Changed pixels are found by diffing against the previous frame (`vision.diff`), grouped in
    `tile`-pixel tiles; each changed area is padded by `pad` (x, y), grown to cover every known
    line it touches (a line that changed in part is detected and read again whole), and its
    lines replace the old ones there. When more than `full_fraction` of the frame changed, or the
    frame's size or origin differ, the whole frame is detected again. Thread-safe.
    """

    def __init__(self, *, tile: int = 16, pad: tuple[int, int] = (24, 8), full_fraction: float = 0.4,
                 background: bool = True) -> None:
        self.tile = tile
        self.pad = pad
        self.full_fraction = full_fraction
        self.background = background
        self.stats = OcrStats()
        self._lock = threading.Lock()
        self._waiting = 0  # look-ups waiting for the lock: the background reader gives way
        self._count_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._pixels: np.ndarray | None = None
        self._origin: tuple[int, int] = (0, 0)
        self._lines: list[Line] = []
        self._fine = False  # the lines come from a fine detection
        self._latin = True  # the last query was Latin-script text: so are the background's readings

    def reset(self) -> None:
        """Forget the cached frame and lines."""
        with self._locked():
            self._pixels, self._lines = None, []

    def read(self, frame: Frame | np.ndarray) -> list[TextBox]:
        """Every word on the frame (screen pixels), read accurately, reusing what is unchanged."""
        with self._locked():
            engine = self._update(frame)
            assert self._pixels is not None
            todo = [ln for ln in self._lines if ln.accurate is None]
            engine.read_lines(self._pixels, self._origin, todo, accurate=True)
            self.stats.lines_accurate += len(todo)
            return [w for ln in self._lines for w in ln.words]

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
        """Find `query` on the frame, reading only the lines it needs; the rules and errors of
        `text_match.match_text`. `region` (screen pixels) limits the search: lines outside it are
        not read for this look-up."""
        region = check_region(region)
        if not query.split():
            raise ValueError("the text to find is empty")
        with self._locked():
            engine = self._update(frame)
            assert self._pixels is not None
            if not self._fine and needs_fine_detection(query, exact=exact, min_score=min_score):
                self._detect_fine(engine)
            pool = [ln for ln in self._lines if region is None or intersect(ln.box, region)]
            latin = self._latin = engine.fast.reads_latin(query)
            wanted = [ln for ln in could_hold(pool, query, exact=exact, min_score=min_score)
                      if not ln.read or (ln.fast_latin and not latin and ln.accurate is None)]
            engine.read_lines(self._pixels, self._origin, wanted, accurate=False, latin=latin)
            self.stats.lines_fast += len(wanted)
            self.stats.lines_deferred += sum(1 for ln in pool if not ln.read)
            confirm = to_confirm(pool, query, exact=exact, min_score=min_score)
            engine.read_lines(self._pixels, self._origin, confirm, accurate=True)
            self.stats.lines_accurate += len(confirm)
            words = [w for ln in pool for w in ln.words]
        self._read_rest_later()
        return match_text(words, query, exact=exact, region=region, index=index, min_score=min_score)

    def wait_background(self, timeout: float | None = None) -> bool:
        """Wait until the background reader is done; True when it is."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            return not worker.is_alive()
        return True

    # --- internals --------------------------------------------------------------------------
    def _locked(self) -> _Priority:
        return _Priority(self)

    def _update(self, frame: Frame | np.ndarray) -> OcrEngine:
        """Bring the cached lines up to date with `frame` (detection only; nothing is read)."""
        import cv2

        engine = get_engine()
        pixels, origin = pixels_of(frame)
        pixels = as_bgr(pixels)
        previous = self._pixels
        if previous is None or previous.shape != pixels.shape or origin != self._origin:
            return self._detect_all(engine, pixels, origin)
        changed = changed_pixels(previous, pixels)
        changed_count = cv2.countNonZero(changed)
        if changed_count == 0:
            self.stats.reuses += 1
            self.stats.last_regions = []
            return engine
        frame_area = pixels.shape[0] * pixels.shape[1]
        if changed_count > self.full_fraction * frame_area:
            return self._detect_all(engine, pixels, origin)
        regions = self._regions_to_read(changed, origin)
        if sum(box_area(r) for r in regions) > self.full_fraction * frame_area:
            return self._detect_all(engine, pixels, origin)
        # Lines centred in a changed region are detected again; new lines count only where they are
        # centred in their region and are not a kept line seen again (line boxes of adjacent rows overlap).
        kept = [ln for ln in self._lines if not any(inside(ln.box, r) for r in regions)]
        for r in regions:
            x0, y0, x1, y1 = r[0] - origin[0], r[1] - origin[1], r[2] - origin[0], r[3] - origin[1]
            found = engine.lines(pixels[y0:y1, x0:x1], (r[0], r[1]), fine=self._fine)
            kept.extend(ln for ln in found
                        if inside(ln.box, r) and not any(iou(ln.box, k.box) > 0.5 for k in kept))
            self.stats.ocr_calls += 1
            self.stats.ocr_pixels += box_area(r)
        self.stats.partial_reads += 1
        self.stats.last_regions = list(regions)
        self._pixels, self._lines = pixels.copy(), kept
        return engine

    def _detect_all(self, engine: OcrEngine, pixels: np.ndarray, origin: tuple[int, int]) -> OcrEngine:
        self._lines, self._fine = engine.lines(pixels, origin), False
        self.stats.ocr_calls += 1
        self.stats.ocr_pixels += pixels.shape[0] * pixels.shape[1]
        self.stats.full_reads += 1
        self.stats.last_regions = [frame_box(pixels, origin)]
        self._pixels, self._origin = pixels.copy(), origin
        return engine

    def _detect_fine(self, engine: OcrEngine) -> None:
        """Detect the current frame again at the fine scale (lone small glyphs); lines found both
        times keep what was read there."""
        assert self._pixels is not None
        lines = engine.lines(self._pixels, self._origin, fine=True)
        for line in lines:
            same = max(self._lines, key=lambda old: iou(old.box, line.box), default=None)
            if same is not None and iou(same.box, line.box) >= 0.8:
                line.box, line.id, line.fast, line.accurate = same.box, same.id, same.fast, same.accurate
        self._lines, self._fine = lines, True
        self.stats.ocr_calls += 1
        self.stats.ocr_pixels += self._pixels.shape[0] * self._pixels.shape[1]
        self.stats.fine_detections += 1

    def _regions_to_read(self, changed: np.ndarray, origin: tuple[int, int]) -> list[Box]:
        """Screen boxes to detect again: the padded changed tiles, each grown once over the lines it
        touches (so a line that changed in part is detected whole), overlapping ones merged."""
        ox, oy = origin
        regions = [(x0 + ox, y0 + oy, x1 + ox, y1 + oy)
                   for x0, y0, x1, y1 in changed_tiles(changed, tile=self.tile, pad=self.pad)]
        grown = [union([r, *(ln.box for ln in self._lines if intersect(ln.box, r))]) for r in regions]
        while True:  # merge until no two overlap (growing once: adjacent rows' boxes overlap, no cascade)
            merged: list[Box] = []
            for r in grown:
                for k, m in enumerate(merged):
                    if intersect(r, m):
                        merged[k] = union([r, m])
                        break
                else:
                    merged.append(r)
            if len(merged) == len(grown):
                return merged
            grown = merged

    def _read_rest_later(self) -> None:
        """Start the background reader when some lines are still unread."""
        if not self.background or (self._worker is not None and self._worker.is_alive()):
            return
        if all(ln.read for ln in self._lines):
            return
        if _closing.is_set():
            return
        self._worker = threading.Thread(target=self._read_rest, name="deskpilot-ocr-background", daemon=True)
        _workers.add(self._worker)
        self._worker.start()

    def _read_rest(self) -> None:
        """Fast-read the unread lines of the current frame, a chunk at a time, giving way to look-ups."""
        try:
            while not _closing.is_set():
                while self._waiting:
                    time.sleep(0.005)
                with self._lock:
                    chunk = _unread(self._lines)[:BACKGROUND_CHUNK]
                    if not chunk or self._pixels is None:
                        return
                    get_engine().read_lines(self._pixels, self._origin, chunk, accurate=False, latin=self._latin)
                    self.stats.lines_background += len(chunk)
        finally:
            _workers.discard(threading.current_thread())


def _unread(lines: Sequence[Line]) -> list[Line]:
    return [ln for ln in lines if not ln.read]


class _Priority:
    """The finder's lock, taken by a look-up: counts it as waiting so that the background reader yields."""

    def __init__(self, finder: TextFinder) -> None:
        self.finder = finder

    def __enter__(self) -> None:
        with self.finder._count_lock:
            self.finder._waiting += 1
        self.finder._lock.acquire()
        with self.finder._count_lock:
            self.finder._waiting -= 1

    def __exit__(self, *exc: object) -> None:
        self.finder._lock.release()
