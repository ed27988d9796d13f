"""What an attempt did, in words: per step, the action and what changed on the screen after it.

The judge of a rollouts run reads these narratives (agent.rollouts.judge). The change after a step
is measured between the frame saved before it and the next saved frame: the changed regions'
boxes (screen pixels, from vision.diff) and the OCR text that appeared or disappeared in each.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from agent.recording.writer import Recording, RecordingError
from vision.diff import changed_boxes

if TYPE_CHECKING:
    import numpy as np

MAX_REGIONS = 3  # per step in a narrative; the rest are counted
OCR_MAX_FRACTION = 0.5  # regions larger than this part of the screen are not read (the screenshot shows them)
MAX_NARRATIVE_STEPS = 40  # longer attempts: the first and last 20 steps
MAX_TEXT = 80


def load_pixels(path: Path | None) -> np.ndarray | None:
    """The image at `path` (BGR), or None when there is none or it cannot be read."""
    if path is None:
        return None
    from vision.encode import decode

    try:
        return decode(path.read_bytes())
    except (OSError, ValueError):
        return None


def _words(pixels: np.ndarray, box: tuple[int, int, int, int]) -> Counter:
    """The words OCR reads in `box` (padded by 6 px)."""
    from vision.locate.ocr import OcrUnavailable, ocr

    h, w = pixels.shape[:2]
    x0, y0, x1, y1 = max(0, box[0] - 6), max(0, box[1] - 6), min(w, box[2] + 6), min(h, box[3] + 6)
    try:
        return Counter(word.text for word in ocr(pixels[y0:y1, x0:x1], origin=(x0, y0)))
    except OcrUnavailable:
        return Counter()


def short(text: str, limit: int = MAX_TEXT) -> str:
    """`text` on one line, cut to `limit` characters (ending in "…" when cut)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _text_of(words: Counter) -> str:
    return short(" ".join(words.elements()))


def describe_change(before: np.ndarray, after: np.ndarray, read_text: bool = True) -> str:
    """What changed from `before` to `after`: regions, and the text that appeared or disappeared there."""
    boxes = changed_boxes(before, after)
    if not boxes:
        return "no visible change"
    h, w = after.shape[:2]
    parts = []
    for box in boxes[:MAX_REGIONS]:
        part = f"changed {list(box)}"
        area = (box[2] - box[0]) * (box[3] - box[1])
        if read_text and area <= OCR_MAX_FRACTION * w * h and before.shape == after.shape:
            old, new = _words(before, box), _words(after, box)
            appeared, gone = new - old, old - new
            if appeared:
                part += f" appeared {_text_of(appeared)!r}"
            if gone:
                part += f" disappeared {_text_of(gone)!r}"
        elif area > OCR_MAX_FRACTION * w * h:
            part += " (most of the screen)"
        parts.append(part)
    if len(boxes) > MAX_REGIONS:
        parts.append(f"and {len(boxes) - MAX_REGIONS} smaller changes")
    return "; ".join(parts)


def narrate(recording: Path | str, *, max_steps: int = MAX_NARRATIVE_STEPS, read_text: bool = True) -> list[str]:
    """A short factual narrative of a recording: one line per step, the action and what changed on screen.

    The change after step i is measured between the frame saved before it and the next saved frame
    (the next step's, else final.png): the changed regions' boxes (screen pixels) and the OCR text
    that appeared or disappeared in each. Longer recordings keep their first and last
    `max_steps // 2` steps.
    """
    from agent.recording.describe import describe

    try:
        rec = Recording.load(recording)
    except RecordingError as exc:
        return [f"(the recording cannot be read: {exc})"]
    steps = rec.steps
    final = rec.meta.get("final_frame")
    keep = set(range(len(steps)))
    if len(steps) > max_steps:
        keep = set(range(max_steps // 2)) | set(range(len(steps) - max_steps // 2, len(steps)))
    cache: dict[str, np.ndarray | None] = {}

    def pixels(relative: str | None) -> np.ndarray | None:
        if relative is None:
            return None
        if relative not in cache:
            if len(cache) > 4:
                cache.pop(next(iter(cache)))
            cache[relative] = load_pixels(rec.path / relative)
        return cache[relative]

    lines: list[str] = []
    skipped = False
    for k, step in enumerate(steps):
        if k not in keep:
            if not skipped:
                lines.append(f"... ({len(steps) - len(keep)} steps omitted) ...")
                skipped = True
            continue
        action = step.get("action") or {}
        text = f"{k + 1}. {short(describe(action), 120)}"
        if step.get("error"):
            text += f" (error: {short(step['error'])})"
        if step.get("skipped"):
            text += f" (skipped: {short(step['skipped'])})"
        if action.get("tool") not in (None, "computer"):
            output = step.get("output")
            lines.append(text + (f" -> output {short(output)!r}" if output else ""))
            continue
        before_path = step.get("frame")
        after_path = next((s.get("frame") for s in steps[k + 1:] if s.get("frame")), final)
        before, after = pixels(before_path), pixels(after_path)
        if before is None or after is None:
            lines.append(text + " -> (no screenshot)")
            continue
        change = "no visible change" if before_path == after_path else describe_change(before, after, read_text)
        lines.append(f"{text} -> {change}")
    return lines

