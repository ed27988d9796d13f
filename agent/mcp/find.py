"""The MCP `find` tool: text on the screen by OCR, in screenshot pixels.

The look-up is query-led (`TextFinder.find_text`): only the lines that could hold the text are
read, and the finder keeps what it read for the next call on the same screen.

Every match is returned (several places showing the same text are all listed, in reading order),
as `{"matches": [{"text", "box", "center"}]}`: `box` is `[x0, y0, x1, y1]` (x1/y1 exclusive) and
`center` the point to click, both in the pixels of the screenshots the server returns. Nothing
found is an error naming the closest texts seen, with their boxes in the same pixels. Elements
by accessibility role and name are not available yet: such a query is an error that says so.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from agent.mcp.desk import Answer

if TYPE_CHECKING:
    from vision.capture import Frame
    from vision.geometry import ScreenMap
    from vision.locate.ocr_cache import TextFinder
    from vision.locate.text_match import TextMatch

ROLE_UNAVAILABLE = ("finding elements by accessibility role and name is not available yet in this deskpilot; "
                    "find them by their visible text with {\"text\": ...}, or look at a screenshot")


def model_box(mapping: ScreenMap, box: tuple[int, int, int, int]) -> list[int]:
    """A screen box [x0, y0, x1, y1) as the smallest box of model pixels covering it."""
    x0, y0 = mapping.to_model(box[0], box[1])
    x1, y1 = mapping.to_model(max(box[0], box[2] - 1), max(box[1], box[3] - 1))
    return [x0, y0, x1 + 1, y1 + 1]


def as_match(mapping: ScreenMap, match: TextMatch) -> dict[str, Any]:
    """One match as the client sees it: its text, box and centre in screenshot pixels."""
    return {"text": match.text, "box": model_box(mapping, match.box), "center": list(mapping.to_model(*match.center))}


def find_on_screen(finder: TextFinder, frame: Frame, mapping: ScreenMap, *, text: str | None, role: str | None,
                   name: str | None, exact: bool = False) -> Answer:
    """Look for `text` on `frame`; an error Answer for a bad query, a role query, or nothing found."""
    from vision.locate.find import AmbiguousMatch, NotFound

    if role is not None or name is not None:
        if text is not None:
            return Answer("give either text, or role and name, not both", error=True)
        return Answer(ROLE_UNAVAILABLE, error=True)
    if text is None or not text.strip():
        return Answer("the text to find is empty: give {\"text\": \"words on the screen\"}", error=True)
    try:  # query-led: only the lines that could hold the text are read (see vision.locate.ocr_plan)
        matches = finder.find_text(frame, text, exact=exact)
    except AmbiguousMatch as exc:  # every place it shows is an answer here
        matches = list(exc.candidates)
    except NotFound as exc:
        closest = [as_match(mapping, m) for m in exc.candidates]
        listing = "".join(f"\n  {json.dumps(m)}" for m in closest) or " none similar"
        return Answer(f"text {text!r}{' (exact)' if exact else ''} is not on the screen; closest "
                      f"texts:{listing}", error=True, data={"matches": [], "closest": closest})
    from vision.locate.find import reading_order

    data = {"matches": [as_match(mapping, m) for m in reading_order(matches)]}
    return Answer(json.dumps(data), data=data)


__all__ = ["ROLE_UNAVAILABLE", "as_match", "find_on_screen", "model_box"]
