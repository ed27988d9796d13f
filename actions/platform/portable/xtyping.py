"""Typing text through pynput on an X display, around two limits of pynput's X code.

pynput types a character by sending a synthetic key event (XSendEvent) to the window that has
the keyboard focus, with the keycode its copy of the keyboard map gives for the character's
keysym. On X this goes wrong in two ways, which `XTypist` works around without changing pynput:

- With no focused window (an X server without a window manager: the focus is PointerRoot, and
  keys go to the window under the pointer) pynput addresses its events to no window, and clients
  drop them. The typist gives the top-level window under the pointer the focus while it types,
  and gives it back to PointerRoot after.
- For characters the map lacks pynput borrows an empty keycode, but it puts the second one into
  column 2 or 3 of the keycode it borrowed first, which needs a keyboard group clients do not
  apply (pynput issue 642), and it types right after re-mapping, before clients have re-read
  the map (they read a key's character when they handle it). So the typist puts the characters
  a chunk needs onto spare keycodes itself, as the x11 backend does (the highest keycodes first,
  one per character, lower and upper case together), waits REMAP_PAUSE_S, and then pynput finds
  every character on the map. Lent keycodes stay mapped for later chunks until room is needed
  (the ones used least recently are given back, REMAP_PAUSE_S after their last key), and all
  are given back at `close()`. The executor cuts text into chunks that need at most `spare`
  keycodes; when other programs hold some of them, the typist types a chunk in parts.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from actions.keys import char_keysym
from actions.platform.portable.input import type_keys
from actions.result import ToolError

REMAP_PAUSE_S = 0.05  # clients read a key's character when they handle it, with the keymap of that moment
SPARE_MARGIN = 2  # empty keycodes left to other programs (xdotool borrows one too)
_TYPED_AS_KEYS = "\n\r\t"  # pynput presses Return and Tab for these


def pynput_keysym(char: str) -> int:
    """The keysym pynput's X controller looks a character up by: the name its table gives the
    character, else the character's Unicode keysym (pynput's `_key_to_keysym`)."""
    try:
        from pynput._util import xorg, xorg_keysyms

        name = xorg_keysyms.CHARS.get(char)
        if name is not None:
            return int(xorg.symbol_to_keysym(name)) or char_keysym(char)
    except Exception:  # another pynput layout: its Unicode keysym, which pynput uses for most characters
        pass
    return char_keysym(char)


class XTypist:
    """Types any Unicode text on one X display through a pynput keyboard controller."""

    def __init__(self, display: str, new_controller: Callable[[], Any]) -> None:
        from Xlib import display as xdisplay

        self.display = display
        self._new_controller = new_controller
        self._conn = xdisplay.Display(display)  # manages the keymap and the focus; never sends keys
        self._lock = threading.Lock()
        info = self._conn.display.info
        self._first, self._count = info.min_keycode, info.max_keycode - info.min_keycode + 1
        self._main_rows = self._rows()
        self._main = new_controller()  # renewed whenever the map changed: it reads the map once
        self._lent: dict[int, tuple[set[str], float]] = {}  # keycode -> its characters, when last typed
        self._wrote: dict[int, set[int]] = {}  # keycode -> the keysyms put there
        empty = sum(1 for row in self._main_rows if not any(row))
        self.spare = max(1, empty - SPARE_MARGIN)

    def keysyms(self) -> set[int]:
        """Every keysym of the keyboard map now."""
        with self._lock:
            return {keysym for row in self._rows() for keysym in row if keysym}

    def _rows(self) -> list[list[int]]:
        return [list(row) for row in self._conn.get_keyboard_mapping(self._first, self._count)]

    def type(self, text: str, stop: threading.Event | None = None) -> None:
        """Type `text`: all at once when the spare keycodes suffice, else in parts (other programs hold some);
        or its start, until `stop` is set."""
        with self._lock:
            rest = text
            while rest and not (stop and stop.is_set()):
                rows = self._rows()
                on_map = {keysym for row in rows for keysym in row if keysym}
                part, missing = self._part(rest, rows, on_map)
                if missing:
                    self._lend(missing, rows, part)
                    rows = self._rows()
                if rows != self._main_rows:
                    self._main, self._main_rows = self._new_controller(), rows
                focus = self._give_focus()
                try:
                    type_keys(self._main, part, stop)
                finally:
                    now, used = time.monotonic(), set(part)
                    for keycode, (chars, _) in list(self._lent.items()):
                        if chars & used:
                            self._lent[keycode] = (chars, now)
                    self._restore_focus(focus)
                rest = rest[len(part):]

    def _part(self, rest: str, rows: list[list[int]], on_map: set[int]) -> tuple[str, list[str]]:
        """The longest start of `rest` whose characters fit the map: those on it, plus the missing ones
        that fit on empty keycodes and on lent ones that start does not use (given back for them)."""
        self._forget_taken(rows)
        free = sum(1 for row in rows if not any(row)) - SPARE_MARGIN
        lent_for = {char: keycode for keycode, (chars, _) in self._lent.items() for char in chars}
        used: set[int] = set()  # lent keycodes this start types with
        missing: list[str] = []
        for n, char in enumerate(rest):
            if char in _TYPED_AS_KEYS or char in missing:
                continue
            keycode = lent_for.get(char) if pynput_keysym(char) in on_map else None
            if pynput_keysym(char) in on_map and (keycode is None or keycode in used):
                continue
            if len(missing) + 1 > free + len(self._lent) - len(used):  # no room for it (or to keep its keycode)
                if not n:
                    raise ToolError(f"cannot type {char!r}: no spare keycode of the keyboard map is free "
                                    "(other programs hold them)")
                return rest[:n], missing
            if keycode is not None:
                used.add(keycode)
            else:
                missing.append(char)
        return rest, missing

    def _forget_taken(self, rows: list[list[int]]) -> None:
        """Forget lent keycodes another program has since re-mapped (the x11 backend re-uses spare ones)."""
        for keycode in list(self._lent):
            if not self._ours(rows[keycode - self._first], keycode):
                del self._lent[keycode], self._wrote[keycode]

    def _ours(self, row: list[int], keycode: int) -> bool:
        held = {k for k in row if k}
        return bool(held) and held <= self._wrote.get(keycode, set())

    def _lend(self, chars: list[str], rows: list[list[int]], text: str) -> None:
        """Map `chars` onto empty keycodes (giving back idle lent ones if needed), then wait for clients."""
        empty = [self._first + i for i, row in enumerate(rows) if not any(row)]
        short = len(chars) - (len(empty) - SPARE_MARGIN)
        if short > 0:
            used = set(text)
            idle = sorted((last, keycode) for keycode, (lent, last) in self._lent.items() if not lent & used)
            freed = [keycode for _, keycode in idle[:short]]
            self._give_back(freed)
            empty += freed
        width = len(rows[0]) if rows else 2
        for char, keycode in zip(chars, sorted(empty, reverse=True), strict=False):  # keycode 8 last
            lower, upper = char.lower(), char.upper()
            cased = len(lower) == len(upper) == 1 and lower != upper
            pair = (pynput_keysym(lower), pynput_keysym(upper)) if cased else (pynput_keysym(char),) * 2
            self._conn.change_keyboard_mapping(keycode, [pair + (0,) * max(0, width - 2)])
            self._lent[keycode] = ({lower, upper} if cased else {char}, time.monotonic())
            self._wrote[keycode] = set(pair)
        self._conn.sync()
        time.sleep(REMAP_PAUSE_S)  # clients re-read the map when they see MappingNotify

    def _give_back(self, keycodes: list[int]) -> None:
        """Empty lent keycodes, once clients had REMAP_PAUSE_S to read the last key typed with them."""
        if not keycodes:
            return
        last = max(self._lent[keycode][1] for keycode in keycodes)
        time.sleep(max(0.0, REMAP_PAUSE_S - (time.monotonic() - last)))
        for keycode in keycodes:
            row = list(self._conn.get_keyboard_mapping(keycode, 1)[0])
            if self._ours(row, keycode):  # another program may have re-mapped it since
                self._conn.change_keyboard_mapping(keycode, [(0,) * len(row)])
            del self._lent[keycode], self._wrote[keycode]
        self._conn.sync()

    def _give_focus(self) -> Any:
        """Focus the top-level window under the pointer when no window has the focus; the old focus, or None."""
        from Xlib import X

        focus = self._conn.get_input_focus().focus
        if not isinstance(focus, int) or focus not in (X.NONE, X.PointerRoot):
            return None  # a window has the focus: pynput's events go there, as a person's keys would
        window = self._conn.screen().root.query_pointer().child
        if not window:
            return None
        self._conn.set_input_focus(window, X.RevertToPointerRoot, X.CurrentTime)
        self._conn.sync()
        return focus

    def _restore_focus(self, focus: Any) -> None:
        from Xlib import X

        if focus is None:
            return
        self._conn.set_input_focus(focus, X.RevertToPointerRoot, X.CurrentTime)
        self._conn.sync()

    def close(self) -> None:
        """Give back every lent keycode and disconnect."""
        self._main = None
        with contextlib.suppress(Exception):  # the server may be gone
            self._give_back(list(self._lent))
        with contextlib.suppress(Exception):
            self._conn.close()

