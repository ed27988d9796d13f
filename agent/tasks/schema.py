"""Task files: the YAML format of DESIGN.md ("Task files"), parsed and validated into typed models.

`load_task(path)` reads a task file and returns a `Task`, or raises `TaskFileError` naming the
file, the (1-based) line and the field of every problem found, e.g.

    fill.yaml:7: steps[2].click.index: Input should be a valid integer, got 'two'

Nothing in a task runs before the whole file validates. Beyond the schema, loading checks that
every image file exists (paths are relative to the task file's folder), that every secret's
environment variable is set, that `key:` steps name real keys, and that no YAML key is repeated
(PyYAML would silently keep the last one).

Shape of a parsed task, for runners:

- `task.setup`, `task.steps` and `task.checks` are lists of `TaskItem`s. Each item has exactly one
  key in the file; it exposes `kind` (that key, e.g. "click"), `value` (the parsed value, e.g. a
  `TextTarget`) and `line` (its YAML line). `describe()` gives a short, secret-free summary, so a
  runtime error can read `f"step {n} (line {step.line}): {step.describe()}: {error}"`.
- Targets (`click`, `double_click`, `triple_click`, `right_click`, `move`, `drag.from/to`,
  `scroll.target`) are `TextTarget`, `ImageTarget` or `PointTarget`; the string shorthand
  `click: Submit` is expanded to `TextTarget(text="Submit")`. Screen queries (`wait_for`,
  `expect`, `screen`) are `TextQuery` or `ImageQuery`; a string is a `TextQuery`.
- Image paths are resolved to absolute paths; `file:` check paths are resolved against the task
  file's folder (after `~` expansion). `launch`/`run`/`command` are a shell string (run by
  `/bin/sh`) or a list of arguments (run directly), in the task file's folder.
- `type: {secret: NAME}` is a `SecretText`: only the variable's name is kept, never its value.

Conventions: coordinates, regions (`[x0, y0, x1, y1]`, x1/y1 exclusive) and offsets
(`[dx, dy]`, added to the matched point) are screen pixels. `index` picks one of several matches
in reading order (top to bottom, then left to right), 0 for the first; negative values count
from the end as in Python. A text target matches OCR text case-insensitively as a substring of
a line, or the whole line with `exact: true`. `timeout` is in seconds (default 10; 0 looks once).
`limits` keys that are absent keep the runner's defaults; `null` means unlimited.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    Tag,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from vision.geometry import Size

if TYPE_CHECKING:
    from pydantic import ModelWrapValidatorHandler

    from agent.budget import Limits

SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_THRESHOLD = 0.9
MAX_SECONDS = 3600.0
MAX_SCROLL = 50
MAX_TYPE_CHARS = 10_000
MAX_PROBLEMS = 20
MAX_NODES = 100_000
SECRET_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

# error fields for problems that are not about one key
FILE_FIELD, YAML_FIELD, TASK_FIELD = "file", "yaml", "task"


# ----------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a task file: where (line, field) and what."""

    line: int | None
    field: str
    message: str


class TaskFileError(ValueError):
    """A task file that cannot be used; the message names the file, line and field of each problem.

    `path` is the file as given, `problems` every problem found (sorted by line); `line`, `field`
    and `problem` describe the first one.
    """

    def __init__(self, path: str | os.PathLike[str], problems: list[Problem]) -> None:
        self.path = str(path)
        self.problems = sorted(dict.fromkeys(problems), key=lambda p: p.line or 0)
        super().__init__(self._render())

    @property
    def line(self) -> int | None:
        """The first problem's line (1-based), or None when the file could not be read at all."""
        return self.problems[0].line if self.problems else None

    @property
    def field(self) -> str:
        """The first problem's field path, e.g. `steps[2].click.index`."""
        return self.problems[0].field if self.problems else ""

    @property
    def problem(self) -> str:
        """The first problem's message, without file, line and field."""
        return self.problems[0].message if self.problems else ""

    def _render(self) -> str:
        lines = [f"{self.path}:{p.line}: {p.field}: {p.message}" if p.line is not None
                 else f"{self.path}: {p.field}: {p.message}" for p in self.problems[:MAX_PROBLEMS]]
        if len(self.problems) > MAX_PROBLEMS:
            lines.append(f"... and {len(self.problems) - MAX_PROBLEMS} more problems")
        return "\n".join(lines)


def _fail(code: str, message: str, at: tuple[str | int, ...] = ()) -> PydanticCustomError:
    """A validation error; `at` extends the error's location (e.g. to name an unknown key)."""
    return PydanticCustomError(code, message, {"at": at})


