"""Loading a task file: YAML with line numbers, validated into a `Task`, every problem located.

`load_task(path)` reads a task file and returns a `Task`, or raises `TaskFileError` naming the
file, the (1-based) line and the field of every problem found, e.g.

    fill.yaml:7: steps[2].click.index: Input should be a valid integer, got 'two'

Nothing in a task runs before the whole file validates. The file must be a regular file of at
most MAX_TASK_BYTES (1 MiB, checked before it is read); the YAML reader refuses control characters,
nesting deeper than 64 levels and more than 100,000 values (agent.yaml_lines). Beyond the schema, loading checks that
every image file exists (paths are relative to the task file's folder), that every secret's
environment variable is set, that `key:` steps name real keys, and that no YAML key is repeated
(PyYAML would silently keep the last one). `task_json_schema()` is the format as a JSON Schema.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent import vault
from agent.tasks.fields import kind_of
from agent.tasks.items import CHECK_KINDS, SETUP_KINDS, STEP_KINDS
from agent.tasks.schema import Task
from agent.yaml_lines import YamlDocument, YamlError, YamlPath, YamlProblem, format_path, read_yaml

SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"
MAX_PROBLEMS = 20
MAX_TASK_BYTES = 1 << 20  # 1 MiB: refused before reading; real task files are a few KB

# error fields for problems that are not about one key
FILE_FIELD, YAML_FIELD, TASK_FIELD = "file", "yaml", "task"

# the discriminator tags pydantic puts in error locations; a problem's field path leaves them out
_TAGS = frozenset(
    [f"step:{k}" for k in STEP_KINDS] + [f"setup:{k}" for k in SETUP_KINDS] + [f"check:{k}" for k in CHECK_KINDS]
    + ["target:text", "target:image", "target:a11y", "target:point", "query:text", "query:image", "query:a11y",
       "cmd:shell", "cmd:argv",
       "type:text", "type:secret"])


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


def _problems(exc: ValidationError, document: YamlDocument) -> list[Problem]:
    """Pydantic errors -> problems with the YAML line and field path of each."""
    problems = []
    for error in exc.errors():
        loc: YamlPath = tuple(p for p in error["loc"] if not (isinstance(p, str) and p in _TAGS))
        loc = (*loc, *(error.get("ctx") or {}).get("at", ()))
        problems.append(Problem(document.nearest_line(loc), _field(loc), _message(error)))
    return problems


def _field(path: YamlPath) -> str:
    """('steps', 2, 'click', 'index') -> 'steps[2].click.index'; the whole task: 'task'."""
    return format_path(path) or TASK_FIELD


def _read(text: str, label: str) -> YamlDocument:
    """The task file's YAML with the line of every key and item; TaskFileError for unusable YAML."""
    try:
        return read_yaml(text, mapping=True)
    except YamlError as exc:
        raise TaskFileError(label, [_yaml_problem(p) for p in exc.problems]) from None


def _yaml_problem(problem: YamlProblem) -> Problem:
    if problem.kind in ("syntax", "too_large", "too_deep", "control"):
        return Problem(problem.line, YAML_FIELD, problem.message)
    if problem.kind == "empty":
        return Problem(problem.line, TASK_FIELD, "the file is empty; a task needs a goal or steps")
    if problem.kind == "not_mapping":
        return Problem(problem.line, TASK_FIELD, f"the top level must be a mapping of keys (name, goal, steps, ...), "
                                                 f"got {problem.found}")
    return Problem(problem.line, _field(problem.path), problem.message)


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
        return f"expected a mapping, got {kind_of(value)}"
    if kind in ("list_type", "tuple_type"):
        return f"expected a list, got {kind_of(value)}"
    if kind.endswith("_type") or kind.endswith("_parsing") or kind in ("literal_error", "string_pattern_mismatch"):
        return f"{message}, got {kind_of(value)}"
    if kind.startswith(("greater_than", "less_than")) or kind in ("finite_number",):
        return f"{message}, got {value!r}"
    return message


def parse_task(text: str, path: str | os.PathLike[str] = "<string>", *,
               environ: Mapping[str, str] | None = None) -> Task:
    """Parse and validate a task file's text; relative paths start from `path`'s folder.

    Raises TaskFileError naming `path`, the line and the field of every problem found.
    """
    label = str(path)
    document = _read(text.removeprefix("\ufeff"), label)
    real = Path(path).resolve() if label != "<string>" else None
    environ = vault.environ() if environ is None else environ
    context = {"folder": real.parent if real else Path.cwd(), "environ": environ,
               "name": real.stem if real else None}
    try:
        task = Task.model_validate(document.data, context=context)
    except ValidationError as exc:
        raise TaskFileError(label, _problems(exc, document)) from None
    task._path = real
    for key, items in (("setup", task.setup), ("steps", task.steps), ("checks", task.checks)):
        for i, item in enumerate(items):
            item._line = document.line_of((key, i))
    return task


def load_task(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Task:
    """Read, parse and validate a task file (YAML, UTF-8).

    Returns the Task with `path`/`folder` set, image and file paths resolved against the file's
    folder and each item's `line` recorded. Raises TaskFileError naming the file, the line and the
    field of every problem; secrets are looked up in `environ` (default: os.environ).
    """
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise TaskFileError(path, [Problem(line, FILE_FIELD, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                                                             f"offset {exc.start})")]) from None
    return parse_task(text, path, environ=environ)


def _read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes: a regular file of at most MAX_TASK_BYTES, checked before reading (never a FIFO,
    a device or a 50 MB file read whole); TaskFileError naming the problem otherwise."""
    import stat

    def refuse(message: str) -> TaskFileError:
        return TaskFileError(path, [Problem(None, FILE_FIELD, message)])

    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise refuse("is a directory, not a task file")
        if not stat.S_ISREG(info.st_mode):
            raise refuse("not a regular file (a device, pipe or socket is never read as a task)")
        if info.st_size > MAX_TASK_BYTES:
            raise refuse(f"too large: {info.st_size} bytes, a task file may have at most {MAX_TASK_BYTES} bytes "
                         f"({MAX_TASK_BYTES // (1 << 20)} MiB)")
        with open(path, "rb") as f:  # noqa: PTH123 - bounded read
            raw = f.read(MAX_TASK_BYTES + 1)
    except FileNotFoundError:
        raise refuse("no such file") from None
    except OSError as exc:
        raise refuse(f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_TASK_BYTES:  # it grew while being read
        raise refuse(f"too large: more than {MAX_TASK_BYTES} bytes ({MAX_TASK_BYTES // (1 << 20)} MiB)")
    return raw


def task_json_schema() -> dict[str, Any]:
    """The task file's JSON Schema (draft 2020-12), as `deskpilot schema` prints it."""
    schema = Task.model_json_schema(by_alias=True)
    schema.pop("title", None)
    return {"$schema": SCHEMA_URI, "title": "deskpilot task file", **schema}


