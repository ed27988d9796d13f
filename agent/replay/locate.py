"""Finding a recorded target again on the live screen: anchors, template matching, OCR, candidates.

One look at one frame (agent.replay.replayer looks again until its timeout):

0. The accessibility tree, when the step recorded the element under its point (role, name,
   box, path) and the display has a tree: the element of that role and exact name, the one whose
   path (its ancestors' roles and names) matches the recorded one best where several do. The
   point keeps its place inside the element (scaled when the element's size changed); method
   `a11y`. An element that is not there, or not told apart, passes the question on to:
1. Template: the anchor crop is matched over the whole screen in one pass, at scale 1.0 and at
   the ratio of the live screen's HiDPI scale to the recorded one. It is found when exactly one
   place scores at least MATCH_MIN and no other place scores RIVAL_MIN or more; the method is
   `anchor_near` when that place is within NEAR_PX of the recorded one, else `anchor_global`.
   The click point keeps its offset inside the anchor (scaled by the ratio).
2. OCR, when the template gives no single answer: the recorded target text (a task's), else the
   text line nearest the point in the anchor crop (or in the recorded frame around it). The
   action moves by as much as the text did.
3. Otherwise `Lost`: "ambiguous" (two places) or "not found", with the best candidates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.tasks.locate import Found
from vision.locate.find import AmbiguousMatch, Box, NotFound

if TYPE_CHECKING:
    import numpy as np

    from vision.capture import Frame
    from vision.locate.accessibility import TreeSource

MATCH_MIN = 0.85  # a template match this good is the target...
RIVAL_MIN = 0.8  # ... unless another place scores this much too
NEAR_PX = 32  # a match this close to the recorded place is "anchor_near"
TEXT_MIN_SCORE = 0.9  # OCR similarity a landmark text needs (stricter than a task's 0.8)
LANDMARK_HALF = (240, 100)  # where to look for a text landmark when the anchor crop holds none
TEXT_NEAR = (160, 80)  # text is first read only this far around where it is expected
MAX_CANDIDATES = 5
METHODS = ("a11y", "anchor_near", "anchor_global", "ocr", "healed", "raw")  # how a Located was found


@dataclass
class Anchor:
    """What a recorded point looked like: a crop (BGR) with its screen box, and the point in it."""

    pixels: np.ndarray
    box: Box
    point: tuple[int, int]
    frame_path: Path | None = None  # the recorded frame, to look for a text landmark around the point
    _gray: Any = None
    _landmark: Any = field(default=False)  # False: not computed yet; None: there is none

    @property
    def gray(self) -> np.ndarray | None:
        """The crop in gray levels, or None when it has no detail to match (a flat area)."""
        if self._gray is None:
            from vision.locate.template import FLAT_STD, load_template

            gray = load_template(self.pixels)
            self._gray = gray if float(gray.std()) >= FLAT_STD and min(gray.shape) >= 3 else False
        return self._gray if self._gray is not False else None

    def landmark(self) -> tuple[str, Box] | None:
        """The text line nearest the point (in the crop, else in the recorded frame around it)."""
        if self._landmark is False:
            self._landmark = _nearest_line(self.pixels, self.box[:2], self.point)
            if self._landmark is None and self.frame_path is not None:
                try:
                    from vision.encode import decode

                    pixels = decode(self.frame_path.read_bytes())
                except (OSError, ValueError):
                    pixels = None
                if pixels is not None:
                    x, y = self.point
                    (hx, hy), (h, w) = LANDMARK_HALF, pixels.shape[:2]
                    x0, y0, x1, y1 = max(0, x - hx), max(0, y - hy), min(w, x + hx), min(h, y + hy)
                    if x0 < x1 and y0 < y1:
                        self._landmark = _nearest_line(pixels[y0:y1, x0:x1], (x0, y0), self.point)
        return self._landmark


@dataclass(frozen=True)
class Located(Found):
    """A recorded point found on the live screen: a Found, with how far it moved and the scale it was found at.

    `method` is one of METHODS: a11y | anchor_near | anchor_global | ocr | healed | raw.
    """

    shift: tuple[int, int] = (0, 0)
    scale: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        """For the replay step's `target` field."""
        return {**super().as_dict(), "shift": list(self.shift), "scale": round(self.scale, 4)}


