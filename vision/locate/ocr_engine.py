"""The OCR engine: rapidocr's bundled models in onnxruntime, reading a BGR image into words.

The engine uses only the ONNX models shipped inside the rapidocr wheel (never a download):
rapidocr's PP-OCR text detector finds the text lines, and the bundled recogniser runs in our own
onnxruntime session, so that every crop is padded only to its batch's width (rapidocr pads to
at least 320 columns, which triples the cost of short UI labels) and word boxes come straight
from the CTC character positions. The engine loads once per process, on first use.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vision.locate.find import Box, box_center

if TYPE_CHECKING:
    import numpy as np

    from vision.capture import Frame

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
        pixels = as_bgr(pixels)
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


def as_bgr(pixels: np.ndarray) -> np.ndarray:
    """`pixels` as a 3-channel BGR uint8 image (grey and BGRA are converted); ValueError otherwise."""
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


def pixels_of(image: Frame | np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The pixels of a frame or bare image, and their top-left screen pixel ((0, 0) for an image)."""
    pixels = getattr(image, "pixels", None)
    if pixels is not None:
        return pixels, tuple(image.origin)  # type: ignore[union-attr,return-value]
    return image, (0, 0)  # type: ignore[return-value]


def frame_box(pixels: np.ndarray, origin: tuple[int, int]) -> Box:
    """The screen box an image covers when its top-left pixel is `origin`."""
    return origin[0], origin[1], origin[0] + pixels.shape[1], origin[1] + pixels.shape[0]
