"""The MCP `find` tool: text on the screen by OCR, or elements by accessibility role and name, in
screenshot pixels.

A text look-up is query-led (`TextFinder.find_text`): only the lines that could hold the text are
read, and the finder keeps what it read for the next call on the same screen.

Every match is returned (several places showing the same text, or several elements matching
equally well, are all listed in reading order), as `{"matches": [{"text", "box", "center"}]}`
for text and `{"matches": [{"role", "name", "box", "center"}]}` for elements: `box` is
`[x0, y0, x1, y1]` (x1/y1 exclusive) and `center` the point to click, both in the pixels of the
screenshots the server returns. Nothing found is an error: for text naming the closest texts
seen, with their boxes in the same pixels; for elements naming what was searched, what exists
but does not show, and the same name under other roles (`Snapshot.find`). A display without an
accessibility tree is an error that says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent.mcp.desk import Answer

if TYPE_CHECKING:
    from vision.capture import Frame
    from vision.geometry import ScreenMap
    from vision.locate.accessibility import Element, TreeSource
    from vision.locate.ocr_cache import TextFinder
    from vision.locate.text_match import TextMatch


def model_box(mapping: ScreenMap, box: tuple[int, int, int, int]) -> list[int]:
    """A screen box [x0, y0, x1, y1) as the smallest box of model pixels covering it."""
    x0, y0 = mapping.to_model(box[0], box[1])
    x1, y1 = mapping.to_model(max(box[0], box[2] - 1), max(box[1], box[3] - 1))
    return [x0, y0, x1 + 1, y1 + 1]


def as_match(mapping: ScreenMap, match: TextMatch) -> dict[str, Any]:
    """One match as the client sees it: its text, box and centre in screenshot pixels."""
    return {"text": match.text, "box": model_box(mapping, match.box), "center": list(mapping.to_model(*match.center))}


def as_element(mapping: ScreenMap, element: Element) -> dict[str, Any]:
    """One element as the client sees it: its role, name, box and centre in screenshot pixels."""
    return {"role": element.role, "name": element.name, "box": model_box(mapping, element.box),
            "center": list(mapping.to_model(*element.center))}


def find_element_on_screen(tree: TreeSource, mapping: ScreenMap, *, role: str | None, name: str | None,
                           exact: bool = False) -> Answer:
    """Look for the showing elements of `role` and `name` in the display's accessibility tree."""
    from vision.locate.accessibility import NoTree, Snapshot
    from vision.locate.find import AmbiguousMatch, NotFound, reading_order

    if role is not None and not role.strip():
        return Answer("the role is empty: give a role such as \"button\", or leave it out", error=True)
    screen = (0, 0, mapping.screen.width, mapping.screen.height)
    try:
        elements = Snapshot(tree, screen).find(role, name, exact=exact)
    except AmbiguousMatch as exc:  # every element that matches equally well is an answer here
        elements = list(exc.candidates)
    except NoTree as exc:
        return Answer(f"no accessibility tree on this display: {exc}; find by visible text with "
                      "{\"text\": ...} instead", error=True, data={"matches": []})
    except (NotFound, ValueError) as exc:
        return Answer(str(exc), error=True, data={"matches": []})
    data = {"matches": [as_element(mapping, e) for e in reading_order(elements)]}
    return Answer(json.dumps(data), data=data)


def find_on_screen(finder: TextFinder, frame: Frame, mapping: ScreenMap, *, text: str | None, role: str | None,
                   name: str | None, exact: bool = False, tree: Callable[[], TreeSource] | None = None) -> Answer:
    """Look for `text` on `frame`, or (`role`/`name`) for elements in the tree `tree()` gives; an error
    Answer for a bad query or nothing found."""
    from vision.locate.find import AmbiguousMatch, NotFound, reading_order

    if role is not None or name is not None:
        if text is not None:
            return Answer("give either text, or role and name, not both", error=True)
        if tree is None:
            return Answer("no accessibility tree can be read here; find by visible text with {\"text\": ...}",
                          error=True)
        return find_element_on_screen(tree(), mapping, role=role, name=name, exact=exact)
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
    data = {"matches": [as_match(mapping, m) for m in reading_order(matches)]}
    return Answer(json.dumps(data), data=data)


__all__ = ["as_element", "as_match", "find_element_on_screen", "find_on_screen", "model_box"]
