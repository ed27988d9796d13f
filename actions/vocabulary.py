"""The canonical action vocabulary (Claude's computer tool) as typed, validated models.

Coordinates are `[x, y]` integers in the space the caller names through `bounds`: screen
pixels for canonical actions, model pixels for what a model sent. `parse_action` turns a
dict into one of these models or raises ActionError with a message that names the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from actions.keys import KeyNameError, parse_keys, parse_modifiers
from vision.geometry import CoordinateError, Size

MAX_TYPE_CHARS = 10_000
MAX_DURATION_S = 100.0
MAX_SCROLL = 50
MAX_REPEAT = 100

Point = tuple[Annotated[StrictInt, Field(ge=0)], Annotated[StrictInt, Field(ge=0)]]
Number = Annotated[float, Field(ge=0, le=MAX_DURATION_S, allow_inf_nan=False)]


class ActionError(ValueError):
    """An action that is malformed, unknown or out of bounds; it is never executed."""


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def points(self) -> dict[str, tuple[int, int]]:
        """The action's coordinates by field name."""
        return {k: v for k in ("start_coordinate", "coordinate") if (v := getattr(self, k, None))}


class _Modified(_Action):
    """An action that may hold modifier keys (`text`, e.g. "shift" or "ctrl+alt")."""

    text: str | None = None

    @field_validator("text")
    @classmethod
    def _modifiers(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_modifiers(value)
            except KeyNameError as exc:
                raise ValueError(str(exc)) from None
        return value


class Screenshot(_Action):
    """Capture the screen."""

    action: Literal["screenshot"]


class CursorPosition(_Action):
    """Report where the pointer is."""

    action: Literal["cursor_position"]


class MouseMove(_Action):
    """Move the pointer."""

    action: Literal["mouse_move"]
    coordinate: Point


class Click(_Modified):
    """A click of some button and count, at `coordinate` or where the pointer is."""

    action: Literal["left_click", "right_click", "middle_click", "double_click", "triple_click"]
    coordinate: Point | None = None


class LeftClickDrag(_Modified):
    """Press the left button at `start_coordinate`, move to `coordinate`, release."""

    action: Literal["left_click_drag"]
    start_coordinate: Point
    coordinate: Point


class MouseButton(_Action):
    """Press or release the left button, optionally after moving to `coordinate`."""

    action: Literal["left_mouse_down", "left_mouse_up"]
    coordinate: Point | None = None


class Scroll(_Modified):
    """Scroll `scroll_amount` wheel clicks in `scroll_direction`."""

    action: Literal["scroll"]
    scroll_direction: Literal["up", "down", "left", "right"]
    scroll_amount: Annotated[StrictInt, Field(ge=1, le=MAX_SCROLL)]
    coordinate: Point | None = None


_CONTROL_NAMES = {0: "NUL", 7: "BEL", 8: "BS", 0x0B: "VT", 0x0C: "FF", 0x1B: "ESC", 0x7F: "DEL"}
TYPABLE_CONTROLS = "\n\r\t"  # typed as Return, Return and Tab


def untypable(text: str) -> str | None:
    """Why `text` cannot be typed (naming the first character that cannot, and where), or None.

    Any Unicode character types, but for control characters other than newline, carriage return
    and tab (NUL, BEL, ESC...: no key produces them as text), lone surrogates and the
    noncharacters U+FFFE and U+FFFF. A key is pressed by name with the `key` action instead.
    """
    import unicodedata

    for at, char in enumerate(text):
        code = ord(char)
        category = unicodedata.category(char)
        if (category == "Cc" and char not in TYPABLE_CONTROLS) or category == "Cs" or code in (0xFFFE, 0xFFFF):
            name = _CONTROL_NAMES.get(code) or unicodedata.name(char, "")
            what = f"U+{code:04X}" + (f" ({name})" if name else "")
            return (f"character {what} at position {at} cannot be typed; only text is typed (use the key action "
                    "for keys such as Escape)")
    return None


def _typable(value: str) -> str:
    problem = untypable(value)
    if problem:
        raise ValueError(problem)
    return value


TypableText = Annotated[str, Field(min_length=1, max_length=MAX_TYPE_CHARS), AfterValidator(_typable)]


class Type(_Action):
    """Type text (any Unicode but control characters; newlines press Return, tabs Tab)."""

    action: Literal["type"]
    text: TypableText


class _Keys(_Action):
    text: str

    @field_validator("text")
    @classmethod
    def _keys(cls, value: str) -> str:
        try:
            parse_keys(value)
        except KeyNameError as exc:
            raise ValueError(str(exc)) from None
        return value


class Key(_Keys):
    """Press a key combination (or several, separated by spaces), `repeat` times."""

    action: Literal["key"]
    repeat: Annotated[StrictInt, Field(ge=1, le=MAX_REPEAT)] | None = None


class HoldKey(_Keys):
    """Hold a key combination down for `duration` seconds."""

    action: Literal["hold_key"]
    duration: Number


class Wait(_Action):
    """Do nothing for `duration` seconds."""

    action: Literal["wait"]
    duration: Number


class Zoom(_Action):
    """A region (x0, y0, x1, y1; x1/y1 exclusive) returned at full screen resolution."""

    action: Literal["zoom"]
    region: tuple[StrictInt, StrictInt, StrictInt, StrictInt]

    @field_validator("region")
    @classmethod
    def _ordered(cls, value: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        x0, y0, x1, y1 = value
        if not (0 <= x0 < x1 and 0 <= y0 < y1):
            raise ValueError(f"region {list(value)} must satisfy 0 <= x0 < x1 and 0 <= y0 < y1")
        return value


Action = Annotated[
    Screenshot | CursorPosition | MouseMove | Click | LeftClickDrag | MouseButton | Scroll | Type
    | Key | HoldKey | Wait | Zoom,
    Field(discriminator="action"),
]
ACTION_NAMES: tuple[str, ...] = (
    "screenshot", "cursor_position", "mouse_move", "left_click", "right_click", "middle_click",
    "double_click", "triple_click", "left_click_drag", "left_mouse_down", "left_mouse_up",
    "scroll", "type", "key", "hold_key", "wait", "zoom",
)
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Action)


def parse_action(data: Any, bounds: Size | None = None, space: str = "screen") -> Action:
    """Validate `data` (a dict as a tool call's input) into an action.

    With `bounds`, every coordinate must lie inside it (`space` names it in errors: "screen" or
    "model image"). Raises ActionError naming the field.
    """
    if not isinstance(data, dict):
        raise ActionError(f"an action must be a JSON object, got {type(data).__name__}")
    name = data.get("action")
    if name not in ACTION_NAMES:
        raise ActionError(f"action: unknown action {name!r}; expected one of {', '.join(ACTION_NAMES)}")
    data = _with_aliases(data)
    try:
        action = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ActionError(f"{name}: {_describe(exc)}") from None
    if bounds is not None:
        check_bounds(action, bounds, space)
    return action


def check_bounds(action: Action, bounds: Size, space: str = "screen") -> None:
    """Raise ActionError if a coordinate or the zoom region lies outside `bounds`."""
    for field, (x, y) in action.points().items():
        if not (x < bounds.width and y < bounds.height):
            raise ActionError(
                f"{action.action}: {field}: ({x}, {y}) is outside the {bounds} {space} "
                f"(x must be 0..{bounds.width - 1}, y 0..{bounds.height - 1})"
            )
    if isinstance(action, Zoom):
        x0, y0, x1, y1 = action.region
        if x1 > bounds.width or y1 > bounds.height:
            raise ActionError(f"zoom: region: {list(action.region)} extends past the {bounds} {space}")


def _with_aliases(data: dict[str, Any]) -> dict[str, Any]:
    """Accept the older spelling `key` for a click's or scroll's held modifiers."""
    if data.get("action") in {"left_click", "right_click", "middle_click", "double_click",
                              "triple_click", "left_click_drag", "scroll"} and "key" in data:
        data = dict(data)
        held = data.pop("key")
        data.setdefault("text", held)
    return data


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"] if not isinstance(p, int) or len(error["loc"]) == 1]
        # drop the discriminator tag pydantic puts first
        if loc and loc[0] in ACTION_NAMES:
            loc = loc[1:]
        field = ".".join(loc) or "input"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


__all__ = ["Action", "ActionError", "CoordinateError", "TypableText", "check_bounds", "parse_action", "untypable"]
