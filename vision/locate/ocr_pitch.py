"""Monospaced text lines: their character cells, seen in the pixels before anything is read.

In a monospaced font every character (a space too) fills one cell of the same width, so the ink
of a line repeats with that width: its column profile (ink per column, across the middle of the
line, away from neighbouring rows) has one strong frequency. `monospace_cells` finds it with
an FFT and says how many cells the line's ink spans.

The recogniser uses this to read such a line narrower (the cost is about proportional to the
columns read) and to check the reading: a reading with a character too few or too many does not
fill the cells, and the line is read again at full width (`ocr_recognize`). Proportional text
has no such frequency (measured: every line of a Tk form scores below the threshold, every long
line of an editor above it), so it is read as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

MIN_CELLS = 16  # shorter lines gain little from a narrower reading
MIN_SCORE = 1.4  # periodicity needed: spectral amplitude x sqrt(cells); proportional text scored <= 1.25
PITCH_RANGE = (0.25, 0.75)  # cell width as a fraction of the line box's height
MAX_GAP = 1.9  # cells of blank between two inked columns: above it, a run of spaces (one space leaves 1.1-1.7)
FFT_SIZE = 8192  # at least; zero-padded: the pitch comes out to about 0.01 px, enough to count 100 cells


@dataclass(frozen=True)
class Cells:
    """The cells of a monospaced line: their width (crop pixels) and how many the ink spans."""

    pitch: float
    count: int


def monospace_cells(crop: np.ndarray) -> Cells | None:
    """The character cells of a BGR line crop when it is monospaced text whose characters a reading can
    be checked against, else None: not monospaced, too short, or with a run of spaces (aligned columns,
    indentation inside the line), which a CTC reading collapses to one space."""
    import cv2
    import numpy as np

    h, w = crop.shape[:2]
    if h < 8 or w < MIN_CELLS * PITCH_RANGE[0] * h:
        return None
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.bincount(border, minlength=256).argmax())
    profile = np.abs(grey[h // 4: h - h // 4].astype(np.float32) - background).sum(axis=0)
    inked = np.flatnonzero(profile > 0.02 * profile.max()) if profile.max() > 0 else ()
    if len(inked) < 2:
        return None
    first, last = int(inked[0]), int(inked[-1])
    signal = profile[first:last + 1] - profile[first:last + 1].mean()
    n = len(signal)
    size = max(FFT_SIZE, 1 << (n - 1).bit_length())  # zero-padded, never cut short
    spectrum = np.abs(np.fft.rfft(signal, size))
    low = max(1, math.ceil(size / (PITCH_RANGE[1] * h)))  # bins: frequency = bin / size
    high = min(len(spectrum) - 2, int(size / (PITCH_RANGE[0] * h)))
    if high <= low:
        return None
    k = low + int(spectrum[low:high + 1].argmax())
    a, b, c = spectrum[k - 1], spectrum[k], spectrum[k + 1]
    curve = a - 2 * b + c
    peak = k + (0.5 * (a - c) / curve if curve < 0 else 0.0)  # parabolic refinement between bins
    pitch = float(size / peak)
    cells = n / pitch
    amplitude = b / (np.abs(signal).sum() + 1e-9)
    if cells < MIN_CELLS or amplitude * math.sqrt(cells) < MIN_SCORE:
        return None
    if len(inked) > 1 and int(np.diff(inked).max()) > MAX_GAP * pitch:
        return None  # two spaces or more somewhere: a reading has one space for them, so its count cannot check
    return Cells(pitch, math.floor((last - first) / pitch + 0.5))
