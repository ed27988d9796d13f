"""Confirmation: the loop's `confirm(call, action)` hook for `--confirm ask|allow|deny`, and asking a person.

`make_confirm` turns a policy into the hook (a `Guard`, which every other entry point uses too); a
refusal raises `Denied`, which the loop turns into an error result the model sees. `terminal_asker`
asks on a terminal; `describe_call` writes a call on one line with control characters escaped, for a
prompt or a dialog.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from agent.safety.guard import MODES, Asker, Denied, Guard
from agent.safety.rules import BASH, EDITOR, PolicyContext, Verdict

if TYPE_CHECKING:
    from agent.safety.policy import Policy
    from agent.types import ToolCall

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ANSWERS = {"y": "allow", "yes": "allow", "n": "deny", "no": "deny", "": "deny", "a": "always", "always": "always"}
_prompt_lock = threading.Lock()


def make_confirm(policy: Policy, mode: str, context_provider: Callable[[], PolicyContext],
                 asker: Asker | None = None) -> Guard:
    """The loop's confirm hook for `--confirm MODE`: a `Guard` (see agent.safety.guard); it raises Denied to refuse.

    - "allow": everything runs except what a rule denies;
    - "deny": every "ask" is refused (nobody can answer);
    - "ask": `asker(verdict, call, action)` answers "allow", "deny" or "always" (allow this rule for
      the rest of the run); with no asker every "ask" is refused. An asker that fails (EOF, a closed
      stream) or answers anything else refuses.
    """
    return Guard(policy, mode, context_provider, asker)


def describe_call(call: ToolCall, action: Any = None, limit: int = 500) -> str:
    """A one-line, control-character-free description of a call for a prompt or dialog."""
    data = call.input if isinstance(call.input, dict) else {}
    if call.name == BASH:
        text = f"bash: {data.get('command', '') if not data.get('restart') else '(restart)'}"
    elif call.name == EDITOR:
        text = f"editor: {data.get('command')} {data.get('path')}"
    else:
        name = getattr(action, "action", None) or data.get("action")
        value = getattr(action, "text", None) if action is not None else data.get("text")
        text = f"computer: {name}" + (f" {value!r}" if value else "")
    text = _CONTROL.sub(lambda m: repr(m.group(0))[1:-1] if m.group(0) != "\n" else "\u23ce", str(text))
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def terminal_asker(stream_in: TextIO | None = None, stream_out: TextIO | None = None) -> Asker:
    """An asker that prompts "Allow? [y]es/[n]o/[a]lways" (default no); streams default to stdin/stderr.

    The call is shown with control characters escaped, so a command cannot redraw the prompt.
    End of input counts as "no".
    """

    def ask(verdict: Verdict, call: ToolCall, action: Any) -> str:
        src, out = stream_in or sys.stdin, stream_out or sys.stderr
        with _prompt_lock:
            out.write(f"\ndeskpilot: policy rule {verdict.rule!r} asks for confirmation: {verdict.reason}\n"
                      f"  {describe_call(call, action)}\n")
            for _ in range(3):
                out.write("Allow? [y]es/[n]o/[a]lways (for this run): ")
                out.flush()
                line = src.readline()
                if not line:
                    out.write("\n")
                    return "deny"
                answer = _ANSWERS.get(line.strip().lower())
                if answer is not None:
                    return answer
                out.write("please answer y, n or a\n")
            return "deny"

    return ask


def default_confirm_mode() -> str:
    """`--confirm`'s default: "ask" when stdin is a terminal, else "deny"."""
    try:
        return "ask" if sys.stdin is not None and sys.stdin.isatty() else "deny"
    except (ValueError, OSError):  # a closed or detached stdin
        return "deny"


__all__ = ["MODES", "Asker", "Denied", "default_confirm_mode", "describe_call", "make_confirm", "terminal_asker"]
