"""Task files: the YAML format of DESIGN.md ("Task files") as typed models; `Task` is the whole file.

`agent.tasks.loader.load_task(path)` reads and validates a file into a `Task`. The models are
split by what they describe: field types in `agent.tasks.fields`, targets and queries in
`agent.tasks.targets`, the one-key entries of `setup`, `steps` and `checks` in `agent.tasks.items`,
and the task itself (with its display and limits) here.

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

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    Field,
    PrivateAttr,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent.tasks.bounds import outside_display
from agent.tasks.fields import SecretName, SecretText, StrictModel, Text, context_of, fail
from agent.tasks.items import AgentStep, AnyCheck, Check, OutcomeCheck, SetupStep, Step, TypeStep
from vision.geometry import Size

if TYPE_CHECKING:
    from agent.budget import Limits


class Display(StrictModel):
    """The virtual display's size in pixels."""

    width: Annotated[StrictInt, Field(ge=16, le=16384)]
    height: Annotated[StrictInt, Field(ge=16, le=16384)]

    @property
    def size(self) -> Size:
        """As a geometry Size."""
        return Size(self.width, self.height)


class TaskLimits(StrictModel):
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



def has_outcome_check(check: Any) -> bool:
    """Whether a check is, or holds, an outcome check."""
    if isinstance(check, AnyCheck):
        return any(has_outcome_check(c) for c in check.any)
    return isinstance(check, OutcomeCheck)


class Task(StrictModel):
    """A task file: a goal for a model, scripted steps, or both; setup before, checks after."""

    name: Text | None = Field(None, description="A short name (default: the file's name without its extension).")
    goal: Text | None = Field(None, description="What to achieve; a model works on it when the task has no steps.")
    display: Display | None = Field(None, description="The virtual display's size.")
    setup: list[SetupStep] = Field(default_factory=list,
                                   description="Run in order before anything else: launch, run, wait_for.")
    steps: list[Step] = Field(default_factory=list, description="Scripted steps, in order; each has one key.")
    checks: list[Check] = Field(default_factory=list,
                                description="All must hold for the run to succeed: screen, file, command, "
                                            "output, outcome, any.")
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
        _, environ = context_of(info)
        for i, name in enumerate(value):
            if name not in environ:
                raise fail("secret_unset", f"environment variable {name} is not set "
                                            "(export it before running the task)", (i,))
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _has_work(self) -> Task:
        if not self.goal and not self.steps:
            raise fail("no_work", "a task needs a goal (for a model), steps, or both", ("goal",))
        if not self.uses_model and any(has_outcome_check(c) for c in self.checks):
            raise fail("outcome_without_model", "an outcome check needs a model to judge: give the task a goal "
                                                "without steps, or an agent step", ("checks",))
        return self

    @model_validator(mode="after")
    def _inside_display(self) -> Task:
        """With `display` given, every point, region and offset must fit in it (checked at load)."""
        if self.display is None:
            return self
        from pydantic import ValidationError
        from pydantic_core import InitErrorDetails

        errors = [InitErrorDetails(type=fail("outside_display", message), loc=path, input=value)
                  for path, value, message in outside_display(self, self.display.size)]
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

    @property
    def uses_model(self) -> bool:
        """Whether a model works on this task: a goal without steps, or an `agent:` step."""
        return bool(self.goal and not self.steps) or any(isinstance(s, AgentStep) for s in self.steps)

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

