"""What typing builds in a window: the line a shell would run when Return comes, whatever actions typed it.

A `type` action's text and a `key` action's key names (`r m space minus r f space asciitilde
Return`) are turned into the same key events (`events_of`), and `TypedLine.feed` plays them on
a model of a shell's line editor (readline's emacs keys): characters are inserted at the cursor,
BackSpace, Delete, Left/Right, Home/End, ctrl+a/e/b/f/h/d/k/u/w edit as bash does, ctrl+c drops
the line, Return (also KP_Enter, ctrl+j, ctrl+m, ctrl+o) runs it. What the model cannot know is
written as DYN: Tab completion inserts unknown text, Up/Down/ctrl+r recall an unknown line,
pasting (shift+Insert, ctrl+shift+v, ctrl+y, a middle click) inserts unknown text; other
combinations with ctrl or alt make the line unknown. A line that ends inside a quote, after a
pipe or a backslash continues on the next one (the shell's PS2), so the command is judged whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from actions.keys import KeyNameError, keysym_char, parse_combo, resolve_key
from agent.safety.shell import ShellState, analyse
from agent.safety.shell_words import DYN

MAX_LINE = 100_000
_SHIFTED = dict(zip("1234567890-=[]\\;',./`", '!@#$%^&*()_+{}|:"<>?~', strict=True))
_RUN = frozenset({"Return", "KP_Enter", "ISO_Enter", "Linefeed", "ctrl+j", "ctrl+m", "ctrl+o"})
_RECALL = frozenset({"Up", "Down", "KP_Up", "KP_Down", "Prior", "Next", "ctrl+p", "ctrl+n", "ctrl+r", "ctrl+s",
                     "alt+less", "alt+greater", "Escape"})
_PASTE = frozenset({"shift+Insert", "ctrl+shift+v", "ctrl+shift+V", "ctrl+y", "alt+period", "alt+underscore",
                    "Tab", "KP_Tab", "ISO_Left_Tab", "alt+y", "middle_click"})
_NOTHING = frozenset({"ctrl+l", "ctrl+shift+c", "ctrl+shift+C", "Insert", "ctrl+z", "ctrl+g"})
_MODIFIER_KEYS = frozenset({"Shift_L", "Shift_R", "Control_L", "Control_R", "Alt_L", "Alt_R", "Super_L", "Super_R",
                            "Meta_L", "Meta_R", "ISO_Level3_Shift", "Caps_Lock", "Num_Lock"})
_EDIT = {"BackSpace": "backspace", "ctrl+h": "backspace", "Delete": "delete", "KP_Delete": "delete",
         "ctrl+d": "delete", "Left": "left", "KP_Left": "left", "ctrl+b": "left", "Right": "right", "KP_Right": "right",
         "ctrl+f": "right", "Home": "home", "KP_Home": "home", "ctrl+a": "home", "End": "end", "KP_End": "end",
         "ctrl+e": "end", "ctrl+u": "kill_before", "ctrl+k": "kill_after", "ctrl+w": "kill_word",
         "alt+BackSpace": "kill_word", "ctrl+c": "drop"}
_MOD_WORDS = {"Control_L": "ctrl", "Control_R": "ctrl", "Alt_L": "alt", "Alt_R": "alt", "Shift_L": "shift",
              "Shift_R": "shift", "Super_L": "super", "Super_R": "super", "Meta_L": "alt", "Meta_R": "alt",
              "ISO_Level3_Shift": "altgr"}

Event = tuple[str, str]  # ("char", c) or ("key", what): run, drop, backspace, delete, left, ..., paste, recall, unknown


def events_of(action: str, text: str | None) -> list[Event]:
    """The key events of a `type`, `key` or `hold_key` action (or "middle_click")."""
    if action == "type":
        return [_char_event(char) for char in text or ""]
    if action in ("key", "hold_key"):
        out: list[Event] = []
        for part in (text or "").split():
            out.append(_combo_event(part))
        return out
    if action == "middle_click":
        return [("key", "paste")]
    return []


def _char_event(char: str) -> Event:
    if char in "\n\r":
        return ("key", "run")
    if char == "\t":
        return ("key", "paste")
    if char in "\b\x7f":
        return ("key", "backspace")
    if char == "\x03":
        return ("key", "drop")
    if char == "\x15":
        return ("key", "kill_before")
    if ord(char) < 0x20:
        return ("key", "unknown")
    return ("char", char)


def _combo_event(part: str) -> Event:
    """One key combination (`shift+a`, `minus`, `ctrl+u`, `Return`) as an event."""
    try:
        names = parse_combo(part)
    except KeyNameError:
        return ("key", "unknown")
    *mods, key = names
    held = sorted({_MOD_WORDS.get(m, m) for m in mods})
    written = "+".join([*held, key]) if held else key
    if key in _MODIFIER_KEYS and not held:
        return ("key", "nothing")
    for table, event in ((_RUN, "run"), (_RECALL, "recall"), (_PASTE, "paste"), (_NOTHING, "nothing")):
        if written in table:
            return ("key", event)
    if written in _EDIT:
        return ("key", _EDIT[written])
    if set(held) <= {"shift"}:
        char = keysym_char(resolve_key(key)[1])
        if char is not None:
            if held:
                char = char.upper() if char.isalpha() else _SHIFTED.get(char, char)
            return ("char", char)
        if key.startswith(("F", "XF86")) or key in ("Pause", "Print", "Scroll_Lock", "Menu"):
            return ("key", "nothing")
    return ("key", "unknown")


_HISTORY = re.compile(r"!(?:[!$^*#]|-?\d+|[A-Za-z_./?][^\s;&|()<>]*|\{)")


def history_expansion(command: str) -> str | None:
    """The first `!!`, `!-2`, `!rm`, `!$`... an interactive shell would replace by an earlier command's text."""
    quoted = False
    i = 0
    while i < len(command):
        char = command[i]
        if char == "\\":
            i += 2
            continue
        if char == "'":
            quoted = not quoted
        elif char == "!" and not quoted:
            match = _HISTORY.match(command, i)
            if match:
                return match[0]
        i += 1
    return None


