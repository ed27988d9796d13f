"""Typing text through pynput on an X display, around two limits of pynput's X code.

pynput types a character by sending a synthetic key event (XSendEvent) to the window that has
the keyboard focus, borrowing an empty keycode of the keyboard map for characters the map lacks.
On X this goes wrong in two ways, which `XTypist` works around without touching pynput itself:

- With no focused window (an X server without a window manager: the focus is PointerRoot, and
  keys go to the window under the pointer) pynput addresses its events to no window, and clients
  drop them. The typist gives the top-level window under the pointer the focus while it types,
  and gives it back to PointerRoot after.
- A pynput controller that borrows a second character puts it in column 2 or 3 of the keycode it
  borrowed before, which needs a keyboard group clients do not apply, so they read the wrong
  character (pynput issue 642). After each character borrowed, the typist fills the keycode's
  first four columns with that character, so the next one borrows an empty keycode; and once a
  chunk is typed it waits until clients have read every key, empties the keycodes borrowed, and
  drops the controller that borrowed them (its own record of them is stale now). Characters on
  the keyboard map go through a controller that never borrows. A chunk of text must not need
  more keycodes than the map has spare (`spare`; the executor cuts text into chunks that fit).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from actions.keys import char_keysym, keysym_char
from actions.result import ToolError

REMAP_PAUSE_S = 0.05  # clients read a key's character when they handle it, with the keymap of that moment
SPARE_MARGIN = 2  # empty keycodes left to other programs (xdotool borrows one too)
_TYPED_AS_KEYS = "\n\r\t"  # pynput presses Return and Tab for these


class XTypist:
    """Types any Unicode text on one X display through pynput keyboard controllers."""

    def __init__(self, display: str, new_controller: Callable[[], Any]) -> None:
        from Xlib import display as xdisplay

        self.display = display
        self._new_controller = new_controller
        self._conn = xdisplay.Display(display)  # reads the keymap and the focus; never sends keys
        self._lock = threading.Lock()
        info = self._conn.display.info
        self._first, self._count = info.min_keycode, info.max_keycode - info.min_keycode + 1
        self._main_rows = self._rows()
        self._main = new_controller()  # types what the map has; never borrows
        empty = sum(1 for row in self._main_rows if not any(row))
        self.spare = max(1, empty - SPARE_MARGIN)

    def keysyms(self) -> set[int]:
        """Every keysym of the keyboard map now."""
        with self._lock:
            return {keysym for row in self._rows() for keysym in row if keysym}

    def _rows(self) -> list[list[int]]:
        return [list(row) for row in self._conn.get_keyboard_mapping(self._first, self._count)]

    def type(self, text: str) -> None:
        """Type `text` (at most `spare` distinct characters the keyboard map lacks)."""
        with self._lock:
            before = self._rows()
            if before != self._main_rows:  # another program changed the map: the main controller's copy is stale
                self._main, self._main_rows = self._new_controller(), before
            on_map = {keysym for row in before for keysym in row if keysym}
            empty = [i for i, row in enumerate(before) if not any(row)]  # pynput borrows the first of these
            lender: Any = None  # the controller that borrows keycodes for this chunk
            borrowed: set[str] = set()
            focus = self._give_focus()
            try:
                run: list[str] = []
                for char in text:
                    if char in _TYPED_AS_KEYS or char_keysym(char) in on_map:
                        run.append(char)
                        continue
                    if run:
                        _type(self._main, "".join(run))
                        run = []
                    if char not in borrowed and len(borrowed) >= self.spare:
                        raise ToolError(f"cannot type more than {self.spare} characters the keyboard map lacks at once")
                    lender = lender or self._new_controller()
                    _type(lender, char)
                    if char not in borrowed:
                        borrowed.add(char)
                        self._fill(empty, char)
                if run:
                    _type(self._main, "".join(run))
            finally:
                try:
                    if borrowed:
                        time.sleep(REMAP_PAUSE_S)
                        self._give_back(before, borrowed)
                finally:
                    self._restore_focus(focus)
                    lender = None  # drops its connection; its record of borrowed keycodes is stale now

    def _fill(self, empty: list[int], char: str) -> None:
        """Fill the first four columns of the keycode just borrowed for `char` (pynput takes the first
        empty one) with what it holds, so that the next character borrows another keycode."""
        wanted = {char, char.swapcase()}
        for n, index in enumerate(empty):
            row = list(self._conn.get_keyboard_mapping(self._first + index, 1)[0])
            if not any(keysym_char(k) in wanted for k in row if k):
                continue  # not this one (another program took it, or it is still empty): look further
            lower = row[0] or next(k for k in row if k)
            upper = row[1] if len(row) > 1 and row[1] else lower
            filled = ([lower, upper, lower, upper] + row[4:])[:len(row)]
            self._conn.change_keyboard_mapping(self._first + index, [tuple(filled)])
            self._conn.sync()
            del empty[n]
            return

    def _give_back(self, before: list[list[int]], chars: set[str]) -> None:
        """Empty the keycodes that were empty before and now hold only characters typed just now."""
        typed = chars | {c.swapcase() for c in chars}
        for index, (old, new) in enumerate(zip(before, self._rows(), strict=False)):
            if any(old) or not any(new):
                continue
            if all(keysym_char(k) in typed for k in new if k):
                self._conn.change_keyboard_mapping(self._first + index, [tuple(0 for _ in new)])
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
        """Disconnect."""
        self._main = None
        with contextlib.suppress(Exception):  # the server may be gone
            self._conn.close()


def _type(controller: Any, text: str) -> None:
    try:
        controller.type(text)
    except Exception as exc:  # pynput's InvalidCharacterException, X11Error
        raise ToolError(f"pynput could not type {text!r}: {type(exc).__name__}: {exc}") from exc
