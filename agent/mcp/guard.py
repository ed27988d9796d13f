"""The safety policy in front of every MCP action, and the question put to the client's user.

`policy_hook` is the one place where the MCP server gets its policy check: the same rules and
`--confirm` modes as the loop (`agent.safety`), so a change to how every entry point is guarded
is a change here alone. Standard input is the protocol stream, so the terminal is never asked:
"ask" verdicts go to `asker` (MCP elicitation), or are refused when there is none.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from agent.errors import BadInput

if TYPE_CHECKING:
    from agent.safety.confirm import Asker
    from agent.safety.rules import Verdict
    from agent.session import Session
    from agent.types import ToolCall

Confirm = Callable[["ToolCall", Any], None]


def policy_hook(session: Session, mode: str, asker: Asker | None) -> Confirm:
    """The confirm hook for `session`'s calls under `--confirm MODE`; it raises `Denied` to refuse.

    `asker` answers "ask" verdicts ("allow", "deny" or "always"); without one they are refused.
    BadInput when the user's policy file does not validate.
    """
    from agent.safety.confirm import make_confirm
    from agent.safety.policy import Policy, PolicyError

    try:
        policy = Policy.load()
    except PolicyError as exc:
        raise BadInput(f"the safety policy: {exc}") from None
    workdir, display = Path(session.options.workdir), session.desktop.display
    return make_confirm(policy, mode, lambda: lazy_context(workdir, display), asker)


def lazy_context(workdir: Path, display: str) -> Any:
    """The policy's context (`agent.safety.rules.PolicyContext`) for one call, whose focused window is asked of
    the X server only when a rule looks at it (typing into a terminal): the same decisions as
    `context_provider`, without an X round trip for every click."""
    from agent.safety.rules import PolicyContext, focused_window

    class LazyContext(PolicyContext):
        def __init__(self) -> None:
            object.__setattr__(self, "workdir", workdir)

        @property
        def focused_window(self) -> str | None:  # type: ignore[override]
            if "_window" not in self.__dict__:
                object.__setattr__(self, "_window", focused_window(display))
            return self.__dict__["_window"]

    return LazyContext()


class Confirmation(BaseModel):
    """What the client's user answers when a policy rule asks (an MCP elicitation form)."""

    decision: Literal["allow", "deny", "always"] = Field(
        description="allow: run this action once; deny: refuse it; always: allow this rule for the rest of the "
                    "session")


def question(verdict: Verdict, call: ToolCall, action: Any) -> str:
    """The elicitation message: which rule asks, why, and the action on one escaped line."""
    from agent.safety.confirm import describe_call

    rule = f"policy rule {verdict.rule!r}" if verdict.rule else "the safety policy"
    return (f"deskpilot: {rule} asks for your confirmation: {verdict.reason}.\n"
            f"  {describe_call(call, action)}\nAllow it?")


__all__ = ["Confirm", "Confirmation", "policy_hook", "question"]
