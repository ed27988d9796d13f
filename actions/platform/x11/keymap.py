"""The X server's keyboard and modifier mapping, decoding (keycode, state) into keys like X clients do."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from actions.keys import DEAD_KEYS, MODIFIER_KEYSYMS, case_pair, keysym_char
from actions.platform.base import KeyInfo


class Keymap:
    """The server's keyboard and modifier mapping, decoding (keycode, state) like X clients do.

    `change` and `set_modifiers` apply the mapping requests a listener sees, in server order, so
    each key is decoded with the keymap the server used for it.
    """

    def __init__(self, min_keycode: int, rows: list[list[int]], modmap: list[list[int]]) -> None:
        self.rows: dict[int, list[int]] = {min_keycode + i: list(row) for i, row in enumerate(rows)}
        self.modmap = [list(codes) for codes in modmap] + [[] for _ in range(8 - len(modmap))]
        self.fetch: Callable[[int], list[int]] | None = None  # re-reads one row from the server

    @classmethod
    def from_display(cls, display: Any) -> Keymap:
        """The current mapping of a python-xlib connection's server."""
        info = display.display.info
        count = info.max_keycode - info.min_keycode + 1
        rows = [list(row) for row in display.get_keyboard_mapping(info.min_keycode, count)]
        return cls(info.min_keycode, rows, [list(codes) for codes in display.get_modifier_mapping()])

    def change(self, first: int, per: int, keysyms: tuple[int, ...] | list[int]) -> None:
        """Apply a ChangeKeyboardMapping request."""
        if per <= 0:
            return
        for i in range(len(keysyms) // per):
            self.rows[first + i] = list(keysyms[i * per:(i + 1) * per])

    def set_modifiers(self, modmap: list[list[int]]) -> None:
        """Apply a SetModifierMapping request."""
        self.modmap = [[c for c in codes if c] for codes in modmap[:8]] + [[] for _ in range(8 - len(modmap))]

    def _col(self, keycode: int, column: int) -> int:
        row = self.rows.get(keycode) or []
        return row[column] if column < len(row) else 0

    def modifiers(self, state: int) -> frozenset[str]:
        """The names of the modifiers set in an event's state."""
        names: set[str] = set()
        fixed = {0: "shift", 1: "lock", 2: "ctrl"}
        for bit in range(8):
            if not state & (1 << bit):
                continue
            if bit in fixed:
                names.add(fixed[bit])
                continue
            kinds = {MODIFIER_KEYSYMS.get(self._col(code, 0)) for code in self.modmap[bit]}
            for name in ("alt", "super", "level3", "level5", "numlock"):
                if name in kinds:
                    names.add(name)
                    break
        return frozenset(names)

    def decode(self, keycode: int, state: int) -> KeyInfo:
        """What a key press does in `state` (the core protocol's rules for groups and levels)."""
        row = self.rows.get(keycode) or []
        if not any(row) and self.fetch is not None:
            with contextlib.suppress(Exception):
                self.rows[keycode] = row = list(self.fetch(keycode))
        mods = self.modifiers(state)

        def pair(first: int) -> tuple[int, int]:
            low = row[first] if first < len(row) else 0
            high = row[first + 1] if first + 1 < len(row) else 0
            if not high:
                return case_pair(low) if low else (0, 0)
            return low, high

        columns = [4, 2, 0] if "level3" in mods else [0]
        low = high = 0
        for first in columns:
            low, high = pair(first)
            if low or high:
                break
        shift = "shift" in mods
        keypad = "numlock" in mods and 0xFF80 <= high <= 0xFFBD  # Num Lock swaps a keypad key's levels
        keysym = high if shift != keypad else low
        if "lock" in mods:
            lower, upper = case_pair(keysym)
            if lower != upper:
                keysym = lower if shift else upper
        base = next((k for k in row[:1] if k), keysym)
        modifier = MODIFIER_KEYSYMS.get(keysym) or MODIFIER_KEYSYMS.get(base)
        dead = DEAD_KEYS.get(keysym)
        char = None if modifier or dead else keysym_char(keysym)
        return KeyInfo(keycode, keysym, base, char, modifier, dead)
