"""Naming the target of a recorded point for a task file: role and name, text under it, a label beside it, an image.

`TargetNamer.name(step, point)` tries, in order (DESIGN.md, "Code generation"):

1. `a11y`: the accessible element recorded under the point, when it has a name:
   `{role, name}`; with `index` when that role and name match several elements (the recording
   counted them: `twins`, `nth`). Controls where any spot does (buttons, check boxes, menu items,
   links, tabs...) get no offset; others (text fields, sliders) keep the spot as `offset`.
2. `text`: the words OCR reads under the point (its OCR line, or the word and its neighbours in
   a long line): `{text}`, with `offset` when the point is off the words' middle.
3. `label`: for an unlabelled widget (an empty text field), the nearest words on the same row,
   left or right: `{text: LABEL, offset: [dx, dy]}`.
4. `image`: the recorded anchor (or a crop of the frame around the point) saved beside the task
   file: `{image, offset}`, when it has detail.
5. `point`: `{x, y}`, the recorded coordinates, when nothing else can name it.

Text and image targets are checked on the recorded frame as the task runner would search it:
when they match several places, `index` picks the one that was clicked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vision.locate.find import AmbiguousMatch, Box, NotFound, union

if TYPE_CHECKING:
    import numpy as np

    from agent.recording.writer import Recording
    from vision.locate.ocr import TextBox

ANY_SPOT = frozenset({"button", "checkbox", "radio", "switch", "menuitem", "menuitemcheckbox", "menuitemradio", "menu",
                      "link", "tab", "option", "treeitem", "combobox"})  # roles clicked the same anywhere inside
UNDER_PX = 3  # a word this close to the point is under it
ROW_PX = 12  # a label's middle this close to the point's row is on it
LABEL_GAP_PX = 600  # the farthest a label may be
LONG_LINE = 5  # words: a longer OCR line is cut to the word under the point and its neighbours
CROP_HALF = (60, 40)


@dataclass(frozen=True)
class Named:
    """A task-file target for a recorded point, and how it was named (a11y | text | label | image | point)."""

    target: dict[str, Any]
    how: str


def _middle(box: Box) -> tuple[int, int]:
    """Where the task runner acts on a match's box (agent.tasks.locate)."""
    return (box[0] + box[2]) // 2, (box[1] + box[3]) // 2


def _offset(point: tuple[int, int], box: Box, slack: int = 0) -> tuple[int, int] | None:
    mx, my = _middle(box)
    dx, dy = point[0] - mx, point[1] - my
    return None if abs(dx) <= slack and abs(dy) <= slack else (dx, dy)


