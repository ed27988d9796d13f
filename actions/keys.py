"""xdotool-style key names (`ctrl+s`, `Return`, `alt+Tab`, `KP_Enter`, `F5`) parsed into X keysyms.

A key action's text is one or more combinations separated by spaces (`ctrl+a Delete`); a
combination is key names joined by `+`, modifiers first. Names are case-insensitive where that
is unambiguous; single characters stand for themselves (`a`, `A`, `+`, `é`).
"""

from __future__ import annotations

from functools import cache

ALIASES: dict[str, str] = {
    "ctrl": "Control_L", "control": "Control_L", "lctrl": "Control_L", "rctrl": "Control_R",
    "alt": "Alt_L", "lalt": "Alt_L", "ralt": "Alt_R", "altgr": "ISO_Level3_Shift",
    "shift": "Shift_L", "lshift": "Shift_L", "rshift": "Shift_R",
    "super": "Super_L", "win": "Super_L", "windows": "Super_L", "meta": "Super_L",
    "cmd": "Super_L", "command": "Super_L",
    "enter": "Return", "return": "Return", "esc": "Escape", "escape": "Escape",
    "backspace": "BackSpace", "del": "Delete", "delete": "Delete", "ins": "Insert",
    "pgup": "Page_Up", "pageup": "Page_Up", "page_up": "Page_Up", "prior": "Page_Up",
    "pgdn": "Page_Down", "pagedown": "Page_Down", "page_down": "Page_Down", "next": "Page_Down",
    "space": "space", "tab": "Tab", "up": "Up", "down": "Down", "left": "Left", "right": "Right",
    "home": "Home", "end": "End", "capslock": "Caps_Lock", "printscreen": "Print", "print": "Print",
    "menu": "Menu", "plus": "plus", "minus": "minus",
}
MODIFIERS = frozenset({"Control_L", "Control_R", "Alt_L", "Alt_R", "Shift_L", "Shift_R",
                       "Super_L", "Super_R", "Meta_L", "Meta_R", "ISO_Level3_Shift"})
_KEYSYM_GROUPS = ("latin1", "latin2", "latin3", "latin4", "greek", "cyrillic", "miscellany",
                  "xkb", "xf86", "special", "technical", "publishing")
MAX_COMBOS = 32


class KeyNameError(ValueError):
    """A key name or combination that cannot be pressed."""


@cache
def _keysym_table() -> dict[str, tuple[str, int]]:
    """Lower-cased keysym name -> (canonical name, keysym), from python-xlib's tables."""
    from Xlib import XK

    for group in _KEYSYM_GROUPS:
        XK.load_keysym_group(group)
    table: dict[str, tuple[str, int]] = {}
    for attr, value in vars(XK).items():
        if attr.startswith("XK_") and isinstance(value, int):
            name = attr[3:]
            if name.startswith("XF86_"):  # python-xlib spells XF86AudioMute as XF86_AudioMute
                name = "XF86" + name[5:]
            table.setdefault(name.lower(), (name, value))
            table[name] = (name, value)  # the exact spelling always wins
    return table


def char_keysym(char: str) -> int:
    """The X keysym of one character (Latin-1 directly, everything else as a Unicode keysym)."""
    code = ord(char)
    if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF:
        return code
    return 0x01000000 + code


def resolve_key(name: str) -> tuple[str, int]:
    """One key name -> (canonical keysym name, keysym). Raises KeyNameError naming the bad key."""
    if not name:
        raise KeyNameError("empty key name")
    if len(name) == 1:
        return name, char_keysym(name)
    alias = ALIASES.get(name.lower())
    table = _keysym_table()
    found = table.get(alias) if alias else table.get(name) or table.get(name.lower())
    if found is None:
        raise KeyNameError(f"unknown key {name!r} (use X keysym names such as Return, Tab, F5, KP_Enter)")
    return found


def parse_combo(combo: str) -> list[str]:
    """`ctrl+shift+t` -> ['Control_L', 'Shift_L', 't']; `ctrl++` -> ['Control_L', '+']."""
    parts = combo.split("+")
    if combo.endswith("++"):
        parts = [*parts[:-2], "+"]
    elif combo == "+":
        parts = ["+"]
    if any(p == "" for p in parts):
        raise KeyNameError(f"malformed key combination {combo!r} (empty name around '+')")
    names = [resolve_key(p)[0] for p in parts]
    if any(n not in MODIFIERS for n in names[:-1]) and len(names) > 1:
        bad = next(n for n in names[:-1] if n not in MODIFIERS)
        raise KeyNameError(f"in {combo!r}, {bad!r} is not a modifier; only the last key may be a plain key")
    return names


def parse_keys(text: str) -> list[list[str]]:
    """A key action's text -> its combinations in order. Raises KeyNameError for any bad name."""
    combos = text.split()
    if not combos:
        raise KeyNameError("empty key text")
    if len(combos) > MAX_COMBOS:
        raise KeyNameError(f"too many key combinations ({len(combos)} > {MAX_COMBOS})")
    return [parse_combo(c) for c in combos]


def parse_modifiers(text: str) -> list[str]:
    """A click's or scroll's held keys (`shift`, `ctrl+alt`) -> keysym names; modifiers only."""
    names = [resolve_key(p)[0] for p in text.split("+")] if text else []
    if not names or any(n not in MODIFIERS for n in names):
        raise KeyNameError(f"{text!r} is not a modifier combination (use e.g. shift, ctrl, ctrl+alt)")
    return names
