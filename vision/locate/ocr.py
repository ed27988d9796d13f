"""Text on the screen: OCR with rapidocr's bundled models, and finding words and phrases.

The engine uses only the ONNX models shipped inside the rapidocr wheel (never a download):
rapidocr's PP-OCR text detector finds the text lines, and the bundled recogniser runs in our own
onnxruntime session, so that every crop is padded only to its batch's width (rapidocr pads to
at least 320 columns, which triples the cost of short UI labels) and word boxes come straight
from the CTC character positions. The engine loads once per process, on first use.

Matching (`find_text`, `TextFinder.find_text`) works on words: a query of one or more words
matches a run of consecutive OCR words on one visual line, which may span several OCR boxes
(two labels side by side). By default case is ignored and OCR slips are tolerated: punctuation
is dropped, look-alikes (0/O, 1/l/I, 5/S, rn/m) are folded, and the score is
`1 - edit distance / length`; `exact=True` asks for the same words, case-sensitive, with only
punctuation at the run's outer edges ignored. A run that covers only part of an OCR line (the
"Save" of "Save as") scores 0.01 lower than a whole one, so the whole one wins.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vision.locate.find import (
    Box,
    NotFound,
    box_area,
    box_center,
    check_region,
    choose,
    inside,
    intersect,
    union,
)

if TYPE_CHECKING:
    import numpy as np

    from vision.capture import Frame

DEFAULT_MIN_SCORE = 0.8
PARTIAL_PENALTY = 0.01  # a run that is only part of its OCR line ranks below a whole line
DET_MAX_SIDE = 960  # the detector sees the image shrunk to this long side (1920x1080 -> 0.5) ...
DET_MIN_SCALE = 0.5  # ... but never below half size (9 px text is still found at 0.5)
MIN_LINE_CONFIDENCE = 0.5  # lines read with less mean character confidence are dropped
_REC_HEIGHT = 48
_MODEL_FILES = {
    "det": "PP-OCRv6_det_small.onnx",
    "rec": "PP-OCRv6_rec_small.onnx",
    "cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}
_line_ids = itertools.count(1)
_Char = tuple[str, float, float]  # a decoded character: (text, x in crop pixels, probability)


class OcrUnavailable(RuntimeError):
    """rapidocr/onnxruntime is missing, or its wheel lacks the bundled models."""


@dataclass(frozen=True)
class TextBox:
    """One word read on the screen: its text, box (screen pixels) and confidence (0..1).

    `line` identifies the OCR line the word was read in; words of one line share it.
    """

    text: str
    box: Box
    confidence: float
    line: int = 0

    @property
    def center(self) -> tuple[int, int]:
        """The pixel in the middle of the box."""
        return box_center(self.box)


@dataclass(frozen=True)
class TextMatch:
    """A word or phrase found on the screen.

    `box` is the union of the words it spans (screen pixels); `score` is the text similarity
    (1.0 for a perfect, whole-line match); `confidence` the OCR's mean confidence of its words.
    """

    text: str
    box: Box
    score: float
    confidence: float
    words: tuple[TextBox, ...] = ()

    @property
    def center(self) -> tuple[int, int]:
        """The pixel in the middle of the box: where to click."""
        return box_center(self.box)

    def describe(self) -> str:
        """`'text' at [x0, y0, x1, y1] score S confidence C`, for error messages."""
        return f"{self.text!r} at {list(self.box)} score {self.score:.2f} confidence {self.confidence:.2f}"


# --------------------------------------------------------------------------- engine


def model_paths() -> dict[str, Path]:
    """The bundled model files inside the installed rapidocr package (det, rec, cls).

    The files rapidocr 3.10 ships, or else the one `*det*`/`*rec*`/`*cls*` .onnx file of each
    kind that another 3.x wheel ships; a missing kind keeps its expected (absent) path.
    """
    try:
        import rapidocr
    except ImportError as exc:
        raise OcrUnavailable(f"rapidocr is not installed ({exc}); pip install rapidocr onnxruntime") from exc
    root = Path(rapidocr.__file__).resolve().parent / "models"
    paths = {}
    for kind, name in _MODEL_FILES.items():
        path = root / name
        if not path.is_file():
            found = sorted(root.glob(f"*{kind}*.onnx"))
            path = found[0] if len(found) == 1 else path
        paths[kind] = path
    return paths


class OcrEngine:
    """Detector plus recogniser; thread-safe. Use `get_engine()` for the shared instance.

    `det_max_side`: the detector sees the image shrunk to this long side (never below half
    size); recognition always reads full-resolution crops. `threads`: onnxruntime threads per
    call (default: $DESKPILOT_OCR_THREADS, else onnxruntime's choice, one per physical core).
    """

    def __init__(self, det_max_side: int = DET_MAX_SIDE, threads: int | None = None) -> None:
        import numpy as np
        import onnxruntime as ort
        from rapidocr import RapidOCR

        paths = model_paths()
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise OcrUnavailable(f"the rapidocr wheel lacks its bundled models: {', '.join(missing)}")
        threads = threads if threads is not None else int(os.environ.get("DESKPILOT_OCR_THREADS", "-1"))
        params: dict[str, Any] = {
            # Explicit model paths: rapidocr downloads a model only when no path is configured.
            "Det.model_path": str(paths["det"]),
            "Rec.model_path": str(paths["rec"]),
            "Cls.model_path": str(paths["cls"]),
            "Global.use_cls": False,  # screen text is upright
            "Global.use_rec": False,  # recognition runs in our own session, below
            "Global.log_level": "error",
            "Global.max_side_len": 100_000,  # never pre-shrink: boxes map back to full resolution
            "Det.limit_type": "max",
            "Det.limit_side_len": 100_000,  # we scale before detection (see `detect`)
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
        }
        self._det = RapidOCR(params=params)
        self._det_lock = threading.Lock()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 0:
            options.intra_op_num_threads = threads
        self._rec = ort.InferenceSession(str(paths["rec"]), options, providers=["CPUExecutionProvider"])
        meta = self._rec.get_modelmeta().custom_metadata_map
        if "character" not in meta:
            raise OcrUnavailable(f"{paths['rec']} carries no character table")
        self._chars = ["", *meta["character"].splitlines(), " "]  # CTC blank first, space last
        self._input = self._rec.get_inputs()[0].name
        self.paths = paths
        self.det_max_side = det_max_side
        # Warm both sessions so that the first real call pays no one-off set-up.
        self.detect(np.full((64, 256, 3), 255, np.uint8))
        self.recognize([np.full((32, 96, 3), 255, np.uint8)])

    def detect(self, pixels: np.ndarray) -> list[Box]:
        """Boxes (image pixels) of the text lines in a BGR image."""
        import cv2
        import numpy as np

        h, w = pixels.shape[:2]
        if h < 4 or w < 4:
            return []
        scale = min(1.0, max(DET_MIN_SCALE, self.det_max_side / max(h, w)))
        small = pixels
        if scale < 1.0:
            small = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        with self._det_lock:  # rapidocr keeps per-call state on the instance
            result = self._det(np.ascontiguousarray(small))
        quads = getattr(result, "boxes", None)
        if quads is None or len(quads) == 0:
            return []
        boxes = []
        for quad in np.asarray(quads, dtype=np.float64) / scale:
            x0, y0 = np.floor(quad.min(axis=0)).astype(int)
            x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
            box = (max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1)))
            if box[2] - box[0] >= 3 and box[3] - box[1] >= 5:
                boxes.append(box)
        return boxes

    def recognize(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float, list[_Char]]]:
        """Read line crops: per crop `(text, confidence, [(char, x in crop pixels, prob), ...])`."""
        import cv2
        import numpy as np

        widths = [max(8, math.ceil(_REC_HEIGHT * c.shape[1] / c.shape[0])) for c in crops]
        order = sorted(range(len(crops)), key=lambda i: widths[i])
        results: list[Any] = [None] * len(crops)
        start = 0
        while start < len(order):
            # Batches of similar widths: padding to the widest costs little.
            end = start + 1
            while end < len(order) and end - start < 16 and (end - start + 1) * widths[order[end]] <= 6000:
                end += 1
            batch_ids = order[start:end]
            width = widths[batch_ids[-1]]
            batch = np.zeros((len(batch_ids), 3, _REC_HEIGHT, width), np.float32)
            for k, i in enumerate(batch_ids):  # scaled to -1..1; the padding stays 0 (mid grey)
                resized = cv2.resize(crops[i], (widths[i], _REC_HEIGHT), interpolation=cv2.INTER_LINEAR)
                batch[k, :, :, : widths[i]] = resized.transpose(2, 0, 1) * (2.0 / 255.0) - 1.0
            preds = self._rec.run(None, {self._input: batch})[0]
            steps = preds.shape[1]
            ids, probs = preds.argmax(axis=2), preds.max(axis=2)
            for k, i in enumerate(batch_ids):
                results[i] = self._decode(ids[k], probs[k], width / steps * crops[i].shape[1] / widths[i])
            start = end
        return results

    def _decode(self, ids: np.ndarray, probs: np.ndarray, step_px: float) -> tuple[str, float, list]:
        chars = []
        previous = 0
        for t, (c, p) in enumerate(zip(ids.tolist(), probs.tolist(), strict=True)):
            if c != previous and c != 0 and c < len(self._chars):
                chars.append((self._chars[c], (t + 0.5) * step_px, float(p)))
            previous = c
        text = "".join(ch for ch, _, _ in chars)
        confidence = sum(p for _, _, p in chars) / len(chars) if chars else 0.0
        return text, confidence, chars

    def read(self, pixels: np.ndarray, origin: tuple[int, int] = (0, 0)) -> list[TextBox]:
        """Detect and read every text line of a BGR image; words in screen pixels."""
        pixels = _as_bgr(pixels)
        lines = self.detect(pixels)
        crops = [pixels[y0:y1, x0:x1] for x0, y0, x1, y1 in lines]
        words: list[TextBox] = []
        if not crops:
            return words
        ox, oy = origin
        for (x0, y0, x1, y1), (text, confidence, chars) in zip(lines, self.recognize(crops), strict=True):
            if not text.strip() or confidence < MIN_LINE_CONFIDENCE:
                continue
            line = next(_line_ids)
            for word, wx0, wx1, conf in _split_words(chars, x1 - x0):
                box = (ox + x0 + wx0, oy + y0, ox + x0 + wx1, oy + y1)
                words.append(TextBox(word, box, round(conf, 4), line))
        return words


_engine: OcrEngine | None = None
_engine_lock = threading.Lock()


def get_engine() -> OcrEngine:
    """The process-wide engine, loaded on first use (thread-safe, once)."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                try:
                    _engine = OcrEngine()
                except ImportError as exc:
                    raise OcrUnavailable(
                        f"OCR needs rapidocr and onnxruntime ({exc}); pip install rapidocr onnxruntime"
                    ) from exc
    return _engine


def load_engine() -> float:
    """Load the shared engine now; return the seconds it took (0 when it was loaded already)."""
    start = time.perf_counter()
    loaded = _engine is not None
    get_engine()
    return 0.0 if loaded else time.perf_counter() - start


def _as_bgr(pixels: np.ndarray) -> np.ndarray:
    import cv2
    import numpy as np

    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8, got {pixels.dtype}")
    if pixels.ndim == 2:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2BGR)
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        return pixels
    raise ValueError(f"pixels must be HxW, HxWx3 (BGR) or HxWx4, got shape {pixels.shape}")