class TargetNamer:
    """Names the targets of one recording's pointer steps; image targets are saved into `images`
    (referred to from the task file as `prefix/NAME.png`)."""

    def __init__(self, recording: Recording, images: Path, prefix: str) -> None:
        self.recording, self.images, self.prefix = recording, images, prefix
        self._finder: Any = None
        self._words: dict[str, list[TextBox]] = {}
        self.saved: list[Path] = []

    def name(self, step: dict, point: tuple[int, int], *, with_element: bool = True) -> Named:
        """The best target for `point` on the step's recorded frame (see the module docstring)."""
        element = step.get("element") if with_element else None
        if isinstance(element, dict) and str(element.get("name") or "").strip() and element.get("role"):
            return self.by_element(element, point)
        pixels = self.frame(step)
        if pixels is not None:
            words = self.words(step["frame"], pixels)
            for named in (self.by_text(words, point), self.by_label(words, point)):
                if named is not None:
                    return named
            named = self.by_image(step, pixels, point)
            if named is not None:
                return named
        return Named({"x": int(point[0]), "y": int(point[1])}, "point")

    # --- the ways ---------------------------------------------------------------------------
    def by_element(self, element: dict, point: tuple[int, int]) -> Named:
        """`{role, name}` (+ index, + offset for controls where the spot matters)."""
        target: dict[str, Any] = {"role": element["role"], "name": element["name"]}
        if int(element.get("twins") or 1) > 1:
            target["index"] = int(element.get("nth") or 0)
        box = element.get("box")
        if element["role"] not in ANY_SPOT and isinstance(box, list) and len(box) == 4:
            offset = _offset(point, tuple(box), slack=2)
            if offset:
                target["offset"] = list(offset)
        return Named(target, "a11y")

    def by_text(self, words: list[TextBox], point: tuple[int, int]) -> Named | None:
        """The words under the point."""
        x, y = point
        under = [w for w in words if w.box[0] - UNDER_PX <= x < w.box[2] + UNDER_PX
                 and w.box[1] - UNDER_PX <= y < w.box[3] + UNDER_PX and w.text.strip()]
        if not under:
            return None
        word = min(under, key=lambda w: math.dist(w.center, point))
        line = sorted((w for w in words if w.line == word.line and w.text.strip()), key=lambda w: w.box[0])
        if len(line) > LONG_LINE:
            at = line.index(word)
            line = line[max(0, at - 1):at + 2]
        return self._text_target(words, line, point, "text")

    def by_label(self, words: list[TextBox], point: tuple[int, int]) -> Named | None:
        """The nearest words on the point's row (left first on a tie), with the offset from them to the point."""
        x, y = point
        best: tuple[float, TextBox] | None = None
        for w in words:
            if not w.text.strip() or abs((w.box[1] + w.box[3]) / 2 - y) > max(ROW_PX, (w.box[3] - w.box[1]) / 2):
                continue
            if w.box[2] <= x:  # to the left
                gap = float(x - w.box[2])
            elif w.box[0] > x:  # to the right: loses a tie
                gap = w.box[0] - x + 0.5
            else:
                continue
            if gap > LABEL_GAP_PX:
                continue
            if best is None or gap < best[0]:
                best = (gap, w)
        if best is None:
            return None
        word = best[1]
        line = sorted((w for w in words if w.line == word.line and w.text.strip()), key=lambda w: w.box[0])
        if len(line) > LONG_LINE:
            at = line.index(word)
            line = line[max(0, at - 1):at + 2]
        return self._text_target(words, line, point, "label")

    def by_image(self, step: dict, pixels: np.ndarray, point: tuple[int, int]) -> Named | None:
        """The recorded anchor (or a crop around the point), saved as an image target, when it has detail."""
        from vision.encode import encode
        from vision.locate.template import FLAT_STD, find_image

        crop, box = self.crop(step, pixels, point)
        if crop is None or float(crop.std()) < FLAT_STD or min(crop.shape[:2]) < 8:
            return None
        target: dict[str, Any] = {}
        try:
            find_image(pixels, crop)
        except AmbiguousMatch as several:
            spots = [m.box for m in several.candidates]
            nearest = min(range(len(spots)), key=lambda n: math.dist(_middle(spots[n]), _middle(box)))
            target["index"] = nearest
        except (NotFound, ValueError):
            return None
        self.images.mkdir(parents=True, exist_ok=True)
        path = self.images / f"step-{int(step['i']):03d}.png"
        path.write_bytes(encode(crop).data)
        self.saved.append(path)
        offset = _offset(point, box)
        return Named({"image": f"{self.prefix}/{path.name}", **target, **({"offset": list(offset)} if offset else {})},
                     "image")

    # --- material ---------------------------------------------------------------------------
    def _text_target(self, words: list[TextBox], run: list[TextBox], point: tuple[int, int], how: str) -> Named | None:
        from vision.locate.ocr import match_text

        text = " ".join(w.text for w in run).strip()
        box = union([w.box for w in run])
        target: dict[str, Any] = {"text": text}
        try:
            matches = match_text(words, text)
        except AmbiguousMatch as several:
            spots = [m.box for m in several.candidates]
            target["index"] = min(range(len(spots)), key=lambda n: math.dist(_middle(spots[n]), _middle(box)))
            box = spots[target["index"]]
        except (NotFound, ValueError):
            return None
        else:
            box = matches[0].box
        offset = _offset(point, box, slack=0 if how == "label" else 4)
        if offset:
            target["offset"] = list(offset)
        return Named(target, how)

    def frame(self, step: dict) -> np.ndarray | None:
        """The step's recorded frame (the screen before it), or None."""
        from agent.recording.writer import RecordingError

        if not step.get("frame"):
            return None
        try:
            return self.recording.load_image(step["frame"])
        except RecordingError:
            return None

    def words(self, relative: str, pixels: np.ndarray) -> list[TextBox]:
        """Every word OCR reads on a frame (one TextFinder for the recording: unchanged parts are not read again)."""
        from vision.capture import Frame
        from vision.locate.ocr import OcrUnavailable, TextFinder

        if relative not in self._words:
            if self._finder is None:
                self._finder = TextFinder()
            try:
                self._words[relative] = list(self._finder.read(Frame(pixels)))
            except OcrUnavailable:
                self._words[relative] = []
        return self._words[relative]

    def crop(self, step: dict, pixels: np.ndarray, point: tuple[int, int]) -> tuple[np.ndarray | None, Box]:
        """The step's anchor when it was cut around this point, else a crop of the frame around it."""
        anchor = step.get("anchor")
        if isinstance(anchor, dict) and list(anchor.get("point") or []) == list(point) and anchor.get("image"):
            try:
                crop = self.recording.load_image(anchor["image"])
                x0, y0 = (int(v) for v in anchor["box"][:2])
                return crop, (x0, y0, x0 + crop.shape[1], y0 + crop.shape[0])
            except Exception:  # a missing or damaged anchor: cut one from the frame
                pass
        h, w = pixels.shape[:2]
        (hx, hy), (x, y) = CROP_HALF, point
        x0, y0, x1, y1 = max(0, x - hx), max(0, y - hy), min(w, x + hx), min(h, y + hy)
        if x0 >= x1 or y0 >= y1:
            return None, (0, 0, 0, 0)
        return pixels[y0:y1, x0:x1].copy(), (x0, y0, x1, y1)