def _kind_of(value: Any) -> str:
    """A short description of a YAML value's type for messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} ({value})"


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _context(info: ValidationInfo) -> tuple[Path, Mapping[str, str]]:
    """The folder paths are relative to and the environment secrets come from."""
    ctx = info.context if isinstance(info.context, dict) else {}
    return Path(ctx.get("folder") or Path.cwd()), ctx.get("environ", os.environ)


# ----------------------------------------------------------------------------- basic types


class _Model(BaseModel):
    """Frozen, unknown keys rejected with a message that lists the expected ones."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        """Reject unknown keys by name, and still report every other problem of the mapping."""
        if isinstance(data, BaseModel):
            return handler(data)
        if not isinstance(data, dict):
            raise _fail("mapping_type", f"expected a mapping with keys {', '.join(_keys(cls))}, got {_kind_of(data)}")
        allowed = _keys(cls)
        names = set(allowed) | set(cls.model_fields)
        unknown = [key for key in data if key not in names]
        if not unknown:
            return handler(data)
        errors = [InitErrorDetails(type=_fail("unknown_key", f"unknown key {key!r}{_suggest(str(key), allowed)}; "
                                                             f"expected {', '.join(allowed)}"),
                                   loc=(key,), input=data[key]) for key in unknown]
        try:
            handler({k: v for k, v in data.items() if k in names})
        except ValidationError as exc:
            errors += [InitErrorDetails(type=PydanticCustomError(e["type"], e["msg"], e.get("ctx")),
                                        loc=e["loc"], input=e["input"]) for e in exc.errors()]
        raise ValidationError.from_exception_data(cls.__name__, errors)


def _keys(cls: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in cls.model_fields.items()]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _ordered_region(value: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = value
    if not (x0 < x1 and y0 < y1):
        raise ValueError(f"region {list(value)} must satisfy x0 < x1 and y0 < y1 ([x0, y0, x1, y1], x1/y1 exclusive)")
    return value


def _items_of(count: int, shape: str) -> Callable[[Any], Any]:
    """A before-validator: a list of exactly `count` items, with a message that shows the shape."""

    def check(value: Any) -> Any:
        if isinstance(value, (list, tuple)) and len(value) != count:
            raise _fail("item_count", f"expected {shape} ({count} integers), got {len(value)} "
                                     f"item{'' if len(value) == 1 else 's'}")
        return value

    return check


Text = Annotated[str, AfterValidator(_not_blank)]
Seconds = Annotated[StrictFloat, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
Pixel = Annotated[StrictInt, Field(ge=0)]
Region = Annotated[tuple[Pixel, Pixel, Pixel, Pixel], AfterValidator(_ordered_region),
                   BeforeValidator(_items_of(4, "[x0, y0, x1, y1]"))]
Offset = Annotated[tuple[StrictInt, StrictInt], BeforeValidator(_items_of(2, "[dx, dy]"))]
SecretName = Annotated[str, Field(pattern=SECRET_NAME_PATTERN)]


class _StringShorthand:
    """JSON-schema marker: the annotated union also accepts a plain string (its shorthand)."""

    def __init__(self, description: str) -> None:
        self.description = description

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler(core_schema)
        string = {"type": "string", "minLength": 1, "description": self.description}
        if "oneOf" in schema:
            return {**schema, "oneOf": [string, *schema["oneOf"]]}
        return {"anyOf": [string, schema]}


# ----------------------------------------------------------------------------- targets and queries

_REGION_DOC = "Search only inside [x0, y0, x1, y1] (screen pixels, x1/y1 exclusive)."
_INDEX_DOC = "Which match when several match, in reading order (0 first; negative counts from the end)."
_OFFSET_DOC = "[dx, dy] screen pixels added to the match's centre."


class TextQuery(_Model):
    """Text on the screen, found by OCR."""

    text: Text = Field(description="The text to find: a case-insensitive substring of an OCR line "
                                   "(the whole line with `exact`).")
    exact: StrictBool = Field(False, description="Match the whole OCR line, case included.")
    region: Region | None = Field(None, description=_REGION_DOC)
    timeout: Seconds = Field(DEFAULT_TIMEOUT_S, description="Seconds to keep looking (0: look once).")

    def describe(self) -> str:
        """The query in a few words."""
        return repr(self.text) if len(self.text) <= 40 else repr(self.text[:37] + "...")


class ImageQuery(_Model):
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
        folder, _ = _context(info)
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


class PointTarget(_Model):
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
            raise _fail("target", f"a target is found by one of text, image or x/y; got {' and '.join(ways)}")
        if not ways:
            raise _fail("target", "a target needs text, image, or x and y, e.g. {text: Submit}")
        return value
    if isinstance(value, BaseModel):
        return value
    raise _fail("target", f"a target is text, {{text: ...}}, {{image: ...}} or {{x: ..., y: ...}}; "
                          f"got {_kind_of(value)}")


def _target_tag(value: Any) -> str:
    if isinstance(value, BaseModel):
        return {TextTarget: "target:text", ImageTarget: "target:image"}.get(type(value), "target:point")
    return "target:text" if "text" in value else "target:image" if "image" in value else "target:point"


Target = Annotated[
    Union[Annotated[TextTarget, Tag("target:text")], Annotated[ImageTarget, Tag("target:image")],  # noqa: UP007
          Annotated[PointTarget, Tag("target:point")]],
    Discriminator(_target_tag),
    BeforeValidator(_expand_target),
    _StringShorthand("shorthand for {text: ...}"),
]


def _expand_query(value: Any) -> Any:
    """`Saved` -> {text: Saved}; a mapping needs exactly one of text and image."""
    if isinstance(value, str):
        return {"text": value}
    if isinstance(value, dict):
        ways = [w for w in ("text", "image") if w in value]
        if len(ways) > 1:
            raise _fail("query", "give text or image, not both")
        if not ways:
            raise _fail("query", "needs text or image, e.g. {text: Saved}")
        return value
    if isinstance(value, BaseModel):
        return value
    raise _fail("query", f"expected text, {{text: ...}} or {{image: ...}}; got {_kind_of(value)}")


def _query_tag(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "query:image" if isinstance(value, ImageQuery) else "query:text"
    return "query:text" if "text" in value else "query:image"


Query = Annotated[
    Union[Annotated[TextQuery, Tag("query:text")], Annotated[ImageQuery, Tag("query:image")]],  # noqa: UP007
    Discriminator(_query_tag),
    BeforeValidator(_expand_query),
    _StringShorthand("shorthand for {text: ...}"),
]


# ----------------------------------------------------------------------------- commands and text


def _check_command(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip():
            raise _fail("command", "the command is empty")
        return value
    if isinstance(value, list):
        if not value:
            raise _fail("command", "the argument list is empty")
        # numbers are fine as arguments ([sleep, 5]); booleans are almost certainly a mistake
        return [str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in value]
    raise _fail("command", f"expected a shell command line or a list of arguments, got {_kind_of(value)}")


_ARGV_SCHEMA = {"type": "array", "minItems": 1, "items": {"type": ["string", "number"]},
                "description": "a program and its arguments, run without a shell"}
Command = Annotated[
    Union[Annotated[Text, Tag("cmd:shell")],  # noqa: UP007
          Annotated[list[str], Tag("cmd:argv"), WithJsonSchema(_ARGV_SCHEMA)]],
    Discriminator(lambda v: "cmd:shell" if isinstance(v, str) else "cmd:argv"),
    BeforeValidator(_check_command),
]


def _describe_command(command: str | list[str]) -> str:
    text = command if isinstance(command, str) else " ".join(command)
    return text if len(text) <= 60 else text[:57] + "..."


class SecretText(_Model):
    """Text taken from an environment variable when typed; never logged, never stored here."""

    secret: SecretName = Field(description="The environment variable's name; it must be set when the task is loaded.")

    @field_validator("secret")
    @classmethod
    def _is_set(cls, value: str, info: ValidationInfo) -> str:
        _, environ = _context(info)
        if value not in environ:
            raise ValueError(f"environment variable {value} is not set (export it before running the task)")
        return value


def _check_type_text(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise _fail("type_text", f"expected text or {{secret: NAME}}, got {_kind_of(value)}; "
                                 "quote it to type it literally")
    if not isinstance(value, (str, dict, BaseModel)):
        raise _fail("type_text", f"expected text or {{secret: NAME}}, got {_kind_of(value)}")
    return value


TypeText = Annotated[
    Union[Annotated[Annotated[str, Field(min_length=1, max_length=MAX_TYPE_CHARS)], Tag("type:text")],  # noqa: UP007
          Annotated[SecretText, Tag("type:secret")]],
    Discriminator(lambda v: "type:text" if isinstance(v, str) else "type:secret"),
    BeforeValidator(_check_type_text),
]


def _check_keys(value: str) -> str:
    try:
        from actions.keys import parse_keys

        parse_keys(value)
    except ImportError:  # no keysym table on this platform: the executor will check at run time
        return value
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    return value


KeyText = Annotated[str, AfterValidator(_check_keys)]


# ----------------------------------------------------------------------------- step values


class Drag(_Model):
    """Press at one target, move to another, release."""

    model_config = ConfigDict(populate_by_name=True)

    from_: Target = Field(alias="from", description="Where the drag starts.")
    to: Target = Field(description="Where the drag ends.")


class Scroll(_Model):
    """Turn the mouse wheel."""

    direction: Literal["up", "down", "left", "right"]
    amount: Annotated[StrictInt, Field(ge=1, le=MAX_SCROLL)] = Field(3, description="Wheel clicks.")
    target: Target | None = Field(None, description="Where to scroll (the pointer moves there first); "
                                                    "default: where the pointer is.")


class FileCheck(_Model):
    """A file that must exist (and contain some text), or must not exist."""

    path: Path = Field(description="The file, relative to the task file's folder (`~` expanded); `$VARS` are "
                                   "expanded when the check runs, from the task commands' environment.")
    contains: str | None = Field(None, description="Text the file must contain.")
    exists: StrictBool = Field(True, description="False: the file must not exist.")

    @field_validator("path")
    @classmethod
    def _resolve(cls, value: Path, info: ValidationInfo) -> Path:
        if not str(value).strip():
            raise ValueError("the path is empty")
        if "$" in str(value):  # resolved when the check runs, once its variables are known
            return value
        folder, _ = _context(info)
        return (folder / value.expanduser()).resolve()

    @model_validator(mode="after")
    def _consistent(self) -> FileCheck:
        if not self.exists and self.contains is not None:
            raise _fail("file_check", "contains makes no sense with exists: false", ("contains",))
        return self


class Display(_Model):
    """The virtual display's size in pixels."""

    width: Annotated[StrictInt, Field(ge=16, le=16384)]
    height: Annotated[StrictInt, Field(ge=16, le=16384)]

    @property
    def size(self) -> Size:
        """As a geometry Size."""
        return Size(self.width, self.height)


