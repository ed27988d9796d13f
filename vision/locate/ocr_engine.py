"""The OCR engine: a text detector and two recognisers in onnxruntime, reading a BGR image into words.

Every model is an ONNX file shipped inside a PyPI wheel (`ocr_models`; never a download):
PP-OCRv6's small detector finds the text lines (`ocr_detect`), and each line is read by a
recogniser (`ocr_recognize`): the *fast* one (PP-OCRv6 tiny, about 5x cheaper) to see what a
line says, the *accurate* one (PP-OCRv6 small) where the answer matters. `read` reads every line
accurately; a `TextFinder` (`ocr_cache`) reads only what a query needs.

The engine loads once per process; `preload()` starts loading it in a background thread, so a
command can do its set-up meanwhile and its first look-up finds the engine ready.
"""

from __future__ import annotations

import atexit
import itertools
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vision.locate.find import Box, box_center
from vision.locate.ocr_models import ModelFiles, OcrUnavailable, model_files, model_paths
from vision.locate.ocr_recognize import Reading, split_words

if TYPE_CHECKING:
    import numpy as np

    from vision.capture import Frame
    from vision.locate.ocr_detect import TextDetector
    from vision.locate.ocr_recognize import Recognizer

__all__ = ["Line", "OcrEngine", "OcrUnavailable", "TextBox", "as_bgr", "frame_box", "get_engine", "load_engine",
           "load_timeline", "model_paths", "pixels_of", "preload"]

MIN_LINE_CONFIDENCE = 0.5  # lines read with less mean character confidence are dropped
_line_ids = itertools.count(1)


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


@dataclass(eq=False)
class Line:
    """A detected text line (screen pixels) and what each recogniser has read there so far.

    `fast`/`accurate` are the line's words as each recogniser read them (None: not read yet;
    empty: nothing legible); `fast_latin`: the fast reading saw only Latin-script characters.
    `words` is the best reading there is.
    """

    box: Box
    id: int = field(default_factory=lambda: next(_line_ids))
    fast: tuple[TextBox, ...] | None = None
    accurate: tuple[TextBox, ...] | None = None
    fast_latin: bool = False

    @property
    def read(self) -> bool:
        """True once any recogniser has read the line."""
        return self.fast is not None or self.accurate is not None

    @property
    def words(self) -> tuple[TextBox, ...]:
        """The accurate reading when there is one, else the fast one, else nothing."""
        return self.accurate if self.accurate is not None else (self.fast or ())


