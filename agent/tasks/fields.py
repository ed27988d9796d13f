"""The building blocks of task-file models: a strict base model and the field types of DESIGN.md's format.

`StrictModel` is frozen and rejects unknown keys by name (listing the expected ones), while still
reporting every other problem of the mapping. The field types check what a task file's values
must be: non-blank text, seconds, pixels, regions `[x0, y0, x1, y1]` (x1/y1 exclusive), offsets
`[dx, dy]`, secret names, commands (a shell string or a list of arguments), text to type (or
`{secret: NAME}`) and key names. Their messages are worded for task files (`fail`, `kind_of`).

Validators that resolve paths or look up secrets read the validation context: `folder` (what
relative paths start from) and `environ` (where secrets are looked up), see `context_of`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
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

from actions.vocabulary import TypableText

if TYPE_CHECKING:
    from pydantic import ModelWrapValidatorHandler

MAX_SECONDS = 3600.0
SECRET_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


def fail(code: str, message: str, at: tuple[str | int, ...] = ()) -> PydanticCustomError:
    """A validation error; `at` extends the error's location (e.g. to name an unknown key)."""
    return PydanticCustomError(code, message, {"at": at})


def kind_of(value: Any) -> str:
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


def suggest(word: str, choices: list[str]) -> str:
    """` (did you mean 'x'?)` for the choice closest to `word`, or nothing."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""


def context_of(info: ValidationInfo) -> tuple[Path, Mapping[str, str]]:
    """The folder paths are relative to and the environment secrets come from."""
    ctx = info.context if isinstance(info.context, dict) else {}
    if "environ" in ctx:
        return Path(ctx.get("folder") or Path.cwd()), ctx["environ"]
    from agent.vault import environ

    return Path(ctx.get("folder") or Path.cwd()), environ()


class StrictModel(BaseModel):
    """Frozen, unknown keys rejected with a message that lists the expected ones."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        """Reject unknown keys by name, and still report every other problem of the mapping."""
        if isinstance(data, BaseModel):
            return handler(data)
        if not isinstance(data, dict):
            raise fail("mapping_type", f"expected a mapping with keys {', '.join(_keys(cls))}, got {kind_of(data)}")
        allowed = _keys(cls)
        names = set(allowed) | set(cls.model_fields)
        unknown = [key for key in data if key not in names]
        if not unknown:
            return handler(data)
        errors = [InitErrorDetails(type=fail("unknown_key", f"unknown key {key!r}{suggest(str(key), allowed)}; "
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
            raise fail("item_count", f"expected {shape} ({count} integers), got {len(value)} "
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


class StringShorthand:
    """JSON-schema marker: the annotated union also accepts a plain string (its shorthand)."""

    def __init__(self, description: str) -> None:
        self.description = description

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler(core_schema)
        string = {"type": "string", "minLength": 1, "description": self.description}
        if "oneOf" in schema:
            return {**schema, "oneOf": [string, *schema["oneOf"]]}
        return {"anyOf": [string, schema]}


# ----------------------------------------------------------------------------- commands and text


def _check_command(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip():
            raise fail("command", "the command is empty")
        return value
    if isinstance(value, list):
        if not value:
            raise fail("command", "the argument list is empty")
        # numbers are fine as arguments ([sleep, 5]); booleans are almost certainly a mistake
        return [str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in value]
    raise fail("command", f"expected a shell command line or a list of arguments, got {kind_of(value)}")


_ARGV_SCHEMA = {"type": "array", "minItems": 1, "items": {"type": ["string", "number"]},
                "description": "a program and its arguments, run without a shell"}
Command = Annotated[
    Union[Annotated[Text, Tag("cmd:shell")],  # noqa: UP007
          Annotated[list[str], Tag("cmd:argv"), WithJsonSchema(_ARGV_SCHEMA)]],
    Discriminator(lambda v: "cmd:shell" if isinstance(v, str) else "cmd:argv"),
    BeforeValidator(_check_command),
]


class LongForm:
    """JSON-schema marker: a command also written as `{run: COMMAND, timeout: SECONDS}`."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        command = handler(core_schema)
        long = {"type": "object", "additionalProperties": False, "required": ["run"],
                "properties": {"run": command, "timeout": {"type": "number", "exclusiveMinimum": 0,
                                                           "maximum": MAX_SECONDS,
                                                           "description": "seconds before the command's process "
                                                                          "group is killed (default 120)"}}}
        return {"anyOf": [command, long]}


def describe_command(command: str | list[str]) -> str:
    """A command in at most 60 characters."""
    text = command if isinstance(command, str) else " ".join(command)
    return text if len(text) <= 60 else text[:57] + "..."


class SecretText(StrictModel):
    """Text taken from an environment variable when typed; never logged, never stored here."""

    secret: SecretName = Field(description="The environment variable's name; it must be set when the task is loaded.")

    @field_validator("secret")
    @classmethod
    def _is_set(cls, value: str, info: ValidationInfo) -> str:
        _, environ = context_of(info)
        if value not in environ:
            raise ValueError(f"environment variable {value} is not set (export it before running the task)")
        return value


def _check_type_text(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise fail("type_text", f"expected text or {{secret: NAME}}, got {kind_of(value)}; "
                                 "quote it to type it literally")
    if not isinstance(value, (str, dict, BaseModel)):
        raise fail("type_text", f"expected text or {{secret: NAME}}, got {kind_of(value)}")
    return value


TypeText = Annotated[
    Union[Annotated[TypableText, Tag("type:text")],  # noqa: UP007
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

