"""Key names and X keysyms: the one table of keys, modifiers and the characters keys type.

Names to keysyms (acting): a key action's text is one or more combinations separated by spaces
(`ctrl+a Delete`); a combination is xdotool-style key names joined by `+`, modifiers first
(`ctrl+s`, `Return`, `alt+Tab`, `KP_Enter`, `F5`). Names are case-insensitive where that is
unambiguous; single characters stand for themselves (`a`, `A`, `+`, `é`).

Keysyms to names and characters (reading input back: recording, the kill switch): which modifier
a key is (`MODIFIER_KEYSYMS`), the character it types (`keysym_char`), its xdotool name
(`keysym_name`) and how held modifiers and a key are written (`combo_text`).
"""

from __future__ import annotations

import importlib.util
import unicodedata
from collections.abc import Iterable
from functools import cache

XK_BACKSPACE, XK_TAB, XK_RETURN, XK_KP_ENTER, XK_ISO_LEFT_TAB = 0xFF08, 0xFF09, 0xFF0D, 0xFF8D, 0xFE20
XK_SHIFT_L = 0xFFE1

# Every modifier key: keysym, X name, kind, whether a key combination may hold it (`ctrl+shift+t`).
# Kinds: shift, ctrl, alt, super (the modifiers combinations name), level3 and level5 (AltGr and
# friends), lock (Caps Lock), numlock, group. Alt pressed with Shift held arrives as Meta on the
# usual X keymap, so Meta is alt.
_MODIFIER_ROWS: tuple[tuple[int, str, str, bool], ...] = (
    (0xFFE1, "Shift_L", "shift", True), (0xFFE2, "Shift_R", "shift", True),
    (0xFFE3, "Control_L", "ctrl", True), (0xFFE4, "Control_R", "ctrl", True),
    (0xFFE7, "Meta_L", "alt", True), (0xFFE8, "Meta_R", "alt", True),
    (0xFFE9, "Alt_L", "alt", True), (0xFFEA, "Alt_R", "alt", True),
    (0xFFEB, "Super_L", "super", True), (0xFFEC, "Super_R", "super", True),
    (0xFFED, "Hyper_L", "super", False), (0xFFEE, "Hyper_R", "super", False),
    (0xFE03, "ISO_Level3_Shift", "level3", True), (0xFF7E, "Mode_switch", "level3", False),
    (0xFE04, "ISO_Level3_Latch", "level3", False),
    (0xFE11, "ISO_Level5_Shift", "level5", False), (0xFE12, "ISO_Level5_Latch", "level5", False),
    (0xFFE5, "Caps_Lock", "lock", False), (0xFFE6, "Shift_Lock", "lock", False),
    (0xFF7F, "Num_Lock", "numlock", False),
    (0xFE08, "ISO_Next_Group", "group", False), (0xFE09, "ISO_Next_Group_Lock", "group", False),
    (0xFE0A, "ISO_Prev_Group", "group", False), (0xFE0B, "ISO_Prev_Group_Lock", "group", False),
    (0xFE0C, "ISO_First_Group", "group", False), (0xFE0D, "ISO_First_Group_Lock", "group", False),
    (0xFE0E, "ISO_Last_Group", "group", False), (0xFE0F, "ISO_Last_Group_Lock", "group", False),
)
MODIFIER_KEYSYMS: dict[int, str] = {keysym: kind for keysym, _, kind, _ in _MODIFIER_ROWS}  # keysym -> kind
MODIFIERS = frozenset(name for _, name, _, held in _MODIFIER_ROWS if held)  # names a combination may hold
MODIFIER_ORDER = ("ctrl", "alt", "shift", "super")  # the kinds a combination names, in the order written

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
# keysyms named differently from python-xlib's first name for them, as xdotool users write them
KEY_NAMES: dict[int, str] = {
    XK_RETURN: "Return", XK_TAB: "Tab", XK_ISO_LEFT_TAB: "Tab", XK_BACKSPACE: "BackSpace",
    0xFF1B: "Escape", 0xFFFF: "Delete", 0xFF63: "Insert", 0xFF50: "Home", 0xFF57: "End",
    0xFF55: "Page_Up", 0xFF56: "Page_Down", 0xFF51: "Left", 0xFF52: "Up", 0xFF53: "Right",
    0xFF54: "Down", XK_KP_ENTER: "KP_Enter", 0xFF61: "Print", 0xFF13: "Pause", 0xFF14: "Scroll_Lock",
    0xFF67: "Menu", 0x20: "space",
}
KEYPAD_CHARS: dict[int, str] = {
    0xFF80: " ", 0xFFAA: "*", 0xFFAB: "+", 0xFFAC: ",", 0xFFAD: "-", 0xFFAE: ".", 0xFFAF: "/", 0xFFBD: "=",
    **{0xFFB0 + n: str(n) for n in range(10)},
}
DEAD_KEYS: dict[int, str] = {  # dead keysym -> combining mark
    0xFE50: "\u0300", 0xFE51: "\u0301", 0xFE52: "\u0302", 0xFE53: "\u0303", 0xFE54: "\u0304",
    0xFE55: "\u0306", 0xFE56: "\u0307", 0xFE57: "\u0308", 0xFE58: "\u030a", 0xFE59: "\u030b",
    0xFE5A: "\u030c", 0xFE5B: "\u0327", 0xFE5C: "\u0328",
}
_KEYSYM_GROUPS = ("latin1", "latin2", "latin3", "latin4", "greek", "cyrillic", "miscellany",
                  "xkb", "xf86", "special", "technical", "publishing")