@dataclass
class TypedLine:
    """A window's line being edited: text before and after the cursor, earlier lines of the same command."""

    before: str = ""
    after: str = ""
    pending: str = ""  # the first lines of a command that continues (an open quote, a trailing | or \)
    shell: ShellState = field(default_factory=ShellState)

    def feed(self, events: list[Event], shell_aware: bool = True) -> tuple[TypedLine, list[str]]:
        """The line after `events`, and the commands they ran (the whole command text for each Return)."""
        line = replace(self, shell=self.shell)
        ran: list[str] = []
        for kind, value in events:
            if kind == "char":
                line.before += value
            elif value == "run":
                command = line.pending + line.before + line.after
                line.before = line.after = ""
                if shell_aware and analyse(command, line.shell).incomplete and len(command) < MAX_LINE:
                    line.pending = command + "\n"
                else:
                    line.pending = ""
                    ran.append(command)
            else:
                line.edit(value)
            if len(line.before) + len(line.after) > MAX_LINE:
                line.before, line.after = DYN + line.before[-MAX_LINE:], ""
        return line, ran

    def edit(self, what: str) -> None:
        """One editing key."""
        if what == "backspace":
            self.before = self.before[:-1]
        elif what == "delete":
            self.after = self.after[1:]
        elif what == "left" and self.before:
            self.before, self.after = self.before[:-1], self.before[-1] + self.after
        elif what == "right" and self.after:
            self.before, self.after = self.before + self.after[0], self.after[1:]
        elif what == "home":
            self.before, self.after = "", self.before + self.after
        elif what == "end":
            self.before, self.after = self.before + self.after, ""
        elif what == "kill_before":
            self.before = ""
        elif what == "kill_after":
            self.after = ""
        elif what == "kill_word":
            stripped = self.before.rstrip(" ")
            cut = max(stripped.rfind(" "), stripped.rfind("/")) + 1
            self.before = stripped[:cut]
        elif what == "drop":
            self.before = self.after = self.pending = ""
        elif what == "paste":
            self.before += DYN
        elif what in ("recall", "unknown"):
            self.before, self.after = DYN, ""

    @property
    def text(self) -> str:
        """The command as typed so far (earlier lines of it included)."""
        return self.pending + self.before + self.after


__all__ = ["Event", "TypedLine", "events_of", "history_expansion"]