def _split_words(chars: list[_Char], width: int) -> list[tuple[str, int, int, float]]:
    """Group decoded characters into words: `(word, x0, x1, confidence)` in line-crop pixels.

    Spaces split words, and so does a gap of more than four character pitches. Between two
    words one space apart the edge lies half-way between their facing characters; elsewhere
    0.6 pitch beyond the outer character. The first and last words reach the crop's edges.
    """
    positions = [x for ch, x, _ in chars if not ch.isspace()]
    gaps = sorted(b - a for a, b in itertools.pairwise(positions) if b > a)
    pitch = gaps[len(gaps) // 2] if gaps else width / max(1, len(chars))
    groups: list[list[_Char]] = [[]]
    for ch, x, p in chars:
        if ch.isspace():
            groups.append([])
        elif groups[-1] and x - groups[-1][-1][1] > max(4 * pitch, 4.0):
            groups.append([(ch, x, p)])
        else:
            groups[-1].append((ch, x, p))
    groups = [g for g in groups if g]
    edges = [0.0]  # edges[k] is the left edge of word k, edges[k + 1] - its right edge
    rights = []
    for before, after in itertools.pairwise(groups):
        end, start = before[-1][1], after[0][1]
        if start - end <= 2.2 * pitch:
            rights.append((end + start) / 2)
            edges.append((end + start) / 2)
        else:
            rights.append(end + 0.6 * pitch)
            edges.append(start - 0.6 * pitch)
    rights.append(float(width))
    words = []
    for group, left, right in zip(groups, edges, rights, strict=True):
        x0 = max(0, min(width - 1, round(left)))
        x1 = max(x0 + 1, min(width, round(right)))
        confidence = sum(p for _, _, p in group) / len(group)
        words.append(("".join(ch for ch, _, _ in group), x0, x1, confidence))
    return words


# --------------------------------------------------------------------------- reading


def ocr(image: Frame | np.ndarray, *, origin: tuple[int, int] | None = None) -> list[TextBox]:
    """Read the words of a frame or a BGR image; boxes in screen pixels.

    For a bare image, `origin` is its top-left screen pixel (default (0, 0)).
    """
    pixels, frame_origin = _pixels_of(image)
    return get_engine().read(pixels, origin if origin is not None else frame_origin)


def _pixels_of(image: Frame | np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    pixels = getattr(image, "pixels", None)
    if pixels is not None:
        return pixels, tuple(image.origin)  # type: ignore[union-attr,return-value]
    return image, (0, 0)  # type: ignore[return-value]


def _frame_box(pixels: np.ndarray, origin: tuple[int, int]) -> Box:
    return origin[0], origin[1], origin[0] + pixels.shape[1], origin[1] + pixels.shape[0]


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
    the closest text seen. No caching: use a TextFinder to look up repeatedly.
    """
    region = check_region(region)
    pixels, origin = _pixels_of(frame)
    area = _frame_box(pixels, origin) if region is None else intersect(region, _frame_box(pixels, origin))
    if area is None:
        raise NotFound(f"text {query!r}: region {list(region or ())} lies outside the frame")
    x0, y0, x1, y1 = (area[0] - origin[0], area[1] - origin[1], area[2] - origin[0], area[3] - origin[1])
    words = get_engine().read(pixels[y0:y1, x0:x1], (area[0], area[1]))
    return match_text(words, query, exact=exact, region=region, index=index, min_score=min_score)


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

    Changed pixels are found by diffing against the previous frame, in `tile`-pixel tiles;
    each changed area is padded, grown to cover every known word it touches (a word that
    changed in part is read again whole), read, and its words replace the old ones there.
    When more than `full_fraction` of the frame changed, or the frame's size or origin
    differ, the whole frame is read again. Thread-safe.
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

        pixels, origin = _pixels_of(frame)
        pixels = _as_bgr(pixels)
        with self._lock:
            engine = get_engine()
            previous = self._pixels
            if previous is None or previous.shape != pixels.shape or origin != self._origin:
                return self._read_all(engine, pixels, origin)
            h, w = pixels.shape[:2]
            diff = cv2.absdiff(previous, pixels).reshape(h, w * 3)
            changed_bytes = cv2.countNonZero(diff)
            if changed_bytes == 0:
                self.stats.reuses += 1
                self.stats.last_regions = []
                return list(self._words)
            if changed_bytes > self.full_fraction * h * w * 3:
                return self._read_all(engine, pixels, origin)
            points = cv2.findNonZero(diff).reshape(-1, 2)
            regions = self._dirty_regions(points[:, 0] // 3, points[:, 1], (h, w), origin)
            frame_area = pixels.shape[0] * pixels.shape[1]
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
        self.stats.last_regions = [_frame_box(pixels, origin)]
        self._pixels, self._origin, self._words = pixels.copy(), origin, words
        return list(words)

    def _dirty_regions(
        self, xs: np.ndarray, ys: np.ndarray, shape: tuple[int, int], origin: tuple[int, int]
    ) -> list[Box]:
        """Screen boxes covering the changed pixels (xs, ys), padded and grown over touched words."""
        import cv2
        import numpy as np

        t = self.tile
        tiles = np.zeros((-(-shape[0] // t), -(-shape[1] // t)), np.uint8)
        tiles[ys // t, xs // t] = 1
        count, labels = cv2.connectedComponents(tiles, connectivity=8)
        component = labels[ys // t, xs // t]
        px, py = self.pad
        ox, oy = origin
        frame = (ox, oy, ox + shape[1], oy + shape[0])
        regions: list[Box] = []
        for i in range(1, count):
            sel = component == i
            cx, cy = xs[sel], ys[sel]
            box = (ox + int(cx.min()) - px, oy + int(cy.min()) - py, ox + int(cx.max()) + 1 + px,
                   oy + int(cy.max()) + 1 + py)
            clipped = intersect(box, frame)
            if clipped is not None:
                regions.append(clipped)
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


# --------------------------------------------------------------------------- matching

_FOLD = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l", "5": "s", "8": "b"})


def strip_punctuation(text: str) -> str:
    """`text` without punctuation or symbols at either end."""
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start])[0] in "PS":
        start += 1
    while end > start and unicodedata.category(text[end - 1])[0] in "PS":
        end -= 1
    return text[start:end]


def normalize(text: str) -> str:
    """The comparison form of text for fuzzy matching: case-folded, punctuation and spaces
    removed, OCR look-alikes folded (0/o, 1/l/i, 5/s, 8/b, rn/m, vv/w)."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("rn", "m").replace("vv", "w")
    return "".join(ch for ch in folded.translate(_FOLD) if ch.isalnum())


def similarity(a: str, b: str, floor: float = 0.0) -> float:
    """`1 - edit distance / longer length` (1.0 for equal strings); 0.0 when below `floor`."""
    if a == b:
        return 1.0
    longest = max(len(a), len(b))
    if longest == 0:
        return 0.0
    budget = int((1.0 - floor) * longest + 1e-9)
    if abs(len(a) - len(b)) > budget:
        return 0.0
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > budget:
            return 0.0
        previous = current
    return max(0.0, 1.0 - previous[-1] / longest)


def _chains(words: Sequence[TextBox]) -> list[list[TextBox]]:
    """Words in visual lines: same baseline, left to right, split where the gap exceeds two
    text heights (a phrase never jumps across a column)."""
    rows: list[list[TextBox]] = []
    for word in sorted(words, key=lambda w: ((w.box[1] + w.box[3]) / 2, w.box[0])):
        h = word.box[3] - word.box[1]
        for row in rows[-3:]:
            ref = row[0].box
            rh = ref[3] - ref[1]
            if abs(word.box[3] - ref[3]) <= 0.35 * min(h, rh) and max(h, rh) <= 1.6 * min(h, rh):
                row.append(word)
                break
        else:
            rows.append([word])
    chains: list[list[TextBox]] = []
    for row in rows:
        row.sort(key=lambda w: w.box[0])
        chain = [row[0]]
        for word in row[1:]:
            prev = chain[-1]
            if word.box[0] - prev.box[2] > 2 * min(word.box[3] - word.box[1], prev.box[3] - prev.box[1]):
                chains.append(chain)
                chain = [word]
            else:
                chain.append(word)
        chains.append(chain)
    return chains


def match_text(
    words: Sequence[TextBox],
    query: str,
    *,
    exact: bool = False,
    region: Box | None = None,
    index: int | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
) -> list[TextMatch]:
    """Match `query` against OCR words (see `find_text` for the rules and errors)."""
    region = check_region(region)
    q_words = query.split()
    if not q_words:
        raise ValueError("the text to find is empty")
    what = f"text {query!r}" + (" (exact)" if exact else "")
    pool = [w for w in words if w.text.strip() and (region is None or inside(w.box, region))]
    scored = _score_runs(pool, query, exact=exact, floor=min_score)
    matches: list[TextMatch] = []
    used: set[int] = set()
    for m in scored:
        ids = {id(w) for w in m.words}
        if ids & used:
            continue  # overlaps a better match
        used |= ids
        matches.append(m)
    if not matches:
        # Again, loosely, only to name the closest text in the error.
        near = _score_runs(pool, query, exact=False, floor=min(min_score, 0.5))
        raise NotFound(_not_found_message(what, near, pool, region, min_score), _closest(near))
    best = matches[0].score
    return choose(matches, index=index, tied=lambda m: m.score >= best - 1e-9, what=what,
                  describe=TextMatch.describe)


def _score_runs(pool: Sequence[TextBox], query: str, *, exact: bool, floor: float) -> list[TextMatch]:
    """Every run of consecutive words (one to two words more or fewer than the query) that
    scores at least `floor`, ranked best first."""
    q_words = query.split()
    q_text, q_norm = " ".join(q_words), normalize(query)
    line_sizes: dict[int, int] = {}
    for w in pool:
        line_sizes[w.line] = line_sizes.get(w.line, 0) + 1
    norms = {id(w): normalize(w.text) for w in pool}
    scored: list[TextMatch] = []
    for chain in _chains(pool):
        for start in range(len(chain)):
            for length in range(max(1, len(q_words) - 2), len(q_words) + 3):
                run = chain[start:start + length]
                if len(run) < length:
                    break
                text = " ".join(w.text for w in run)
                if exact:
                    if len(run) != len(q_words) or q_text not in (text, strip_punctuation(text)):
                        continue
                    likeness = 1.0
                elif q_norm:
                    likeness = similarity("".join(norms[id(w)] for w in run), q_norm, floor=floor)
                else:  # a query of symbols only ("+", "..."): compare the symbols themselves
                    likeness = float("".join(w.text for w in run) == "".join(q_words))
                whole = sum(line_sizes[n] for n in {w.line for w in run}) == len(run)
                score = round(max(0.0, likeness - (0.0 if whole else PARTIAL_PENALTY)), 4)
                if likeness > 0.0 and score >= floor:
                    confidence = round(sum(w.confidence for w in run) / len(run), 4)
                    scored.append(TextMatch(text, union([w.box for w in run]), score, confidence, tuple(run)))
    scored.sort(key=lambda m: (-m.score, -m.confidence, len(m.words)))
    return scored


def _closest(scored: Sequence[TextMatch], limit: int = 5) -> list[TextMatch]:
    out: list[TextMatch] = []
    for m in scored:
        if all(m.text != o.text for o in out):
            out.append(m)
        if len(out) == limit:
            break
    return out


def _not_found_message(
    what: str, scored: Sequence[TextMatch], pool: Sequence[TextBox], region: Box | None, min_score: float
) -> str:
    where = f" in region {list(region)}" if region else ""
    if not pool:
        return f"{what} not found{where}: no text was read there"
    head = f"{what} not found{where} (needs score >= {min_score:.2f}; {len(pool)} words read)"
    closest = _closest(scored)
    if not closest:
        sample = ", ".join(repr(w.text) for w in pool[:12])
        return f"{head}; nothing similar. Some words seen: {sample}"
    return head + "; closest:\n" + "\n".join(f"  {m.describe()}" for m in closest)