MAX_COMBOS = 32


class KeyNameError(ValueError):
    """A key name or combination that cannot be pressed."""


# ---------------------------------------------------------------------------------------------
# the keysym tables


@cache
def _xk_names() -> tuple[tuple[str, int], ...]:
    """(name, keysym) of every keysym python-xlib knows, in its order, XF86 keys spelt as xdotool does."""
    from Xlib import XK

    for group in _KEYSYM_GROUPS:
        XK.load_keysym_group(group)
    names: list[tuple[str, int]] = []
    for attr, value in vars(XK).items():
        if attr.startswith("XK_") and isinstance(value, int):
            name = attr[3:]
            if name.startswith("XF86_"):  # python-xlib spells XF86AudioMute as XF86_AudioMute
                name = "XF86" + name[5:]
            names.append((name, value))
    return tuple(names)


@cache
def _keysym_table() -> dict[str, tuple[str, int]]:
    """Lower-cased keysym name -> (canonical name, keysym); the exact spelling is a key too."""
    table: dict[str, tuple[str, int]] = {}
    for name, value in _xk_names():
        table.setdefault(name.lower(), (name, value))
        table[name] = (name, value)  # the exact spelling always wins
    return table


@cache
def _keysym_names() -> dict[int, str]:
    """Keysym -> its first name in python-xlib's tables."""
    names: dict[int, str] = {}
    for name, value in _xk_names():
        names.setdefault(value, name)
    return names


@cache
def _legacy_chars() -> dict[int, str]:
    """Keysym -> character for the pre-Unicode keysyms (Cyrillic, Greek, EuroSign...).

    The table is pynput's (a dependency); it is loaded as a plain data file, since importing
    the pynput package connects to $DISPLAY.
    """
    try:
        spec = importlib.util.find_spec("pynput")
        roots = list(spec.submodule_search_locations or []) if spec else []
        for root in roots:
            path = f"{root}/_util/xorg_keysyms.py"
            file_spec = importlib.util.spec_from_file_location("_deskpilot_xorg_keysyms", path)
            if file_spec is None or file_spec.loader is None:
                continue
            module = importlib.util.module_from_spec(file_spec)
            file_spec.loader.exec_module(module)
            table: dict[int, str] = {}
            for keysym, char in module.SYMBOLS.values():
                if char and len(char) == 1 and unicodedata.category(char)[0] not in "CM":
                    table.setdefault(keysym, char)
            return table
    except Exception:  # the table only adds coverage; never fail on it
        pass
    return {}


@cache
def _legacy_keysyms() -> dict[str, int]:
    table: dict[str, int] = {}
    for keysym, char in _legacy_chars().items():
        table.setdefault(char, keysym)
    return table


# ---------------------------------------------------------------------------------------------
# names -> keysyms


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


# ---------------------------------------------------------------------------------------------
# keysyms -> characters and names


def keysym_char(keysym: int) -> str | None:
    """The printable character a keysym types, or None (control, function and modifier keys)."""
    if 0x20 <= keysym <= 0x7E or 0xA0 <= keysym <= 0xFF:
        return chr(keysym)
    if 0x01000100 <= keysym <= 0x0110FFFF:
        char = chr(keysym - 0x01000000)
        return None if unicodedata.category(char)[0] == "C" else char
    if keysym in KEYPAD_CHARS:
        return KEYPAD_CHARS[keysym]
    if keysym >= 0xFD00 or keysym <= 0:  # function, keypad, modifier, dead and 3270 keys
        return None
    return _legacy_chars().get(keysym)


def keysym_name(keysym: int) -> str | None:
    """The xdotool name of a key (`Return`, `F5`, `a`, `comma`, `é`), or None if it has none."""
    if keysym <= 0:
        return None
    if keysym in KEY_NAMES:
        return KEY_NAMES[keysym]
    char = keysym_char(keysym) if keysym not in KEYPAD_CHARS else None
    if char is not None and (char.isalnum() or ord(char) > 0x7E):
        return char
    name = _keysym_names().get(keysym)
    if name is not None:
        try:
            return resolve_key(name)[0]
        except KeyNameError:
            pass
    return char


def case_pair(keysym: int) -> tuple[int, int]:
    """(lower, upper) keysyms of a letter with both cases, else (keysym, keysym): X's rule."""
    char = keysym_char(keysym)
    if char and char.isalpha() and len(char.lower()) == 1 and len(char.upper()) == 1 and char.lower() != char.upper():
        lower, upper = char.lower(), char.upper()
        if keysym >= 0x01000000:  # stay in the Unicode keysym space it came from
            return 0x01000000 + ord(lower), 0x01000000 + ord(upper)
        if 0x20 <= keysym <= 0xFF:
            return char_keysym(lower), char_keysym(upper)
        table = _legacy_keysyms()
        return table.get(lower, keysym), table.get(upper, keysym)
    return keysym, keysym


def modifier_text(mods: Iterable[str]) -> str | None:
    """Held modifier kinds as written in a combination (`ctrl+shift`, order ctrl, alt, shift, super); None if none."""
    held = set(mods)
    return "+".join(m for m in MODIFIER_ORDER if m in held) or None


def combo_text(mods: Iterable[str], key: str) -> str:
    """Held modifier kinds and a key written as a combination: `ctrl+shift+t`, or just `t`."""
    held = modifier_text(mods)
    return f"{held}+{key}" if held else key