class OcrEngine:
    """Detector plus fast and accurate recognisers; thread-safe. Use `get_engine()` for the shared one.

    `threads`: onnxruntime threads per call (default: $DESKPILOT_OCR_THREADS, else onnxruntime's
    choice, one per physical core). Without the fast model's wheel the accurate one reads for both.
    """

    def __init__(self, files: ModelFiles | None = None, threads: int | None = None) -> None:
        import numpy as np

        from vision.locate.ocr_detect import TextDetector
        from vision.locate.ocr_recognize import Recognizer

        files = files or model_files()
        threads = threads if threads is not None else int(os.environ.get("DESKPILOT_OCR_THREADS", "-1"))
        self.files = files
        self.paths = files.as_dict()
        self.detector: TextDetector = TextDetector(files.det, threads=threads)
        self.fast_detector: TextDetector | None = None
        if files.fast_det is not None:
            self.fast_detector = TextDetector(files.fast_det, threads=threads)
        self.accurate: Recognizer = Recognizer(files.rec, threads=threads)
        self.fast: Recognizer = self.accurate
        if files.fast_rec is not None:
            self.fast = Recognizer(files.fast_rec, files.fast_chars, threads=threads, latin_head=True)
        # Warm the sessions a look-up uses at the sizes a screen gives (a 1280x800 frame; a changed
        # area; a full batch of UI lines 17 px high; a monospaced line), so that the first real look-up
        # pays no one-off set-up (onnxruntime grows its buffers at the first call of each size; numpy's
        # FFT and rapidfuzz are imported): measured by benchmarks/ocr_find's fresh_process. The whole
        # fast model (non-Latin queries) is not warmed.
        self.detect(np.full((800, 1280, 3), 255, np.uint8))
        self.detector.detect(np.full((96, 480, 3), 255, np.uint8))  # a changed area, detected again
        line = np.full((17, 130, 3), 255, np.uint8)
        self.fast.recognize([line] * 16, latin=True)
        cells = np.full((22, 400, 3), 255, np.uint8)  # a monospaced-looking line: the narrow reading's path too
        for x in range(2, 396, 9):
            cells[6:16, x:x + 5] = 0
        self.fast.recognize([cells], narrow_monospace=True, latin=True)
        if self.accurate is not self.fast:
            self.accurate.recognize([line] * 4)

    def detect(self, pixels: np.ndarray, *, fine: bool = False) -> list[Box]:
        """Boxes (image pixels) of the text lines in a BGR image (`fine`: see TextDetector.detect).

        A whole screen (an image the detector shrinks) at the usual scale goes to the tiny detector
        when it ships: on a Tk form and an editor it found every line the small one finds, in about
        half the time; smaller images, and fine detections, go to the small one (the tiny one
        misses lone glyphs, such as a calculator's keys and display).
        """
        pixels = as_bgr(pixels)
        detector = self.detector
        if self.fast_detector is not None and not fine and detector.config.scale_for(*pixels.shape[:2]) < 1.0:
            detector = self.fast_detector
        return detector.detect(pixels, fine=fine)

    def read_lines(self, pixels: np.ndarray, origin: tuple[int, int], lines: Sequence[Line], *,
                   accurate: bool, latin: bool = False) -> None:
        """Read `lines` (screen boxes on the image whose top-left pixel is `origin`) with one
        recogniser, storing the words in each line's `fast` or `accurate` reading. The fast one reads
        monospaced lines narrower, and with `latin` only Latin-script characters
        (`Recognizer.recognize`)."""
        if not lines:
            return
        ox, oy = origin
        crops = [pixels[ln.box[1] - oy:ln.box[3] - oy, ln.box[0] - ox:ln.box[2] - ox] for ln in lines]
        recognizer = self.accurate if accurate else self.fast
        rough = recognizer is not self.accurate  # the fast model's reading (not one it stands in for)
        readings = recognizer.recognize(crops, narrow_monospace=rough, latin=latin and rough)
        for line, reading in zip(lines, readings, strict=True):
            words = line_words(line, reading)
            if not rough:
                line.accurate = words
            if not accurate:
                line.fast, line.fast_latin = words, latin and rough

    def lines(self, pixels: np.ndarray, origin: tuple[int, int] = (0, 0), *, fine: bool = False) -> list[Line]:
        """The text lines of a BGR image, detected but not read yet (screen pixels)."""
        ox, oy = origin
        return [Line((x0 + ox, y0 + oy, x1 + ox, y1 + oy))
                for x0, y0, x1, y1 in self.detect(pixels, fine=fine)]

    def read(self, pixels: np.ndarray, origin: tuple[int, int] = (0, 0), *, fine: bool = False
             ) -> list[TextBox]:
        """Detect and read every text line of a BGR image accurately; words in screen pixels."""
        pixels = as_bgr(pixels)
        lines = self.lines(pixels, origin, fine=fine)
        self.read_lines(pixels, origin, lines, accurate=True)
        return [w for line in lines for w in line.words]


def line_words(line: Line, reading: Reading) -> tuple[TextBox, ...]:
    """The words of one line's reading, in screen pixels (none when it is illegible)."""
    if not reading.text.strip() or reading.confidence < MIN_LINE_CONFIDENCE:
        return ()
    x0, y0, x1, y1 = line.box
    return tuple(TextBox(word, (x0 + wx0, y0, x0 + wx1, y1), round(conf, 4), line.id)
                 for word, wx0, wx1, conf in split_words(reading.chars, x1 - x0))


