"""What the policy reads in one call besides its text: the commands that would run, the lines typed, findings.

A bash call is read by `agent.safety.shell.analyse` (every command that would run, each as a
line for the rules' `command` regexes). Typing (`type`, `key`, `hold_key`, a middle click that
pastes) is played on the focused window's line (`agent.safety.terminal.TypedLine`); in a
terminal, each command a Return runs and the line as it stands are read like bash commands too.
`read_call` returns the `Reading` and the shell and line states after the call, so that a guard
(`agent.safety.guard`) keeps them between calls; `Policy.decide` without a guard reads each call
on its own, as if typed into a fresh line of a fresh shell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.safety.rules import BASH, COMPUTER, TYPING_ACTIONS, CallFacts, is_terminal_window
from agent.safety.shell import ShellState, analyse
from agent.safety.terminal import TypedLine, events_of, history_expansion


@dataclass(frozen=True)
class Reading:
    """Units the rules judge besides the call as written, and the findings (name -> why)."""

    commands: tuple[str, ...] = ()  # command lines that would run (bash)
    texts: tuple[str, ...] = ()  # typed lines and the commands they run (typing)
    findings: dict[str, str] = field(default_factory=dict)


@dataclass
class ReadState:
    """What a guard remembers between calls: the bash tool's shell and each window's typed line."""

    shell: ShellState = field(default_factory=ShellState)
    lines: dict[str, TypedLine] = field(default_factory=dict)


def window_key(facts: CallFacts) -> str:
    """The focused window's key for its typed line: its id, else its class, else "?" (unknown)."""
    context = facts.context
    if context.window_id is not None:
        return f"#{context.window_id}"
    return (context.focused_window or "?").split(": ", 1)[0]


def read_call(facts: CallFacts, data: dict, state: ReadState, approved: str | None = None
              ) -> tuple[Reading, ReadState]:
    """The Reading of a call and the state after it (`state` is not changed).

    `approved`: the line in this window a person already allowed while it was typed; running exactly
    it is not judged again by patterns (findings still are).
    """
    if facts.tool == BASH:
        if data.get("restart"):
            return Reading(), ReadState(ShellState(), state.lines)
        command = facts.command or ""
        analysis = analyse(command, state.shell)
        lines = tuple(dict.fromkeys(c.line() for c in analysis.commands))
        return Reading(commands=lines, findings=analysis.findings), ReadState(analysis.state, state.lines)
    if facts.tool != COMPUTER or facts.action not in (*TYPING_ACTIONS, "middle_click"):
        return Reading(), state
    text = data.get("text") if isinstance(data.get("text"), str) else None
    events = events_of(facts.action or "", text)
    if not events:
        return Reading(), state
    key = window_key(facts)
    terminal = is_terminal_window(facts.context.focused_window) is not False  # unknown: assume a terminal
    line = state.lines.get(key) or TypedLine()
    after, ran = line.feed(events, shell_aware=terminal)
    texts: list[str] = []
    findings: dict[str, str] = {}
    if terminal:
        shell = line.shell
        for command in ran:
            analysis = analyse(command, shell)
            shell = analysis.state
            if command != approved:
                texts += [command, *(c.line() for c in analysis.commands)]
            for name, why in analysis.findings.items():
                findings.setdefault(name, why)
            recalled = history_expansion(command)
            if recalled:
                findings.setdefault("dynamic-command", f"{recalled} runs text from the shell's history")
        partial = after.text
        if partial.strip():
            texts += [partial, *(c.line() for c in analyse(partial, shell).commands)]
        after.shell = shell
    else:
        texts = [*ran, after.text] if after.text.strip() else list(ran)
    lines = {**state.lines, key: after}
    return Reading(texts=tuple(dict.fromkeys(texts)), findings=findings), ReadState(state.shell, lines)


__all__ = ["ReadState", "Reading", "read_call", "window_key"]
