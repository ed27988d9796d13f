"""The one policy check every entry point makes before acting.

Model tool calls (the loop's confirm hook), a task's scripted steps and its setup and check
commands, `deskpilot act`, a replay and the MCP server all call a `Guard` with the canonical
action (as a tool call) before it runs. The guard asks the focused window, reads the call with
what it remembers of this run (the bash tool's shell: variables, aliases and functions; each
window's typed line: a command split over several `type` and `key` actions is judged whole when
Return comes), lets the policy decide, and then, per `--confirm`:

- "allow": everything runs except what a rule denies;
- "deny": every "ask" is refused (nobody can answer);
- "ask": the asker answers "allow", "deny" or "always" (allow this rule for the rest of the run);
  with no asker every "ask" is refused; an asker that fails refuses.

A refusal raises `Denied` (a ToolError: the loop hands it to the model as an error result; the
other entry points stop, exit 1, naming the rule). Only calls that were let through change what the
guard remembers. `run_policy` loads the policy of a run: a task file's `policy:` may only tighten
unless the person running passed `--confirm allow`.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actions.result import ToolError
from agent.safety.reading import ReadState, read_call, window_key
from agent.safety.rules import COMPUTER, CallFacts, PolicyContext, Verdict
from agent.types import ToolCall

if TYPE_CHECKING:
    from agent.safety.policy import Policy

MODES = ("ask", "allow", "deny")
Asker = Callable[[Verdict, ToolCall, Any], str]
DONT_WORK_AROUND = "Do not try to get the same effect another way; if the task needs it, say so."


class Denied(ToolError):
    """The policy refused an action. str(): the message for the model; `why`: the same for a person."""

    def __init__(self, message: str, why: str | None = None, verdict: Verdict | None = None) -> None:
        super().__init__(message)
        self.why = why or message
        self.verdict = verdict


def run_policy(overrides: Any = None, mode: str | None = None, source: str = "task policy") -> Policy:
    """The policy of a run: defaults, the user's file, then a task's `policy:` (tighten-only unless mode is allow)."""
    from agent.safety.policy import Policy

    return Policy.load(overrides=overrides, overrides_source=source, task_may_loosen=mode == "allow")


class Guard:
    """Checks every action of one run against the policy; call it as the loop's confirm hook."""

    def __init__(self, policy: Policy, mode: str, context_provider: Callable[[], PolicyContext],
                 asker: Asker | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"confirm mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.policy, self.mode, self.context_provider, self.asker = policy, mode, context_provider, asker
        self.always: set[str] = set()
        self.state = ReadState()
        self.approved: dict[str, str] = {}  # per window: the line a person allowed while it was typed
        self._lock = threading.RLock()

    def __call__(self, call: ToolCall, action: Any = None) -> None:
        self.check(call, action)

    def check(self, call: ToolCall, action: Any = None) -> Verdict:
        """Decide `call` (with its parsed `action`, or None); raise Denied to refuse, else remember its effect."""
        with self._lock:
            context = self.context_provider()
            facts = CallFacts.of(call, action, context)
            data = call.input if isinstance(call.input, dict) else {}
            key = window_key(facts)
            reading, after = read_call(facts, data, self.state, self.approved.get(key))
            verdict = self.policy.decide(call, action, context, reading)
            asked = self.confirm(verdict, call, action)
            self.state = after
            if facts.tool == COMPUTER and key in after.lines:
                line = after.lines[key].text
                if asked:
                    self.approved[key] = line
                elif self.approved.get(key) and not line:
                    self.approved.pop(key, None)  # the approved line ran (or was dropped)
            return verdict

    def check_action(self, action: dict[str, Any], parsed: Any = None, source: str = "script") -> Verdict:
        """A computer action from a task step, `act` or a replay (canonical, screen pixels)."""
        return self.check(ToolCall(source, COMPUTER, dict(action)), parsed)

    def check_command(self, command: str | list[str], source: str = "task") -> Verdict:
        """A shell command a task runs (`run`, `launch`, `command`): judged like the bash tool's."""
        text = command if isinstance(command, str) else shlex.join(command)
        return self.check(ToolCall(source, "bash", {"command": text}), None)

    def confirm(self, verdict: Verdict, call: ToolCall, action: Any) -> bool:
        """Apply the mode to a verdict: raise Denied, or return whether a person allowed it."""
        if verdict.decision == "allow":
            return False
        rule = f"policy rule {verdict.rule!r}" if verdict.rule else "the policy's default"
        what = f" ({verdict.matched})" if verdict.matched else ""
        if verdict.decision == "deny":
            raise Denied(f"refused by {rule}: {verdict.reason}. {DONT_WORK_AROUND}",
                         f"refused by {rule}: {verdict.reason}{what}", verdict)
        if self.mode == "allow" or verdict.rule in self.always:
            return False
        if self.mode == "deny" or self.asker is None:
            nobody = "it needs a person's confirmation and none is available"
            raise Denied(f"refused by {rule}: {verdict.reason} ({nobody}). {DONT_WORK_AROUND}",
                         f"refused by {rule}: {verdict.reason}{what}; {nobody}", verdict)
        try:
            answer = self.asker(verdict, call, action)
        except (EOFError, OSError):
            answer = "deny"
        if answer == "always":
            if verdict.rule:
                self.always.add(verdict.rule)
            return True
        if answer == "allow":
            return True
        raise Denied(f"refused by the user ({rule}: {verdict.reason}). {DONT_WORK_AROUND}",
                     f"refused by the user ({rule}: {verdict.reason}{what})", verdict)


__all__ = ["DONT_WORK_AROUND", "MODES", "Asker", "Denied", "Guard", "run_policy"]