@dataclass
class _LoadState:
    engine: OcrEngine | None = None
    error: BaseException | None = None
    requested_at: float | None = None  # time.monotonic() when loading began
    loaded_at: float | None = None
    first_use_at: float | None = None  # the first get_engine() call from a caller (not the preloader)
    waited_s: float = 0.0  # time callers spent waiting for the load
    load_s: float = 0.0


_state = _LoadState()
_engine_lock = threading.Lock()
_PRELOADER = "deskpilot-ocr-preload"


def _load() -> OcrEngine:
    """Load under the lock (once); re-raise a failed load's error as OcrUnavailable."""
    with _engine_lock:
        if _state.engine is None:
            _state.requested_at = _state.requested_at or time.monotonic()
            start = time.monotonic()
            try:
                _state.engine = OcrEngine()
            except ImportError as exc:
                raise OcrUnavailable(f"OCR needs onnxruntime and opencv ({exc}); pip install onnxruntime") from exc
            from vision.locate.text_match import similarity  # here, not at import: text_match imports this module

            similarity("warm", "up")  # imports rapidfuzz, which the first look-up's matching needs
            _state.load_s = time.monotonic() - start
            _state.loaded_at = time.monotonic()
        return _state.engine


def get_engine() -> OcrEngine:
    """The process-wide engine, loaded on first use (thread-safe, once); waits for a preload in progress."""
    engine = _state.engine
    if threading.current_thread().name != _PRELOADER:
        now = time.monotonic()
        if _state.first_use_at is None:
            _state.first_use_at = now
        if engine is None:
            engine = _load()
            _state.waited_s += time.monotonic() - now
    return engine if engine is not None else _load()


def preload() -> None:
    """Start loading the engine in a background thread (no-op when loaded or loading); never raises.

    A failed load is not reported here: the next `get_engine()` tries again and raises.
    """
    if _state.engine is not None or _state.requested_at is not None:
        return
    _state.requested_at = time.monotonic()

    def load() -> None:
        try:
            _load()
        except Exception as exc:  # noqa: BLE001 - reported by the caller's own get_engine()
            _state.error = exc

    loader = threading.Thread(target=load, name=_PRELOADER, daemon=True)
    # A process that ends while onnxruntime is still building a session aborts ("terminate called
    # without an active exception"): at exit, let the load finish first (it takes well under 2 s).
    atexit.register(loader.join, 30)
    loader.start()


def load_engine() -> float:
    """Load the shared engine now; return the seconds it took (0 when it was loaded already)."""
    start = time.perf_counter()
    loaded = _state.engine is not None
    get_engine()
    return 0.0 if loaded else time.perf_counter() - start


def load_timeline() -> dict[str, float | None]:
    """When the engine's load began and ended, when a caller first wanted it and how long callers
    waited for it (time.monotonic() seconds), and how long the load itself took."""
    return {"requested_at": _state.requested_at, "loaded_at": _state.loaded_at,
            "first_use_at": _state.first_use_at, "waited_s": round(_state.waited_s, 4),
            "load_s": round(_state.load_s, 4)}


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


def pixels_of(image: Frame | np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The pixels of a frame or bare image, and their top-left screen pixel ((0, 0) for an image)."""
    pixels = getattr(image, "pixels", None)
    if pixels is not None:
        return pixels, tuple(image.origin)  # type: ignore[union-attr,return-value]
    return image, (0, 0)  # type: ignore[return-value]


def frame_box(pixels: np.ndarray, origin: tuple[int, int]) -> Box:
    """The screen box an image covers when its top-left pixel is `origin`."""
    return origin[0], origin[1], origin[0] + pixels.shape[1], origin[1] + pixels.shape[0]