class TaskLimits(_Model):
    """Budgets of the run (`agent.loop.Limits`); absent keys keep the defaults, null is unlimited."""

    max_steps: Annotated[StrictInt, Field(ge=1)] | None = None
    max_seconds: Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False)] | None = None
    max_cost_usd: Annotated[StrictFloat, Field(ge=0, allow_inf_nan=False)] | None = None
    max_tokens: Annotated[StrictInt, Field(ge=1)] | None = None

    def apply(self, base: Limits | None = None) -> Limits:
        """`base` (default: Limits()) with the keys this task sets replaced."""
        from dataclasses import replace

        from agent.budget import Limits

        return replace(base or Limits(), **{name: getattr(self, name) for name in self.model_fields_set})


# ----------------------------------------------------------------------------- items (one key each)


class TaskItem(_Model):
    """One entry of `setup`, `steps` or `checks`: a mapping with exactly one key, its `kind`."""

    kind: ClassVar[str]
    _line: int | None = PrivateAttr(default=None)

    @property
    def value(self) -> Any:
        """The parsed value of the item's one key."""
        return getattr(self, self.kind)

    @property
    def line(self) -> int | None:
        """The item's line in the task file (None when not loaded from a file)."""
        return self._line

    def describe(self) -> str:
        """A short summary such as `click 'Submit'`; never contains secret values."""
        value = self.value
        if hasattr(value, "describe"):
            return f"{self.kind} {value.describe()}"
        return f"{self.kind} {value}"


