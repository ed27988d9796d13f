"""Text line recognition: a PP-OCR CTC recogniser in onnxruntime, and splitting a line into words.

Crops are scaled to the model's 48-pixel height and batched by width, each padded only to its
batch's widest crop (rapidocr pads every crop to at least 320 columns, which triples the cost
of short UI labels); the cost is about proportional to the columns read. A monospaced line can be
read narrower, checked by its character count (`ocr_pitch`), and a Latin-script reading can use a
classifier cut down to Latin characters (`ocr_head`). Word boxes come from the CTC character
positions.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vision.locate.ocr_head import WireError, latin_subset, restrict_classifier
from vision.locate.ocr_models import open_session
from vision.locate.ocr_pitch import Cells, monospace_cells

if TYPE_CHECKING:
    import numpy as np

HEIGHT = 48
BATCH_LINES = 16  # measured: 16 crops or 6000 columns a batch beat 1, 4 and 64 crops on 2 cores
BATCH_COLUMNS = 6000
CELL_COLUMNS = 14  # columns a monospaced character is read at (usually 17-20). Measured: on an editor 11 and 12
# let substitutions through that the count check cannot see (m read as n, l as i), 13 none; on a terminal's
# listing 13 read 5 lines worse than full width ("." as " ", "w" as "W"), 14 one, and fewer errors overall
OUTER_MARGIN = 1.0  # pitches between a line's outer characters (their CTC positions) and its word edges
Char = tuple[str, float, float]  # a decoded character: (text, x in crop pixels, probability)


@dataclass(frozen=True)
class Reading:
    """One line crop read: its text, mean character confidence, and the characters with positions."""

    text: str
    confidence: float
    chars: tuple[Char, ...] = ()


class Recognizer:
    """Reads line crops with one recognition model; thread-safe.

    `chars`: the model's character table (one per line of a file), or None to take it from the
    model's metadata (`character`), as rapidocr's models carry it. `latin_head`: keep a second
    session whose classifier scores only the characters of Latin-script text (`ocr_head`), for
    `recognize(latin=True)`.
    """

    def __init__(self, model: Path, chars: Path | None = None, threads: int = -1, *,
                 latin_head: bool = False) -> None:
        import numpy as np

        self.model = model
        self._session = open_session(model, threads)
        if chars is not None:
            table = chars.read_text(encoding="utf-8").splitlines()
        else:
            meta = self._session.get_modelmeta().custom_metadata_map
            if "character" not in meta:
                raise ValueError(f"{model} carries no character table")
            table = meta["character"].splitlines()
        self._chars = ["", *table, " "]  # CTC blank first, space last
        self._input = self._session.get_inputs()[0].name
        latin_ids = latin_subset(self._chars)
        self._latin_chars = frozenset(self._chars[i] for i in latin_ids)
        self._latin_ids = np.asarray(latin_ids)
        restricted = None
        if latin_head:
            with contextlib.suppress(WireError):  # a file this reader cannot edit: the whole model reads
                restricted = restrict_classifier(model, latin_ids)
        self._latin_session = open_session(restricted, threads) if restricted is not None else None
        self.narrowed = 0  # lines read narrower and kept (counters, for benchmarks)
        self.read_again = 0  # lines read narrower whose character count was off, read again

    def reads_latin(self, text: str) -> bool:
        """True when a Latin-only reading (`recognize(latin=True)`) can show every character of `text`."""
        return all(ch in self._latin_chars for ch in text if not ch.isspace())

    def columns(self, crop_shape: tuple[int, ...]) -> int:
        """How many input columns a crop of this shape costs (the work is about proportional)."""
        return max(8, math.ceil(HEIGHT * crop_shape[1] / max(1, crop_shape[0])))

    def recognize(self, crops: Sequence[np.ndarray], *, narrow_monospace: bool = False,
                  latin: bool = False) -> list[Reading]:
        """Read BGR line crops; one Reading per crop, in order.

        `latin`: read only the characters of Latin-script text (letters, digits, punctuation and
        symbols; `ocr_head.latin_subset`), faster, with confidences among those characters.

        `narrow_monospace`: read lines of monospaced text (`ocr_pitch`) at CELL_COLUMNS columns a
        character, and keep such a reading only when it has one character per cell; the other
        lines, and those whose count is off, are read at the usual width.
        """
        widths = [self.columns(c.shape) for c in crops]
        narrow: dict[int, Cells] = {}
        if narrow_monospace:
            for i, crop in enumerate(crops):
                cells = monospace_cells(crop)
                if cells is None:
                    continue
                width = math.ceil(crop.shape[1] * CELL_COLUMNS / cells.pitch)
                if width < widths[i]:
                    narrow[i], widths[i] = cells, width
        readings = self._read(crops, widths, latin)
        again = [i for i, cells in narrow.items() if len(readings[i].text) != cells.count]
        if again:
            for i, reading in zip(again, self._read([crops[i] for i in again],
                                                    [self.columns(crops[i].shape) for i in again], latin),
                                         strict=True):
                readings[i] = reading
        self.narrowed += len(narrow) - len(again)
        self.read_again += len(again)
        return readings

    def _read(self, crops: Sequence[np.ndarray], widths: Sequence[int], latin: bool) -> list[Reading]:
        """Read crops, each scaled to HEIGHT rows and its `widths` columns, in batches of similar widths."""
        import cv2
        import numpy as np

        session = self._latin_session if latin and self._latin_session is not None else self._session
        order = sorted(range(len(crops)), key=lambda i: widths[i])
        results: list[Reading | None] = [None] * len(crops)
        start = 0
        while start < len(order):
            # Batches of similar widths: padding to the widest costs little.
            end = start + 1
            while (end < len(order) and end - start < BATCH_LINES
                   and (end - start + 1) * widths[order[end]] <= BATCH_COLUMNS):
                end += 1
            ids = order[start:end]
            width = widths[ids[-1]]
            batch = np.zeros((len(ids), 3, HEIGHT, width), np.float32)
            for k, i in enumerate(ids):  # scaled to -1..1; the padding stays 0 (mid grey)
                resized = cv2.resize(crops[i], (widths[i], HEIGHT), interpolation=cv2.INTER_LINEAR)
                batch[k, :, :, : widths[i]] = resized.transpose(2, 0, 1)
                batch[k, :, :, : widths[i]] *= np.float32(2.0 / 255.0)
                batch[k, :, :, : widths[i]] -= np.float32(1.0)
            preds = session.run(None, {self._input: batch})[0]
            ids_best = preds.argmax(axis=2)
            probs = np.take_along_axis(preds, ids_best[..., None], axis=2)[..., 0]
            if session is self._latin_session:
                ids_best = self._latin_ids[ids_best]  # back to the model's class ids
            steps = ids_best.shape[1]
            for k, i in enumerate(ids):
                results[i] = self._decode(ids_best[k], probs[k], width / steps * crops[i].shape[1] / widths[i])
            start = end
        return [r if r is not None else Reading("", 0.0) for r in results]

    def _decode(self, ids: np.ndarray, probs: np.ndarray, step_px: float) -> Reading:
        chars = []
        previous = 0
        for t, (c, p) in enumerate(zip(ids.tolist(), probs.tolist(), strict=True)):
            if c != previous and c != 0 and c < len(self._chars):
                chars.append((self._chars[c], (t + 0.5) * step_px, float(p)))
            previous = c
        text = "".join(ch for ch, _, _ in chars)
        confidence = sum(p for _, _, p in chars) / len(chars) if chars else 0.0
        return Reading(text, confidence, tuple(chars))


def split_words(chars: Sequence[Char], width: int) -> list[tuple[str, int, int, float]]:
    """Group decoded characters into words: `(word, x0, x1, confidence)` in line-crop pixels.

    Spaces split words, and so does a gap of more than four character pitches. Between two
    words one space apart the edge lies half-way between their facing characters; elsewhere
    0.6 pitch beyond the outer character; the first and last words end OUTER_MARGIN pitch out
    (within the crop; the crop's edges when the pitch is unknown, for a single character).
    """
    positions = [x for ch, x, _ in chars if not ch.isspace()]
    gaps = sorted(b - a for a, b in itertools.pairwise(positions) if b > a)
    pitch = gaps[len(gaps) // 2] if gaps else width / max(1, len(chars))
    groups: list[list[Char]] = [[]]
    for ch, x, p in chars:
        if ch.isspace():
            groups.append([])
        elif groups[-1] and x - groups[-1][-1][1] > max(4 * pitch, 4.0):
            groups.append([(ch, x, p)])
        else:
            groups[-1].append((ch, x, p))
    groups = [g for g in groups if g]
    known = len(gaps) > 0
    edges = [max(0.0, groups[0][0][1] - OUTER_MARGIN * pitch) if known and groups else 0.0]  # left edge of word k
    rights = []
    for before, after in itertools.pairwise(groups):
        end, start = before[-1][1], after[0][1]
        if start - end <= 2.2 * pitch:
            rights.append((end + start) / 2)
            edges.append((end + start) / 2)
        else:
            rights.append(end + 0.6 * pitch)
            edges.append(start - 0.6 * pitch)
    rights.append(min(float(width), groups[-1][-1][1] + OUTER_MARGIN * pitch) if known and groups else float(width))
    words = []
    for group, left, right in zip(groups, edges, rights, strict=True):
        x0 = max(0, min(width - 1, round(left)))
        x1 = max(x0 + 1, min(width, round(right)))
        confidence = sum(p for _, _, p in group) / len(group)
        words.append(("".join(ch for ch, _, _ in group), x0, x1, confidence))
    return words