@dataclass
class Lost:
    """Why a point was not found: "ambiguous" or "not found", a message and the best candidates."""

    reason: str
    message: str
    candidates: list[dict] = field(default_factory=list)


class Locator:
    """Looks for recorded points and conditions on live frames, for one replay.

    `ratio` is the live screen's HiDPI scale over the recorded one; `shift` is how far the last
    located point moved (text is looked for first where it would be after that shift).
    """

    def __init__(self, ratio: float, tree: TreeSource | None = None, screen: Box | None = None) -> None:
        from vision.locate.ocr import TextFinder

        self.finder = TextFinder()
        self.tree, self.screen = tree, screen
        self.ratio = ratio
        self.scales = (1.0,) if abs(ratio - 1.0) < 0.01 else (1.0, round(ratio, 4))
        self.shift: tuple[int, int] = (0, 0)

    def look(self, anchor: Anchor, hint: tuple[str, Box] | None, frame: Frame,
             element: dict | None = None) -> Located | Lost:
        """One look on one frame for the anchor's point: the element, the template, then OCR (the module docstring)."""
        from vision.locate.template import find_image

        if element is not None and self.tree is not None:
            found = self.from_element(element, anchor.point)
            if found is not None:
                return found
        candidates: list[dict] = []
        verdict = Lost("not found", "the anchor has no detail to match (a flat crop)")
        gray = anchor.gray
        if gray is not None:
            try:
                matches = find_image(frame, gray, threshold=RIVAL_MIN, scales=self.scales)
            except AmbiguousMatch as exc:
                matches = list(exc.candidates)
            except NotFound as exc:
                matches = list(exc.candidates)
            matches.sort(key=lambda m: -m.score)
            candidates = [candidate(m, "anchor") for m in matches[:MAX_CANDIDATES] if m.score > 0]
            strong = [m for m in matches if m.score >= MATCH_MIN]
            rivals = [m for m in matches if m.score >= RIVAL_MIN]
            if strong and len(rivals) == 1:
                return self.from_template(anchor, strong[0])
            if strong:
                verdict = Lost("ambiguous", f"the anchor matches {len(rivals)} places", candidates)
            else:
                best = f"best score {matches[0].score:.3f}" if matches else "no match"
                verdict = Lost("not found", f"the anchor is not on the screen ({best}, needs {MATCH_MIN})",
                               candidates)
        landmark = hint or anchor.landmark()
        if landmark is None:
            return verdict
        text, box = landmark
        try:
            match = self.find_text(frame, text, box)
        except AmbiguousMatch as exc:
            return Lost("ambiguous", f"{verdict.message}; its text {text!r} is in {len(exc.candidates)} places",
                        candidates + [candidate(m, "ocr") for m in exc.candidates[:MAX_CANDIDATES]])
        except NotFound as exc:
            return Lost("not found", f"{verdict.message}; its text {text!r} is not on the screen either",
                        candidates + [candidate(m, "ocr") for m in exc.candidates[:MAX_CANDIDATES]])
        return self.from_text(anchor, box, match)

    def from_element(self, recorded: dict, point: tuple[int, int]) -> Located | None:
        """The recorded element in the live tree (same role, same exact name, the closest path), and the point
        at the same place inside it; None when it is not there or not told apart (or there is no tree)."""
        from vision.locate.accessibility import NoTree, Snapshot, path_similarity

        role = recorded.get("atspi_role") or recorded["role"]
        try:
            snapshot = Snapshot(self.tree, self.screen)
            try:
                found = snapshot.find(role, recorded["name"], exact=True)
            except AmbiguousMatch as several:
                found = list(several.candidates)
        except (NotFound, NoTree, ValueError):
            return None
        path = recorded.get("path") or []
        ranked = sorted(((path_similarity(path, [list(p) for p in e.path]), e) for e in found), key=lambda p: -p[0])
        if len(ranked) > 1 and ranked[0][0] <= ranked[1][0]:
            return None  # two alike: the anchor decides
        live = ranked[0][1]
        (rx0, ry0, rx1, ry1), (lx0, ly0, lx1, ly1) = recorded["box"], live.box
        sx = (lx1 - lx0) / max(1, rx1 - rx0)
        sy = (ly1 - ly0) / max(1, ry1 - ry0)
        px = min(lx1 - 1, max(lx0, round(lx0 + (point[0] - rx0) * sx)))
        py = min(ly1 - 1, max(ly0, round(ly0 + (point[1] - ry0) * sy)))
        return Located((px, py), "a11y", live.box, round(ranked[0][0], 3), live.name, live,
                       shift=(px - point[0], py - point[1]), scale=self.ratio)

    def look_for_condition(self, frame: Frame, condition: dict, template: np.ndarray | None) -> tuple[Box, float]:
        """One look for a recorded condition: its element (one found by role and name), its text (template None)
        or its image; (box, score) where it is seen (several places will do), NotFound when it is not."""
        try:
            if condition.get("method") == "a11y" and condition.get("role") and self.tree is not None:
                from vision.locate.accessibility import NoTree, Snapshot

                try:
                    match = Snapshot(self.tree, self.screen).find(condition["role"], condition.get("name"),
                                                                  exact=True)[0]
                except NoTree as exc:
                    raise NotFound(str(exc)) from None
                return match.box, 1.0
            if template is None:
                match = self.find_text(frame, condition["text"], condition.get("box"), min_score=None)
            else:
                from vision.locate.template import find_image

                match = find_image(frame, template, threshold=MATCH_MIN, scales=self.scales)[0]
        except AmbiguousMatch as exc:  # seen, in several places: the condition holds
            match = exc.candidates[0]
        return match.box, match.score

    def find_text(self, frame: Frame, text: str, box: Any, min_score: float | None = TEXT_MIN_SCORE) -> Any:
        """The one place `text` is on the screen (AmbiguousMatch, NotFound otherwise).

        Only the area around where it is expected (its recorded box moved by the last shift, then
        its recorded box) is read first; a match there is unique when its rendering is nowhere
        else on the screen (a template match of the live text). Otherwise the whole screen is
        read (incrementally, by one TextFinder). `min_score` None: a condition, where any match
        will do (no uniqueness check, the task runner's default score).
        """
        from vision.locate.ocr import DEFAULT_MIN_SCORE, find_text

        score = DEFAULT_MIN_SCORE if min_score is None else min_score
        regions: list[Box] = []
        if isinstance(box, (list, tuple)) and len(box) == 4:
            (mx, my), (sx, sy) = TEXT_NEAR, self.shift
            for dx, dy in dict.fromkeys([(sx, sy), (0, 0)]):
                regions.append((int(box[0]) + dx - mx, int(box[1]) + dy - my, int(box[2]) + dx + mx,
                                int(box[3]) + dy + my))
        for region in regions:
            try:
                match = find_text(frame, text, region=region, min_score=score)[0]
            except AmbiguousMatch as exc:
                if min_score is None:
                    return exc.candidates[0]
                raise
            except NotFound:
                continue
            if min_score is None:
                return match
            rivals = self.rendered_elsewhere(frame, match.box)
            if rivals:
                raise AmbiguousMatch(f"text {text!r} is drawn in {len(rivals) + 1} places", [match, *rivals])
            return match
        try:
            return self.finder.find_text(frame, text, min_score=score)[0]
        except AmbiguousMatch as exc:
            if min_score is None:
                return exc.candidates[0]
            raise

    def rendered_elsewhere(self, frame: Frame, box: Box) -> list[Any]:
        """Other places where the pixels of `box` are drawn the same (template score >= MATCH_MIN)."""
        from vision.locate.find import intersect
        from vision.locate.template import FLAT_STD, find_image

        x0, y0, x1, y1 = box
        crop = frame.pixels[max(0, y0):y1, max(0, x0):x1]
        if crop.size == 0 or float(crop.std()) < FLAT_STD:
            return []
        try:
            find_image(frame, crop, threshold=MATCH_MIN, scales=(1.0,))
        except AmbiguousMatch as exc:
            return [m for m in exc.candidates if intersect(m.box, box) is None]
        except (NotFound, ValueError):
            return []
        return []

    def from_template(self, anchor: Anchor, match: Any) -> Located:
        """The anchor's point where the template matched (its offset in the anchor kept, scaled)."""
        x0, y0 = anchor.box[:2]
        s = float(match.scale)  # 1.0, or the ratio of the screens' HiDPI scales
        px = round(match.box[0] + (anchor.point[0] - x0) * s)
        py = round(match.box[1] + (anchor.point[1] - y0) * s)
        shift = (px - anchor.point[0], py - anchor.point[1])
        method = "anchor_near" if math.hypot(match.box[0] - x0, match.box[1] - y0) <= NEAR_PX else "anchor_global"
        return Located((px, py), method, tuple(match.box), float(match.score), shift=shift, scale=s)

    def from_text(self, anchor: Anchor, box: Box, match: Any) -> Located:
        """The anchor's point moved as much as its text (recorded at `box`) did."""
        cx, cy = (box[0] + box[2] - 1) / 2, (box[1] + box[3] - 1) / 2
        lx, ly = match.center
        s = self.ratio
        px, py = round(lx + (anchor.point[0] - cx) * s), round(ly + (anchor.point[1] - cy) * s)
        return Located((px, py), "ocr", tuple(match.box), float(match.score), match.text,
                       shift=(px - anchor.point[0], py - anchor.point[1]), scale=s)