class ClickStep(TaskItem):
    """Left-click a target."""

    kind: ClassVar[str] = "click"
    click: Target


class DoubleClickStep(TaskItem):
    """Double-click a target."""

    kind: ClassVar[str] = "double_click"
    double_click: Target


class TripleClickStep(TaskItem):
    """Triple-click a target."""

    kind: ClassVar[str] = "triple_click"
    triple_click: Target


class RightClickStep(TaskItem):
    """Right-click a target."""

    kind: ClassVar[str] = "right_click"
    right_click: Target


class MoveStep(TaskItem):
    """Move the pointer to a target."""

    kind: ClassVar[str] = "move"
    move: Target


class DragStep(TaskItem):
    """Drag from one target to another."""

    kind: ClassVar[str] = "drag"
    drag: Drag

    def describe(self) -> str:
        """A short summary."""
        return f"drag {self.drag.from_.describe()} to {self.drag.to.describe()}"


class TypeStep(TaskItem):
    """Type text, or a secret from an environment variable."""

    kind: ClassVar[str] = "type"
    type: TypeText

    def describe(self) -> str:
        """A short summary; a secret is named, never shown."""
        if isinstance(self.type, SecretText):
            return f"type secret {self.type.secret}"
        return f"type {self.type!r}" if len(self.type) <= 40 else f"type {self.type[:37] + '...'!r}"


