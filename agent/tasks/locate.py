"""Finding a task's target on the screen: one look at one frame (and the accessibility tree), and what was found.

`Found` is a target found on the screen (the point to act on, how it was found, the box and
score of the match, the text read there, the accessible element when the tree found it); the
task runner records it as a step's `target`, and replay extends it with the shift and scale of a
recorded point (agent.replay.locate.Located).

A role-and-name target is looked up in the tree; when the tree has no such element (or there is
no tree) and the target gives `text`, the text is looked for by OCR on the same look. An element
found several times is an error, never a fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.tasks.targets import A11yQuery, ImageQuery
from vision.locate.accessibility import Element, NoTree, find_element
from vision.locate.find import Box, NotFound

if TYPE_CHECKING:
    from vision.capture import Frame
    from vision.geometry import Size
    from vision.locate.accessibility import TreeSource
    from vision.locate.ocr import TextFinder


@dataclass(frozen=True)
class Found:
    """Where a target or query was found on the screen.

    `method` says how: "ocr", "image" or "point" in a task; replay's methods in a replay.
    """

    point: tuple[int, int]
    method: str
    box: Box | None = None
    confidence: float | None = None
    text: str | None = None
    element: Element | None = None  # the accessible element, when the tree found it ("a11y")

    def as_dict(self) -> dict[str, Any]:
        """For the step's `target` field."""
        out = {"method": self.method, "point": list(self.point), "box": list(self.box) if self.box else None,
               "confidence": None if self.confidence is None else round(float(self.confidence), 3),
               "text": self.text}
        if self.element is not None:
            out["role"], out["name"] = self.element.role, self.element.name
        return out


def locate(query: Any, frame: Frame, finder: TextFinder, screen: Size, tree: TreeSource | None = None) -> Found:
    """One look for a text, image or role-and-name target (or query) on one frame (and the tree).

    NotFound or AmbiguousMatch when it is not exactly one place on the screen (the point, with the
    target's offset, must be on it too); NoTree for a role-and-name target without a fallback
    text where no tree can be read; ValueError for a query that cannot be searched (e.g. a
    uniform template).
    """
    dx, dy = getattr(query, "offset", (0, 0))
    index = getattr(query, "index", None)
    element = None
    if isinstance(query, A11yQuery):
        box, method, confidence, text, element = _by_role(query, frame, finder, screen, tree, index)
    elif isinstance(query, ImageQuery):
        from vision.locate.template import find_image

        match = find_image(frame, query.image, threshold=query.threshold, region=query.region, index=index)[0]
        box, method, confidence, text = match.box, "image", match.score, None
    else:
        match = finder.find_text(frame, query.text, exact=query.exact, region=query.region, index=index)[0]
        box, method, confidence, text = match.box, "ocr", match.score, match.text
    cx, cy = (box[0] + box[2]) // 2 + dx, (box[1] + box[3]) // 2 + dy
    if not (0 <= cx < screen.width and 0 <= cy < screen.height):
        raise NotFound(f"the target's point ({cx}, {cy}) with offset [{dx}, {dy}] is off the {screen} screen")
    return Found((cx, cy), method, tuple(box), confidence, text, element)


def _by_role(query: A11yQuery, frame: Frame, finder: TextFinder, screen: Size, tree: TreeSource | None,
             index: int | None) -> tuple[Box, str, float | None, str | None, Element | None]:
    """The element of the query's role and name; else, when the query gives one, its text by OCR."""
    try:
        if tree is None:
            raise NoTree("no accessibility tree is read in this run")
        element = find_element(tree, query.role, query.name, exact=query.exact, region=query.region, index=index,
                               screen=(0, 0, screen.width, screen.height))
        return element.box, "a11y", None, element.name, element
    except (NotFound, NoTree) as exc:
        if query.text is None:
            raise
        try:
            match = finder.find_text(frame, query.text, exact=query.exact, region=query.region, index=index)[0]
        except NotFound as by_text:
            raise NotFound(f"{exc}; by its text: {by_text}") from None
        return match.box, "ocr", match.score, match.text, None
