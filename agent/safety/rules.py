"""Policy rules and what they match: the facts of one tool call, regex shorthands, key combinations, terminals.

A `Rule` is compiled (tools and actions as sets, regexes compiled, key combinations normalised);
`Rule.match(facts)` says what in a call matched it. `CallFacts.of(call, action, context)` picks out
the parts of a call that rules look at: the tool, the action or editor command, a bash command,
typed text, key combinations, an editor path (resolved against the working directory on demand)
and the `PolicyContext` (working directory, focused window).

A window is a terminal by its WM_CLASS or its title (`is_terminal_window`): a title can only make
the policy stricter, never looser. `focused_window(display)` asks the platform backend, `context_provider` makes
the per-call context provider `agent.safety.confirm.make_confirm` takes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actions.keys import KeyNameError, parse_combo

if TYPE_CHECKING:
    from agent.types import ToolCall

DECISIONS = ("allow", "ask", "deny")
BASH, COMPUTER, EDITOR = "bash", "computer", "str_replace_based_edit_tool"
TOOLS = (COMPUTER, BASH, EDITOR)
TOOL_ALIASES = {"editor": EDITOR, "text_editor": EDITOR}
EDITOR_COMMANDS = ("view", "create", "str_replace", "insert", "undo_edit")
KEY_ACTIONS = frozenset({"key", "hold_key"})
MATCHER_FIELDS = ("tool", "action", "command", "text", "keys", "path_outside_workdir", "into_terminal", "finding")
TYPING_ACTIONS = frozenset({"type", "key", "hold_key"})

# Window classes (WM_CLASS instance or class, compared case-insensitively; for reverse-DNS names
# such as org.wezfurlong.wezterm the last part counts too) of terminal emulators.
TERMINAL_CLASSES: tuple[str, ...] = (
    "xterm", "uxterm", "gnome-terminal", "gnome-terminal-server", "konsole", "xfce4-terminal", "terminal",
    "alacritty", "kitty", "terminator", "urxvt", "rxvt", "urxvt-unicode", "st", "st-256color", "tilix",
    "wezterm", "wezterm-gui", "foot", "footclient", "lxterminal", "mate-terminal", "qterminal",
    "terminology", "sakura", "guake", "tilda", "yakuake", "cool-retro-term", "eterm", "aterm", "kgx",
    "org.gnome.console", "ptyxis", "blackbox", "contour", "ghostty", "deepin-terminal", "termite",
    "roxterm", "hyper", "tabby", "warp", "zutty", "mlterm", "pantheon-terminal", "io.elementary.terminal",
)
_TERMINALS = frozenset(TERMINAL_CLASSES)
# Words in a window title that make it a terminal (whole words, any case), and the usual "user@host: ~" prompt.
TERMINAL_TITLE = re.compile(
    r"(?<![\w.-])(?:terminal|xterm|uxterm|rxvt|urxvt|konsole|console|shell|bash|zsh|ksh|dash|tcsh|csh|sh|tmux|ssh|"
    r"alacritty|terminator|tilix|wezterm|powershell|pwsh|cmd\.exe|command prompt)(?![\w-]|\.\w)"
    r"|[\w.-]+@[\w.-]+:\s*[~/]", re.IGNORECASE)

# Regex shorthands, expanded before compiling (documented in default_policy.yaml).
_WS = r"(?:[ \t]|\\\n)"
_SEP = _WS + "+"
_TOK = r"[^\s;&|()<>`]"
_ASSIGN = r"""[A-Za-z_][A-Za-z0-9_]*=(?:'[^']*'|"[^"]*"|[^\s;&|()<>`'"][^\s;&|()<>`]*)?"""
_WRAPPERS = (r"sudo|doas|pkexec|run0|runuser|env|nice|ionice|nohup|time|timeout|stdbuf|exec|eval|xargs|setsid"
             rf"|unbuffer|watch|flock|chrt|taskset|builtin|command(?!{_SEP}-[vV])")
_OPTION = (rf"(?:-[A-Za-z](?:{_SEP}[^\s;&|()<>`\d-]{_TOK}*)?"  # -u bob, -E
           rf"|-(?:{_TOK}{{2,}}|[^A-Za-z\s;&|()<>`])"  # --preserve-env, -0
           rf"|\d{_TOK}*|{_ASSIGN})")  # timeout 10s, env FOO=1