class KeyStep(TaskItem):
    """Press keys (xdotool-style names: `ctrl+s`, `Return`, `ctrl+a Delete`)."""

    kind: ClassVar[str] = "key"
    key: KeyText


class ScrollStep(TaskItem):
    """Scroll."""

    kind: ClassVar[str] = "scroll"
    scroll: Scroll

    def describe(self) -> str:
        """A short summary."""
        where = f" at {self.scroll.target.describe()}" if self.scroll.target else ""
        return f"scroll {self.scroll.direction} {self.scroll.amount}{where}"


class WaitStep(TaskItem):
    """Pause for some seconds."""

    kind: ClassVar[str] = "wait"
    wait: Seconds

    def describe(self) -> str:
        """A short summary."""
        return f"wait {self.wait:g} s"


class WaitForStep(TaskItem):
    """Wait until text or an image is on the screen; fails the task when its timeout passes."""

    kind: ClassVar[str] = "wait_for"
    wait_for: Query


class ExpectStep(TaskItem):
    """Assert that text or an image is on the screen (within its timeout)."""

    kind: ClassVar[str] = "expect"
    expect: Query


class AgentStep(TaskItem):
    """A sub-goal handed to the model."""

    kind: ClassVar[str] = "agent"
    agent: Text

    def describe(self) -> str:
        """A short summary."""
        goal = " ".join(self.agent.split())
        return f"agent {goal!r}" if len(goal) <= 40 else f"agent {goal[:37] + '...'!r}"


class LaunchStep(TaskItem):
    """Start a program in the background on the task's display."""

    kind: ClassVar[str] = "launch"
    launch: Command

    def describe(self) -> str:
        """A short summary."""
        return f"launch {_describe_command(self.launch)}"


class RunStep(TaskItem):
    """Run a command to completion; a non-zero exit fails the task."""

    kind: ClassVar[str] = "run"
    run: Command

    def describe(self) -> str:
        """A short summary."""
        return f"run {_describe_command(self.run)}"


class ScreenCheck(TaskItem):
    """Text or an image that must be on the screen at the end (within its timeout)."""

    kind: ClassVar[str] = "screen"
    screen: Query


class FileCheckItem(TaskItem):
    """A file that must (or must not) exist, optionally containing some text."""

    kind: ClassVar[str] = "file"
    file: FileCheck

    def describe(self) -> str:
        """A short summary."""
        what = "absent" if not self.file.exists else f"contains {self.file.contains!r}" if self.file.contains else ""
        return f"file {self.file.path} {what}".rstrip()


class CommandCheck(TaskItem):
    """A command that must exit with status 0."""

    kind: ClassVar[str] = "command"
    command: Command

    def describe(self) -> str:
        """A short summary."""
        return f"command {_describe_command(self.command)}"


STEP_KINDS: dict[str, type[TaskItem]] = {c.kind: c for c in (
    ClickStep, DoubleClickStep, TripleClickStep, RightClickStep, MoveStep, DragStep, TypeStep, KeyStep,
    ScrollStep, WaitStep, WaitForStep, ExpectStep, AgentStep)}
SETUP_KINDS: dict[str, type[TaskItem]] = {c.kind: c for c in (LaunchStep, RunStep, WaitForStep)}
CHECK_KINDS: dict[str, type[TaskItem]] = {c.kind: c for c in (ScreenCheck, FileCheckItem, CommandCheck)}
POINTER_KINDS = frozenset({"click", "double_click", "triple_click", "right_click", "move"})


def _one_key(what: str, kinds: dict[str, type[TaskItem]], example: str) -> Callable[[Any], Any]:
    """A before-validator: an item is a mapping with exactly one known key."""
    names = list(kinds)

    def check(value: Any) -> Any:
        if isinstance(value, TaskItem):
            return value
        if value is None:
            raise _fail("empty_item", f"empty {what}: give one of {', '.join(names)}, e.g. `- {example}`")
        if not isinstance(value, dict):
            raise _fail("item_type", f"a {what} is a mapping with one key, e.g. `- {example}`; got {_kind_of(value)}")
        if not value:
            raise _fail("empty_item", f"empty {what}: give one of {', '.join(names)}")
        known = [k for k in value if k in kinds]
        for key in value:
            if key in kinds:
                continue
            if known:
                message = (f"unexpected key {key!r} next to {known[0]!r}: a {what} has exactly one key "
                           f"(put options inside {known[0]!r}'s value)")
            else:
                message = f"unknown {what} {key!r}{_suggest(str(key), names)}; expected one of {', '.join(names)}"
            raise _fail("unknown_item", message, (key,))
        if len(known) > 1:
            raise _fail("several_actions", f"a {what} has exactly one action, got {len(known)}: "
                                           f"{' and '.join(repr(k) for k in known)}; split it into separate {what}s")
        return value

    return check


