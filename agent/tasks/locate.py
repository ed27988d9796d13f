"""Finding a task's target on the screen: one look at one frame, and what was found.

`Found` is a target found on the screen (the point to act on, how it was found, the box and
score of the match, the text read there); the task runner records it as a step's `target`, and
replay extends it with the shift and scale of a recorded point (agent.replay.locate.Located).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.tasks.targets import ImageQuery
from vision.locate.find import Box, NotFound

if TYPE_CHECKING:
    from vision.capture import Frame
    from vision.geometry import Size
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

    def as_dict(self) -> dict[str, Any]:
        """For the step's `target` field."""
        return {"method": self.method, "point": list(self.point), "box": list(self.box) if self.box else None,
                "confidence": None if self.confidence is None else round(float(self.confidence), 3),
                "text": self.text}


def locate(query: Any, frame: Frame, finder: TextFinder, screen: Size) -> Found:
    """One look for a text or image target (or query) on one frame.

    NotFound or AmbiguousMatch when it is not exactly one place on the screen (the point, with the
    target's offset, must be on it too); ValueError for a query that cannot be searched (e.g. a
    uniform template).
    """
    dx, dy = getattr(query, "offset", (0, 0))
    index = getattr(query, "index", None)
    if isinstance(query, ImageQuery):
        from vision.locate.template import find_image

        match = find_image(frame, query.image, threshold=query.threshold, region=query.region, index=index)[0]
        box, method, confidence, text = match.box, "image", match.score, None
    else:
        match = finder.find_text(frame, query.text, exact=query.exact, region=query.region, index=index)[0]
        box, method, confidence, text = match.box, "ocr", match.score, match.text
    cx, cy = (box[0] + box[2]) // 2 + dx, (box[1] + box[3]) // 2 + dy
    if not (0 <= cx < screen.width and 0 <= cy < screen.height):
        raise NotFound(f"the target's point ({cx}, {cy}) with offset [{dx}, {dy}] is off the {screen} screen")
    return Found((cx, cy), method, tuple(box), confidence, text)
