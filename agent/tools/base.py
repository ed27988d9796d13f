"""The Tool protocol, the validated call it produces, and the collection that dispatches by name.

A call is validated first (`Tool.validate` -> Invocation) and performed after (`Tool.__call__`),
so the safety policy and the recording see exactly what will run before it runs. Errors found in
either half are ToolError or ActionError; the collection turns nothing into results itself: the
loop does, where actions are dispatched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from actions.result import ToolError, ToolResult

if TYPE_CHECKING:
    from actions.vocabulary import Action
    from agent.types import ToolCall, ToolSpec

READ_ONLY_ACTIONS = frozenset({"screenshot", "cursor_position", "zoom"})


@dataclass(frozen=True)
class Invocation:
    """A validated tool call. For the computer: `action` in screen pixels and `model_action` as the
    model sent it (model space); for other tools both are None and `call.input` is what runs."""

    call: ToolCall
    action: Action | None = None
    model_action: Action | None = None

    @property
    def tool(self) -> str:
        """The tool's name."""
        return self.call.name

    @property
    def canonical(self) -> dict[str, Any]:
        """What runs, as the recording keeps it: the canonical action, or the tool and its input."""
        if self.action is not None:
            return self.action.model_dump(exclude_none=True)
        return {"tool": self.call.name, **self.call.input}

    @property
    def settles(self) -> bool:
        """True when the screen may change (any tool but the computer's read-only actions): the
        screen is waited for after it."""
        return self.action is None or self.action.action not in READ_ONLY_ACTIONS


class Tool(Protocol):
    """A tool: its name, its definition for the model, validation, and the call itself."""

    name: str

    @property
    def spec(self) -> ToolSpec:
        """The definition the model is given."""
        ...

    def validate(self, call: ToolCall) -> Invocation:
        """Check the call's input; ToolError or ActionError naming the problem. Nothing runs."""
        ...

    def __call__(self, invocation: Invocation) -> ToolResult:
        """Run a validated call; failures come back as error results."""
        ...


class ToolBox:
    """The tools of a run, by name.

    Every result's text (output, error, system note) is redacted before anyone sees it: each known
    secret value (agent.vault.secret_values: API keys, sealed variables, and `secrets`, e.g. a
    task's secret values) is replaced by "•••", so neither the recording nor the model gets it.
    """

    def __init__(self, tools: Iterable[Tool], secrets: Iterable[str] = ()) -> None:
        self.tools: dict[str, Tool] = {tool.name: tool for tool in tools}
        self.secrets = [s for s in secrets if s]

    def __getitem__(self, name: str) -> Tool:
        return self.tools[name]

    def __contains__(self, name: object) -> bool:
        return name in self.tools

    def specs(self) -> list[ToolSpec]:
        """Every tool's definition, in order."""
        return [tool.spec for tool in self.tools.values()]

    def validate(self, call: ToolCall) -> Invocation:
        """The call validated by its tool; ToolError for a tool that does not exist."""
        tool = self.tools.get(call.name)
        if tool is None:
            raise ToolError(f"unknown tool {call.name!r}; the tools are {', '.join(self.tools)}")
        return tool.validate(call)

    def run(self, invocation: Invocation) -> ToolResult:
        """Perform a validated call with its tool; the result comes back redacted."""
        try:
            return self.redacted(self.tools[invocation.tool](invocation))
        except ToolError as exc:
            raise ToolError(self.redacted(ToolResult(error=str(exc))).error or "") from None

    def redacted(self, result: ToolResult) -> ToolResult:
        """`result` with every known secret value masked in its text."""
        from dataclasses import replace

        from agent.vault import redact, secret_values

        values = secret_values(self.secrets)
        return replace(result, output=redact(result.output, values), error=redact(result.error, values),
                       system=redact(result.system, values))