def _item_tag(prefix: str) -> Callable[[Any], str]:
    def tag(value: Any) -> str:
        return f"{prefix}:{value.kind if isinstance(value, TaskItem) else next(iter(value))}"

    return tag


def _items(prefix: str, kinds: dict[str, type[TaskItem]]) -> Any:
    return Union[tuple(Annotated[cls, Tag(f"{prefix}:{kind}")] for kind, cls in kinds.items())]  # noqa: UP007


Step = Annotated[_items("step", STEP_KINDS), Discriminator(_item_tag("step")),
                 BeforeValidator(_one_key("step", STEP_KINDS, "click: Submit"))]
SetupStep = Annotated[_items("setup", SETUP_KINDS), Discriminator(_item_tag("setup")),
                      BeforeValidator(_one_key("setup step", SETUP_KINDS, "launch: python3 app.py"))]
Check = Annotated[_items("check", CHECK_KINDS), Discriminator(_item_tag("check")),
                  BeforeValidator(_one_key("check", CHECK_KINDS, "screen: {text: Done}"))]

_TAGS = frozenset(
    [f"step:{k}" for k in STEP_KINDS] + [f"setup:{k}" for k in SETUP_KINDS] + [f"check:{k}" for k in CHECK_KINDS]
    + ["target:text", "target:image", "target:point", "query:text", "query:image", "cmd:shell", "cmd:argv",
       "type:text", "type:secret"])


# ----------------------------------------------------------------------------- the task


class Task(_Model):
    """A task file: a goal for a model, scripted steps, or both; setup before, checks after."""

    name: Text | None = Field(None, description="A short name (default: the file's name without its extension).")
    goal: Text | None = Field(None, description="What to achieve; a model works on it when the task has no steps.")
    display: Display | None = Field(None, description="The virtual display's size.")
    setup: list[SetupStep] = Field(default_factory=list,
                                   description="Run in order before anything else: launch, run, wait_for.")
    steps: list[Step] = Field(default_factory=list, description="Scripted steps, in order; each has one key.")
    checks: list[Check] = Field(default_factory=list,
                                description="All must hold for the run to succeed: screen, file, command.")
    limits: TaskLimits = Field(default_factory=TaskLimits, description="Budgets of the run.")
    secrets: list[SecretName] = Field(default_factory=list, description="Environment variables a model may type "
                                                                        "as {{secret:NAME}} placeholders.")
    policy: dict[str, Any] | list[Any] | None = Field(None, description="Safety policy rules for this task's model "
                                                                        "steps, in the policy file's format.")

    @field_validator("policy")
    @classmethod
    def _policy_valid(cls, value: dict[str, Any] | list[Any] | None) -> dict[str, Any] | list[Any] | None:
        if value is not None:
            from agent.safety.policy import Policy, PolicyError

            try:
                Policy.load(overrides=value, overrides_source="policy")
            except PolicyError as exc:
                raise ValueError(str(exc)) from None
        return value

    _path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any, info: ValidationInfo) -> Any:
        ctx = info.context if isinstance(info.context, dict) else {}
        if isinstance(data, dict) and "name" not in data and ctx.get("name"):
            data = {"name": ctx["name"], **data}
        return data

    @field_validator("secrets")
    @classmethod
    def _secrets_set(cls, value: list[str], info: ValidationInfo) -> list[str]:
        _, environ = _context(info)
        for i, name in enumerate(value):
            if name not in environ:
                raise _fail("secret_unset", f"environment variable {name} is not set "
                                            "(export it before running the task)", (i,))
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _has_work(self) -> Task:
        if not self.goal and not self.steps:
            raise _fail("no_work", "a task needs a goal (for a model), steps, or both", ("goal",))
        return self

    @property
    def path(self) -> Path | None:
        """The task file (absolute), when loaded from one."""
        return self._path

    @property
    def folder(self) -> Path:
        """The folder commands run in and relative paths start from: the task file's folder."""
        return self._path.parent if self._path else Path.cwd()

    @property
    def secret_names(self) -> list[str]:
        """Every secret the run may type: the declared ones and those of `type: {secret: ...}` steps."""
        used = [s.type.secret for s in self.steps if isinstance(s, TypeStep) and isinstance(s.type, SecretText)]
        return list(dict.fromkeys([*self.secrets, *used]))


