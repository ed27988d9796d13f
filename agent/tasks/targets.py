"""Targets (where to act) and screen queries (what must be seen), as a task file writes them.

A target is found by on-screen text (`TextTarget`, OCR), a template image (`ImageTarget`) or
given as screen coordinates (`PointTarget`); the string shorthand `click: Submit` is
`TextTarget(text="Submit")`. A query (`wait_for`, `expect`, `screen`) is a `TextQuery` or an
`ImageQuery`; a string is a `TextQuery`. Image paths are resolved against the task file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    Tag,
    ValidationInfo,
    field_validator,
)

from agent.tasks.fields import (
    Offset,
    Pixel,
    Region,
    Seconds,
    StrictModel,
    StringShorthand,
    Text,
    context_of,
    fail,
    kind_of,
)

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_THRESHOLD = 0.9
_REGION_DOC = "Search only inside [x0, y0, x1, y1] (screen pixels, x1/y1 exclusive)."
_INDEX_DOC = "Which match when several match, in reading order (0 first; negative counts from the end)."
_OFFSET_DOC = "[dx, dy] screen pixels added to the match's centre."


class TextQuery(StrictModel):
    """Text on the screen, found by OCR."""

    text: Text = Field(description="The text to find: a word or phrase, matched loosely against the words OCR "
                                   "reads (case, punctuation and small OCR slips ignored; a phrase may span "
                                   "several boxes on one line).")
    exact: StrictBool = Field(False, description="Exact text: the whole text of one OCR word box (or, for several "
                                                 "words, of a run of consecutive boxes on one line), case and "
                                                 "punctuation included, nothing stripped.")
    region: Region | None = Field(None, description=_REGION_DOC)
    timeout: Seconds = Field(DEFAULT_TIMEOUT_S, description="Seconds to keep looking (0: look once).")

    def describe(self) -> str:
        """The query in a few words."""
        return repr(self.text) if len(self.text) <= 40 else repr(self.text[:37] + "...")


class ImageQuery(StrictModel):
    """A template image on the screen, found by template matching."""

    image: Path = Field(description="The template's path, relative to the task file's folder "
                                    "(resolved to an absolute path).")
    region: Region | None = Field(None, description=_REGION_DOC)
    threshold: Annotated[StrictFloat, Field(gt=0, le=1)] = Field(DEFAULT_THRESHOLD,
                                                                 description="Minimum match score, 0..1.")
    timeout: Seconds = Field(DEFAULT_TIMEOUT_S, description="Seconds to keep looking (0: look once).")

    @field_validator("image")
    @classmethod
    def _resolve(cls, value: Path, info: ValidationInfo) -> Path:
        folder, _ = context_of(info)
        resolved = (folder / value.expanduser()).resolve()
        if not str(value).strip() or not resolved.is_file():
            raise ValueError(f"image file not found: {str(value)!r} (looked for {resolved})")
        return resolved

    def describe(self) -> str:
        """The query in a few words."""
        return f"image {self.image.name}"


class TextTarget(TextQuery):
    """A point to act on, found by on-screen text."""

    index: StrictInt | None = Field(None, description=_INDEX_DOC)
    offset: Offset = Field((0, 0), description=_OFFSET_DOC)


class ImageTarget(ImageQuery):
    """A point to act on, found by a template image."""

    index: StrictInt | None = Field(None, description=_INDEX_DOC)
    offset: Offset = Field((0, 0), description=_OFFSET_DOC)


class PointTarget(StrictModel):
    """A point given by screen coordinates."""

    x: Pixel
    y: Pixel

    def describe(self) -> str:
        """The target in a few words."""
        return f"({self.x}, {self.y})"


def _expand_target(value: Any) -> Any:
    """`Submit` -> {text: Submit}; a mapping must say how it finds its point."""
    if isinstance(value, str):
        return {"text": value}
    if isinstance(value, dict):
        ways = [w for w in ("text", "image") if w in value] + (["x/y"] if "x" in value or "y" in value else [])
        if len(ways) > 1:
            raise fail("target", f"a target is found by one of text, image or x/y; got {' and '.join(ways)}")
        if not ways:
            raise fail("target", "a target needs text, image, or x and y, e.g. {text: Submit}")
        return value
    if isinstance(value, BaseModel):
        return value
    raise fail("target", f"a target is text, {{text: ...}}, {{image: ...}} or {{x: ..., y: ...}}; "
                          f"got {kind_of(value)}")


def _target_tag(value: Any) -> str:
    if isinstance(value, BaseModel):
        return {TextTarget: "target:text", ImageTarget: "target:image"}.get(type(value), "target:point")
    return "target:text" if "text" in value else "target:image" if "image" in value else "target:point"


Target = Annotated[
    Union[Annotated[TextTarget, Tag("target:text")], Annotated[ImageTarget, Tag("target:image")],  # noqa: UP007
          Annotated[PointTarget, Tag("target:point")]],
    Discriminator(_target_tag),
    BeforeValidator(_expand_target),
    StringShorthand("shorthand for {text: ...}"),
]


def _expand_query(value: Any) -> Any:
    """`Saved` -> {text: Saved}; a mapping needs exactly one of text and image."""
    if isinstance(value, str):
        return {"text": value}
    if isinstance(value, dict):
        ways = [w for w in ("text", "image") if w in value]
        if len(ways) > 1:
            raise fail("query", "give text or image, not both")
        if not ways:
            raise fail("query", "needs text or image, e.g. {text: Saved}")
        return value
    if isinstance(value, BaseModel):
        return value
    raise fail("query", f"expected text, {{text: ...}} or {{image: ...}}; got {kind_of(value)}")


def _query_tag(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "query:image" if isinstance(value, ImageQuery) else "query:text"
    return "query:text" if "text" in value else "query:image"


Query = Annotated[
    Union[Annotated[TextQuery, Tag("query:text")], Annotated[ImageQuery, Tag("query:image")]],  # noqa: UP007
    Discriminator(_query_tag),
    BeforeValidator(_expand_query),
    StringShorthand("shorthand for {text: ...}"),
]