_PATH = r"""(?:[^\s;&|()<>`'"{}!]*/)?"""  # /usr/bin/ before a command word
_PRE = r"""(?:^|(?<=[\s;&|(){}`!'"]))"""  # a word begins here
_START = (r"""(?:^|[;&|(){}`!\n'"]|(?<![\w-])(?:then|do|else|-exec|-execdir|-ok|-okdir)(?=[ \t])"""
          rf"|{_PRE}{_ASSIGN}(?=[ \t])"  # FOO=1 rm ...
          rf"|{_PRE}{_PATH}(?:{_WRAPPERS})(?:{_SEP}{_OPTION}){{0,16}}(?=[ \t]))")  # sudo -E rm ..., xargs -0 rm ...
_CMD = rf"{_START}{_WS}*{_PATH}\\?"
PLACEHOLDERS: dict[str, str] = {
    "{{cmd}}": _CMD,
    "{{args}}": rf"(?:{_SEP}{_TOK}+){{0,256}}?{_SEP}",
    "{{opts}}": rf"(?:{_SEP}-{_TOK}*(?:{_SEP}[^\s;&|()<>`-]{_TOK}*)?){{0,16}}?{_SEP}",
    "{{end}}": r"""(?=[\s;&|)'"`]|$)""",
}

_MODIFIER_NAMES = {
    "Control_L": "ctrl", "Control_R": "ctrl", "Alt_L": "alt", "Alt_R": "alt", "Shift_L": "shift",
    "Shift_R": "shift", "Super_L": "super", "Super_R": "super", "Meta_L": "super", "Meta_R": "super",
    "ISO_Level3_Shift": "altgr",
}
Combo = tuple[frozenset[str], str]  # (modifiers, key), normalised


@dataclass(frozen=True)
class Verdict:
    """The policy's answer for one call: the decision, the rule that made it (None: the default), why."""

    decision: str  # "allow" | "ask" | "deny"
    rule: str | None
    reason: str
    matched: str | None = None  # what matched (command excerpt, key combination, path), for people


@dataclass(frozen=True)
class PolicyContext:
    """What a decision may know besides the call: the working directory and the focused window.

    `focused_window` is what `focused_window()` returns ("instance/Class: title"), or just a class
    such as "xterm"; None when unknown.
    """

    workdir: Path
    focused_window: str | None = None
    window_id: int | None = None  # the focused window's id, which keeps each window's typed line apart


@dataclass(frozen=True)
class Rule:
    """One compiled rule. A matcher field left as None does not restrict."""

    name: str
    decision: str
    reason: str
    tool: frozenset[str] | None = None
    action: frozenset[str] | None = None
    command: tuple[re.Pattern[str], ...] | None = None
    text: tuple[re.Pattern[str], ...] | None = None
    keys: frozenset[Combo] | None = None
    path_outside_workdir: bool | None = None
    into_terminal: bool | None = None
    finding: frozenset[str] | None = None
    source: str = ""

    def match(self, facts: CallFacts) -> str | None:
        """What matched (possibly ""), or None when the rule does not apply to `facts`."""
        detail = ""
        if self.tool is not None and facts.tool not in self.tool:
            return None
        if self.action is not None and facts.action not in self.action:
            return None
        if self.command is not None:
            if facts.tool != BASH or facts.command is None:
                return None
            found = _search(self.command, facts.command)
            if found is None:
                return None
            detail = found
        if self.text is not None:
            if facts.tool != COMPUTER or facts.text is None:
                return None
            found = _search(self.text, facts.text)
            if found is None:
                return None
            detail = found
        if self.keys is not None:
            hit = next((text for combo, text in facts.combos if combo in self.keys), None)
            if hit is None:
                return None
            detail = hit
        if self.path_outside_workdir is not None:
            if facts.tool != EDITOR or facts.path is None:
                return None
            resolved, outside = facts.path_check()
            if outside != self.path_outside_workdir:
                return None
            detail = str(resolved)
        if self.finding is not None:
            hit = next((name for name in sorted(self.finding) if name in facts.findings), None)
            if hit is None:
                return None
            detail = facts.findings[hit]
        if self.into_terminal is not None:
            if facts.tool != COMPUTER:
                return None
            terminal = is_terminal_window(facts.context.focused_window)
            if self.into_terminal and terminal is False:
                return None
            if not self.into_terminal and terminal is not False:
                return None
        return detail


