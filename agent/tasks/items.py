"""The entries of a task file's `setup`, `steps` and `checks`: one key each, its kind.

Each item is a mapping with exactly one key; the parsed item exposes `kind` (that key, e.g.
"click"), `value` (the parsed value, e.g. a `TextTarget`) and `line` (its YAML line, set by the
loader). `describe()` gives a short, secret-free summary, so a runtime error can read
`f"step {n} (line {step.line}): {step.describe()}: {error}"`. `Step`, `SetupStep` and `Check`
are the unions a task's lists hold; STEP_KINDS, SETUP_KINDS and CHECK_KINDS map each key to
its class.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from actions.vocabulary import MAX_SCROLL
from agent.tasks.fields import (
    MAX_SECONDS,
    Command,
    KeyText,
    LongForm,
    Seconds,
    SecretText,
    StrictModel,
    Text,
    TypeText,
    context_of,
    describe_command,
    fail,
    kind_of,
    suggest,
)
from agent.tasks.targets import Query, Target


class Drag(StrictModel):
    """Press at one target, move to another, release."""

    model_config = ConfigDict(populate_by_name=True)

    from_: Target = Field(alias="from", description="Where the drag starts.")
    to: Target = Field(description="Where the drag ends.")


class Scroll(StrictModel):
    """Turn the mouse wheel."""

    direction: Literal["up", "down", "left", "right"]
    amount: Annotated[StrictInt, Field(ge=1, le=MAX_SCROLL)] = Field(3, description="Wheel clicks.")
    target: Target | None = Field(None, description="Where to scroll (the pointer moves there first); "
                                                    "default: where the pointer is.")


def resolve_check_path(value: Path, info: ValidationInfo) -> Path:
    """A check's path against the task file's folder (`~` expanded); one with `$VARS` is kept for run time."""
    if not str(value).strip():
        raise ValueError("the path is empty")
    if "$" in str(value):  # resolved when the check runs, once its variables are known
        return value
    folder, _ = context_of(info)
    return (folder / value.expanduser()).resolve()


class FileCheck(StrictModel):
    """A file that must exist (and contain some text), or must not exist."""

    path: Path = Field(description="The file, relative to the task file's folder (`~` expanded); `$VARS` are "
                                   "expanded when the check runs, from the task commands' environment.")
    contains: str | None = Field(None, description="Text the file must contain.")
    exists: StrictBool = Field(True, description="False: the file must not exist.")

    @field_validator("path")
    @classmethod
    def _resolve(cls, value: Path, info: ValidationInfo) -> Path:
        return resolve_check_path(value, info)

    @model_validator(mode="after")
    def _consistent(self) -> FileCheck:
        if not self.exists and self.contains is not None:
            raise fail("file_check", "contains makes no sense with exists: false", ("contains",))
        return self


def _text_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


TextList = Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_text_list),
                     WithJsonSchema({"oneOf": [{"type": "string", "minLength": 1},
                                               {"type": "array", "items": {"type": "string", "minLength": 1}}]})]


class OutputCheck(StrictModel):
    """What a command prints (its standard output, whatever its exit status) or a file holds, compared with text."""

    command: Command | None = Field(None, description="A command whose standard output is compared.")
    file: Path | None = Field(None, description="A file whose text is compared (relative to the task file's "
                                                "folder; `$VARS` expanded when the check runs).")
    equals: str | None = Field(None, description="The whole text, exactly (after ignore_case/ignore_blanks).")
    equals_file: Path | None = Field(None, description="A file whose whole text it must equal.")
    contains: TextList = Field(default_factory=list, description="Text that must all appear in it.")
    excludes: TextList = Field(default_factory=list, description="Text none of which may appear in it.")
    ignore_case: StrictBool = Field(False, description="Compare case-insensitively.")
    ignore_blanks: StrictBool = Field(False, description="Treat every run of spaces, tabs and newlines as one "
                                                         "space, and ignore them at both ends.")

    @field_validator("file", "equals_file")
    @classmethod
    def _resolve(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else resolve_check_path(value, info)

    @model_validator(mode="after")
    def _consistent(self) -> OutputCheck:
        if (self.command is None) == (self.file is None):
            raise fail("output_source", "give exactly one of command or file: what to read", ("command",))
        if self.equals is not None and self.equals_file is not None:
            raise fail("output_compare", "give equals or equals_file, not both", ("equals_file",))
        if self.equals is None and self.equals_file is None and not self.contains and not self.excludes:
            raise fail("output_compare", "say what to compare: equals, equals_file, contains or excludes",
                       ("equals",))
        return self

    def describe(self) -> str:
        """A short summary."""
        what = describe_command(self.command) if self.command is not None else f"file {self.file}"
        how = ("equals the file " + str(self.equals_file) if self.equals_file is not None else
               f"equals {self.equals!r}" if self.equals is not None else
               " and ".join(p for p in (f"contains {self.contains}" if self.contains else "",
                                        f"excludes {self.excludes}" if self.excludes else "") if p))
        return f"{what} {how}"



# ----------------------------------------------------------------------------- items (one key each)


class TaskItem(StrictModel):
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
        return f"launch {describe_command(self.launch)}"


class TimedItem(TaskItem):
    """An item whose command runs to completion, at most `timeout` seconds.

    Its value is a command, or the long form `{run: COMMAND, timeout: SECONDS}`; the command is
    kept as the item's value either way and the timeout (default DEFAULT_TIMEOUT_S) apart.
    """

    _timeout: float | None = PrivateAttr(default=None)

    @property
    def timeout(self) -> float:
        """Seconds the command may take before its process group is killed."""
        from agent.tasks.commands import DEFAULT_TIMEOUT_S

        return DEFAULT_TIMEOUT_S if self._timeout is None else self._timeout

    @model_validator(mode="wrap")
    @classmethod
    def _long_form(cls, data: Any, handler: Any) -> Any:
        timeout = None
        value = data.get(cls.kind) if isinstance(data, dict) else None
        if isinstance(value, dict):
            unknown = [k for k in value if k not in ("run", "timeout")]
            if unknown:
                raise fail("long_form", f"unknown key {unknown[0]!r}; the long form is "
                                        f"{{run: COMMAND, timeout: SECONDS}}", (cls.kind, unknown[0]))
            if "run" not in value:
                raise fail("long_form", "the long form needs `run: COMMAND` (and optionally `timeout: SECONDS`)",
                           (cls.kind,))
            timeout = value.get("timeout")
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_SECONDS:
                raise fail("timeout", f"timeout must be a number of seconds, more than 0 and at most {MAX_SECONDS:g}, "
                                      f"got {kind_of(timeout)}", (cls.kind, "timeout"))
            data = {**data, cls.kind: value["run"]}
        item = handler(data)
        if timeout is not None:
            item._timeout = float(timeout)
        return item

    def describe(self) -> str:
        """A short summary."""
        return f"{self.kind} {describe_command(self.value)}"


class RunStep(TimedItem):
    """Run a command to completion (within its timeout); a non-zero exit fails the task."""

    kind: ClassVar[str] = "run"
    run: Annotated[Command, LongForm()]


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


class CommandCheck(TimedItem):
    """A command that must exit with status 0 (within its timeout)."""

    kind: ClassVar[str] = "command"
    command: Annotated[Command, LongForm()]


class OutputCheckItem(TaskItem):
    """A command's output or a file's text compared with text (OSWorld's exact_match, check_include_exclude...)."""

    kind: ClassVar[str] = "output"
    output: OutputCheck


class OutcomeCheck(TaskItem):
    """How the model ended its work: `impossible` holds when it answered that the task cannot be done
    (a reply starting `IMPOSSIBLE:`), `finished` when it said it was done."""

    kind: ClassVar[str] = "outcome"
    outcome: Literal["impossible", "finished"]


class AnyCheck(TaskItem):
    """Holds when at least one of its checks holds."""

    kind: ClassVar[str] = "any"
    any: Annotated[list[Check], Field(min_length=1)]

    def describe(self) -> str:
        """A short summary."""
        return "any of: " + "; ".join(c.describe() for c in self.any)


STEP_KINDS: dict[str, type[TaskItem]] = {c.kind: c for c in (
    ClickStep, DoubleClickStep, TripleClickStep, RightClickStep, MoveStep, DragStep, TypeStep, KeyStep,
    ScrollStep, WaitStep, WaitForStep, ExpectStep, AgentStep)}
SETUP_KINDS: dict[str, type[TaskItem]] = {c.kind: c for c in (LaunchStep, RunStep, WaitForStep)}
CHECK_KINDS: dict[str, type[TaskItem]] = {c.kind: c for c in (
    ScreenCheck, FileCheckItem, CommandCheck, OutputCheckItem, OutcomeCheck, AnyCheck)}
POINTER_KINDS = frozenset({"click", "double_click", "triple_click", "right_click", "move"})


def _one_key(what: str, kinds: dict[str, type[TaskItem]], example: str) -> Callable[[Any], Any]:
    """A before-validator: an item is a mapping with exactly one known key."""
    names = list(kinds)

    def check(value: Any) -> Any:
        if isinstance(value, TaskItem):
            return value
        if value is None:
            raise fail("empty_item", f"empty {what}: give one of {', '.join(names)}, e.g. `- {example}`")
        if not isinstance(value, dict):
            raise fail("item_type", f"a {what} is a mapping with one key, e.g. `- {example}`; got {kind_of(value)}")
        if not value:
            raise fail("empty_item", f"empty {what}: give one of {', '.join(names)}")
        known = [k for k in value if k in kinds]
        for key in value:
            if key in kinds:
                continue
            if known:
                message = (f"unexpected key {key!r} next to {known[0]!r}: a {what} has exactly one key "
                           f"(put options inside {known[0]!r}'s value)")
            else:
                message = f"unknown {what} {key!r}{suggest(str(key), names)}; expected one of {', '.join(names)}"
            raise fail("unknown_item", message, (key,))
        if len(known) > 1:
            raise fail("several_actions", f"a {what} has exactly one action, got {len(known)}: "
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
AnyCheck.model_rebuild()