def candidate(match: Any, method: str) -> dict:
    """A candidate for the error and the recording; a text found by its drawing is "text_image"."""
    if method == "ocr" and getattr(match, "text", None) is None:
        method = "text_image"
    out = {"method": method, "box": list(match.box), "score": round(float(match.score), 3)}
    if getattr(match, "text", None) is not None:
        out["text"] = match.text
    return out


def describe_candidate(c: dict) -> str:
    """A candidate in one line: method, text, box and score."""
    text = f" {c['text']!r}" if c.get("text") is not None else ""
    return f"{c['method']}{text} at {c.get('box')} score {c.get('score')}"


def _nearest_line(pixels: np.ndarray, origin: tuple[int, int], point: tuple[int, int]) -> tuple[str, Box] | None:
    """The words (not cut by the image's edge) of the text line nearest `point`, and their box."""
    from vision.locate.find import union
    from vision.locate.ocr import OcrUnavailable, ocr

    if pixels.ndim != 3 or min(pixels.shape[:2]) < 8:
        return None
    try:
        words = ocr(pixels, origin=origin)
    except OcrUnavailable:
        return None
    ox, oy = origin
    h, w = pixels.shape[:2]
    whole = [wd for wd in words if wd.box[0] > ox and wd.box[2] < ox + w and wd.text.strip()]
    lines: dict[int, list] = {}
    for word in whole:
        lines.setdefault(word.line, []).append(word)
    best: tuple[float, str, Box] | None = None
    for line in lines.values():
        line.sort(key=lambda wd: wd.box[0])
        box = union([wd.box for wd in line])
        dx = max(box[0] - point[0], 0, point[0] - box[2] + 1)
        dy = max(box[1] - point[1], 0, point[1] - box[3] + 1)
        text = " ".join(wd.text for wd in line)
        if len(text.strip()) >= 2 and (best is None or math.hypot(dx, dy) < best[0]):
            best = (math.hypot(dx, dy), text, box)
    return None if best is None else (best[1], best[2])
