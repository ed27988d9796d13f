"""DESIGN.md's key names (X keysyms, see actions.keys) as pyautogui and pynput name them, and back.

Acting: `gui_name(keysym, platform)` is pyautogui's name of a key (`enter`, `ctrlleft`, `f5`,
`a`), `pynput_name(keysym)` the name of a `pynput.keyboard.Key` member for keys pyautogui
lacks (AltGr, media keys). Listening: `PYNPUT_KEYSYMS` turns a `Key` member's name back into
its keysym. One table each way; everything else is a character, named by itself.
"""

from __future__ import annotations

XK_F1, XK_KP_0 = 0xFFBE, 0xFFB0
XK_SUPER_L, XK_SUPER_R = 0xFFEB, 0xFFEC

# keysym -> pyautogui key name, on every platform (pyautogui.isValidKey says which the platform has)
_GUI_NAMES: dict[int, str] = {
    0xFF0D: "enter", 0xFF09: "tab", 0xFE20: "tab", 0xFF08: "backspace", 0xFF1B: "esc", 0xFFFF: "delete",
    0xFF63: "insert", 0xFF50: "home", 0xFF57: "end", 0xFF55: "pageup", 0xFF56: "pagedown",
    0xFF51: "left", 0xFF52: "up", 0xFF53: "right", 0xFF54: "down", 0x20: "space",
    0xFF61: "printscreen", 0xFF13: "pause", 0xFF14: "scrolllock", 0xFF7F: "numlock", 0xFFE5: "capslock",
    0xFF67: "apps", 0xFF6A: "help", 0xFF60: "select", 0xFF62: "execute",
    0xFFE1: "shiftleft", 0xFFE2: "shiftright", 0xFFE3: "ctrlleft", 0xFFE4: "ctrlright",
    0xFFE9: "altleft", 0xFFEA: "altright", 0xFFE7: "altleft", 0xFFE8: "altright",
    XK_SUPER_L: "winleft", XK_SUPER_R: "winright",
    0xFFAA: "multiply", 0xFFAB: "add", 0xFFAC: "separator", 0xFFAD: "subtract", 0xFFAE: "decimal", 0xFFAF: "divide",
    0x1008FF12: "volumemute", 0x1008FF11: "volumedown", 0x1008FF13: "volumeup",
    0x1008FF14: "playpause", 0x1008FF17: "nexttrack", 0x1008FF16: "prevtrack",
    **{XK_F1 + n: f"f{n + 1}" for n in range(24)},
    **{XK_KP_0 + n: f"num{n}" for n in range(10)},
}
# macOS: Super is Command, Alt is Option (pyautogui's names there)
_MAC_NAMES: dict[int, str] = {XK_SUPER_L: "command", XK_SUPER_R: "command", 0xFFE9: "optionleft",
                              0xFFEA: "optionright", 0xFFE7: "optionleft", 0xFFE8: "optionright"}

# pynput.keyboard.Key member name -> keysym (listening), and its inverse for pressing keys pyautogui lacks
PYNPUT_KEYSYMS: dict[str, int] = {
    "alt": 0xFFE9, "alt_l": 0xFFE9, "alt_r": 0xFFEA, "alt_gr": 0xFE03, "backspace": 0xFF08, "caps_lock": 0xFFE5,
    "cmd": XK_SUPER_L, "cmd_l": XK_SUPER_L, "cmd_r": XK_SUPER_R, "ctrl": 0xFFE3, "ctrl_l": 0xFFE3,
    "ctrl_r": 0xFFE4, "delete": 0xFFFF, "down": 0xFF54, "end": 0xFF57, "enter": 0xFF0D, "esc": 0xFF1B,
    "home": 0xFF50, "left": 0xFF51, "page_down": 0xFF56, "page_up": 0xFF55, "right": 0xFF53, "shift": 0xFFE1,
    "shift_l": 0xFFE1, "shift_r": 0xFFE2, "space": 0x20, "tab": 0xFF09, "up": 0xFF52,
    "media_play_pause": 0x1008FF14, "media_volume_mute": 0x1008FF12, "media_volume_down": 0x1008FF11,
    "media_volume_up": 0x1008FF13, "media_previous": 0x1008FF16, "media_next": 0x1008FF17, "insert": 0xFF63,
    "menu": 0xFF67, "num_lock": 0xFF7F, "pause": 0xFF13, "print_screen": 0xFF61, "scroll_lock": 0xFF14,
    **{f"f{n + 1}": XK_F1 + n for n in range(20)},
}
_PYNPUT_NAMES: dict[int, str] = {}
for _name, _keysym in PYNPUT_KEYSYMS.items():
    _PYNPUT_NAMES.setdefault(_keysym, _name)
_PYNPUT_NAMES.update({0xFF8D: "enter", 0xFE20: "tab", 0xFFE7: "alt_l", 0xFFE8: "alt_r"})  # KP_Enter, ISO_Left_Tab, Meta


def gui_name(keysym: int, platform: str) -> str | None:
    """pyautogui's name for the key that produces `keysym` on `platform` (sys.platform), or None.

    Printable ASCII characters are their own names (`a`, `T`, `+`); pyautogui presses Shift
    itself for the characters that need it.
    """
    if platform == "darwin" and keysym in _MAC_NAMES:
        return _MAC_NAMES[keysym]
    if keysym in _GUI_NAMES:
        return _GUI_NAMES[keysym]
    if 0x21 <= keysym <= 0x7E:
        return chr(keysym)
    return None


def pynput_name(keysym: int) -> str | None:
    """The name of the `pynput.keyboard.Key` member for `keysym`, or None."""
    return _PYNPUT_NAMES.get(keysym)