# ----------------------------------------------------------------------------- YAML with line numbers

Loc = tuple[str | int, ...]
_MAP_TAGS = {"tag:yaml.org,2002:map"}
_SEQ_TAGS = {"tag:yaml.org,2002:seq"}
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Reader:
    """Turns a composed YAML node tree into plain data, recording the line of every key and item."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.lines: dict[Loc, int] = {}
        self.problems: list[Problem] = []
        self.count = 0
        self.active: set[int] = set()

    def read(self, node: yaml.Node, loc: Loc) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge
        if isinstance(node, yaml.ScalarNode):
            try:
                return self.loader.construct_object(node, deep=True)
            except yaml.constructor.ConstructorError as exc:
                self.problems.append(Problem(_line(node), _field(loc), f"cannot read this value: {exc.problem}"))
                return None
        if id(node) in self.active:
            self.problems.append(Problem(_line(node), _field(loc), "recursive alias"))
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return self.sequence(node, loc)
            return self.mapping(node, loc)
        finally:
            self.active.discard(id(node))

    def sequence(self, node: yaml.SequenceNode, loc: Loc) -> list[Any]:
        if node.tag not in _SEQ_TAGS:
            self.problems.append(Problem(_line(node), _field(loc), f"unsupported YAML tag {node.tag}"))
        items = []
        for i, item in enumerate(node.value):
            self.lines[(*loc, i)] = _line(item)
            items.append(self.read(item, (*loc, i)))
        return items

    def mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[str, Any]:
        if node.tag not in _MAP_TAGS:
            self.problems.append(Problem(_line(node), _field(loc), f"unsupported YAML tag {node.tag}"))
        merged: dict[str, Any] = {}
        result: dict[str, Any] = {}
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *defaults`; explicit keys win, as in PyYAML
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if isinstance(source, yaml.MappingNode):
                        for key, value in self.mapping(source, loc).items():
                            merged.setdefault(key, value)
                    else:
                        self.problems.append(Problem(_line(source), _field(loc), "<< must merge a mapping"))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(Problem(_line(key_node), _field(loc), "a key must be a plain name"))
                continue
            key = str(key_node.value)
            if key in first:
                self.problems.append(Problem(_line(key_node), _field((*loc, key)),
                                             f"duplicate key {key!r} (first at line {first[key]})"))
                continue
            first[key] = _line(key_node)
            self.lines[(*loc, key)] = _line(key_node)
            result[key] = self.read(value_node, (*loc, key))
        return {**{k: v for k, v in merged.items() if k not in result}, **result}


class _TooLarge(Exception):
    pass


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _field(loc: Loc) -> str:
    """('steps', 2, 'click', 'index') -> 'steps[2].click.index'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or TASK_FIELD