@dataclass
class CallFacts:
    """The parts of one call that rules look at.

    The policy judges a call as several units (`agent.safety.reading`): the call as written, and each
    command that would run (`command`) or each line typed into a window (`text`); `findings` (what the
    shell analysis could not judge, name -> why) come with the first unit.
    """

    tool: str
    action: str | None
    command: str | None
    text: str | None
    combos: list[tuple[Combo, str]]
    path: str | None
    context: PolicyContext
    findings: dict[str, str] = field(default_factory=dict)
    _path_check: tuple[Path, bool] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, call: ToolCall, action: Any, context: PolicyContext) -> CallFacts:
        """The facts of `call` (with its parsed `action`, or None) in `context`."""
        data = call.input if isinstance(call.input, dict) else {}
        name, command, text, path = None, None, None, None
        combos: list[tuple[Combo, str]] = []
        if call.name == COMPUTER:
            name = getattr(action, "action", None) or _str(data.get("action"))
            text = getattr(action, "text", None) if action is not None else _str(data.get("text"))
            if name in KEY_ACTIONS and text:
                combos = _combos_of(text)
            if name != "type":
                text = None
        elif call.name == BASH:
            command = _str(data.get("command"))
        elif call.name == EDITOR:
            name, path = _str(data.get("command")), _str(data.get("path"))
        return cls(call.name, name, command, text, combos, path, context)

    def path_check(self) -> tuple[Path, bool]:
        """(the editor path resolved, whether it lies outside the working directory)."""
        if self._path_check is None:
            workdir = Path(os.path.realpath(self.context.workdir))
            target = Path(os.path.expanduser(self.path or ""))
            resolved = Path(os.path.realpath(workdir / target))  # `..` and symlinks resolved
            self._path_check = (resolved, not resolved.is_relative_to(workdir))
        return self._path_check


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _search(patterns: Iterable[re.Pattern[str]], text: str) -> str | None:
    for pattern in patterns:
        found = pattern.search(text)
        if found:
            return found.group(0).strip(" \t\n;&|()`'\"") or found.group(0)
    return None


def normalise_combo(names: list[str]) -> Combo:
    """Keysym names of one combination (from parse_combo) -> (modifier set, lower-cased key)."""
    *mods, key = names
    return frozenset(_MODIFIER_NAMES.get(m, m.lower()) for m in mods), key.lower()


def _combos_of(text: str) -> list[tuple[Combo, str]]:
    combos = []
    for part in text.split():
        try:
            combos.append((normalise_combo(parse_combo(part)), part))
        except KeyNameError:  # the loop rejects it before it could run
            continue
    return combos


def expand_regex(pattern: str) -> str:
    """A rule regex with the {{cmd}}, {{args}} and {{end}} shorthands expanded."""
    for name, value in PLACEHOLDERS.items():
        pattern = pattern.replace(name, value)
    return pattern


# ---------------------------------------------------------------------------- the focused window


def is_terminal_window(focused: str | None) -> bool | None:
    """True if `focused` (as in PolicyContext.focused_window) is a terminal, None when unknown.

    The class part (before the first ": ") or the title (after it) may tell: a known terminal
    emulator's class, or a title naming a terminal or a shell ("Terminal - Bash", "user@host: ~").
    """
    if not focused or not focused.strip():
        return None
    classes, _, title = focused.partition(": ")
    for token in re.split(r"[/\s]+", classes.strip().lower()):
        if token and (token in _TERMINALS or token.rsplit(".", 1)[-1] in _TERMINALS):
            return True
    return bool(TERMINAL_TITLE.search(title) or TERMINAL_TITLE.search(classes))


def focused_window(display: str) -> str | None:
    """The X keyboard focus's window as "instance/Class: title" (title only if it has one); None if unknown.

    The platform backend finds it (`actions.platform.focused_window`); never raises.
    """
    window = _window(display)
    if window is None:
        return None
    name = f"{window.instance}/{window.klass}"
    return f"{name}: {window.title}" if window.title else name


def _window(display: str) -> Any:
    from actions.platform import focused_window as platform_focused_window

    return platform_focused_window(display)


def context_provider(workdir: Path, display: str | None) -> Callable[[], PolicyContext]:
    """A provider for make_confirm: the working directory and, per call, the focused window of `display`."""

    def provide() -> PolicyContext:
        window = _window(display) if display else None
        if window is None:
            return PolicyContext(Path(workdir))
        name = f"{window.instance}/{window.klass}"
        return PolicyContext(Path(workdir), f"{name}: {window.title}" if window.title else name,
                             getattr(window, "id", None))

    return provide


__all__ = [
    "BASH", "COMPUTER", "DECISIONS", "EDITOR", "EDITOR_COMMANDS", "KEY_ACTIONS", "MATCHER_FIELDS", "PLACEHOLDERS",
    "TERMINAL_CLASSES", "TERMINAL_TITLE", "TOOLS", "TOOL_ALIASES", "TYPING_ACTIONS", "CallFacts", "Combo",
    "PolicyContext", "Rule", "Verdict",
    "context_provider", "expand_regex", "focused_window", "is_terminal_window", "normalise_combo",
]