def _read_yaml(text: str, label: str) -> tuple[Any, dict[Loc, int]]:
    """Parse one YAML document into plain data and the line of every key/item path."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            raise TaskFileError(label, [_syntax_problem(exc)]) from None
        except yaml.YAMLError as exc:
            raise TaskFileError(label, [Problem(1, YAML_FIELD, f"invalid YAML: {exc}")]) from None
        if node is None:
            raise TaskFileError(label, [Problem(1, TASK_FIELD, "the file is empty; a task needs a goal or steps")])
        if not isinstance(node, yaml.MappingNode):
            kind = "a list" if isinstance(node, yaml.SequenceNode) else f"a single value ({node.value!r})"
            raise TaskFileError(label, [Problem(_line(node), TASK_FIELD, f"the top level must be a mapping of keys "
                                                                         f"(name, goal, steps, ...), got {kind}")])
        reader = _Reader(loader)
        reader.lines[()] = _line(node)
        try:
            data = reader.read(node, ())
        except yaml.MarkedYAMLError as exc:
            raise TaskFileError(label, [_syntax_problem(exc)]) from None
        except _TooLarge:
            problem = Problem(1, YAML_FIELD, f"more than {MAX_NODES} values (alias bomb?)")
            raise TaskFileError(label, [problem]) from None
        if reader.problems:
            raise TaskFileError(label, reader.problems)
        return data, reader.lines
    finally:
        loader.dispose()


def _syntax_problem(exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    message = exc.problem or "invalid YAML"
    if exc.context:
        context_line = exc.context_mark.line + 1 if exc.context_mark else line
        where = f" at line {context_line}" if context_line != line else ""
        message = f"{message} ({exc.context}{where})"
    return Problem(line, YAML_FIELD, f"invalid YAML: {message}")


# ----------------------------------------------------------------------------- loading


def _problems(exc: ValidationError, lines: dict[Loc, int]) -> list[Problem]:
    """Pydantic errors -> problems with the YAML line and field path of each."""
    problems = []
    for error in exc.errors():
        loc: Loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p in _TAGS))
        loc = (*loc, *(error.get("ctx") or {}).get("at", ()))
        found = loc
        while found not in lines and found:
            found = found[:-1]
        problems.append(Problem(lines.get(found, 1), _field(loc), _message(error)))
    return problems


def _message(error: Any) -> str:
    kind, message, value = error["type"], error["msg"], error.get("input")
    if "at" in (error.get("ctx") or {}):  # ours, already worded for task files
        return message
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping, got {_kind_of(value)}"
    if kind in ("list_type", "tuple_type"):
        return f"expected a list, got {_kind_of(value)}"
    if kind.endswith("_type") or kind.endswith("_parsing") or kind in ("literal_error", "string_pattern_mismatch"):
        return f"{message}, got {_kind_of(value)}"
    if kind.startswith(("greater_than", "less_than")) or kind in ("finite_number",):
        return f"{message}, got {value!r}"
    return message


def parse_task(text: str, path: str | os.PathLike[str] = "<string>", *,
               environ: Mapping[str, str] | None = None) -> Task:
    """Parse and validate a task file's text; relative paths start from `path`'s folder.

    Raises TaskFileError naming `path`, the line and the field of every problem found.
    """
    label = str(path)
    data, lines = _read_yaml(text.removeprefix("\ufeff"), label)
    real = Path(path).resolve() if label != "<string>" else None
    context = {"folder": real.parent if real else Path.cwd(), "environ": os.environ if environ is None else environ,
               "name": real.stem if real else None}
    try:
        task = Task.model_validate(data, context=context)
    except ValidationError as exc:
        raise TaskFileError(label, _problems(exc, lines)) from None
    task._path = real
    for key, items in (("setup", task.setup), ("steps", task.steps), ("checks", task.checks)):
        for i, item in enumerate(items):
            item._line = lines.get((key, i))
    return task


def load_task(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Task:
    """Read, parse and validate a task file (YAML, UTF-8).

    Returns the Task with `path`/`folder` set, image and file paths resolved against the file's
    folder and each item's `line` recorded. Raises TaskFileError naming the file, the line and the
    field of every problem; secrets are looked up in `environ` (default: os.environ).
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise TaskFileError(path, [Problem(None, FILE_FIELD, "no such file")]) from None
    except IsADirectoryError:
        raise TaskFileError(path, [Problem(None, FILE_FIELD, "is a directory, not a task file")]) from None
    except OSError as exc:
        raise TaskFileError(path, [Problem(None, FILE_FIELD, f"cannot read: {exc.strerror or exc}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise TaskFileError(path, [Problem(line, FILE_FIELD, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                                                             f"offset {exc.start})")]) from None
    return parse_task(text, path, environ=environ)


def task_json_schema() -> dict[str, Any]:
    """The task file's JSON Schema (draft 2020-12), as `deskpilot schema` prints it."""
    schema = Task.model_json_schema(by_alias=True)
    schema.pop("title", None)
    return {"$schema": SCHEMA_URI, "title": "deskpilot task file", **schema}


__all__ = [
    "AgentStep", "Check", "ClickStep", "Command", "CommandCheck", "Display", "DoubleClickStep", "Drag", "DragStep",
    "ExpectStep", "FileCheck", "FileCheckItem", "ImageQuery", "ImageTarget", "KeyStep", "LaunchStep", "MoveStep",
    "PointTarget", "Problem", "Query", "RightClickStep", "RunStep", "ScreenCheck", "Scroll", "ScrollStep",
    "SecretText", "SetupStep", "Step", "Target", "Task", "TaskFileError", "TaskItem", "TaskLimits", "TextQuery",
    "TextTarget", "TripleClickStep", "TypeStep", "WaitForStep", "WaitStep", "load_task", "parse_task",
    "task_json_schema", "POINTER_KINDS", "STEP_KINDS", "SETUP_KINDS", "CHECK_KINDS",
]
