"""The X11 input backend: XTest events through python-xlib, one connection per display.

Typing any Unicode text works by mapping characters that the keyboard map lacks onto spare
keycodes, a whole chunk at once, then typing the chunk; keycodes are only re-mapped after a
pause, so clients never translate a key press with a mapping that changed under it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from actions.keys import XK_RETURN, XK_SHIFT_L, XK_TAB, char_keysym
from actions.platform.base import WHEEL_BUTTONS
from actions.result import ToolError

SCROLL_BUTTONS = {direction: number for number, direction in WHEEL_BUTTONS.items()}  # X's wheel buttons
REMAP_PAUSE_S = 0.05


class X11Input:
    """Mouse and keyboard input on one X display through the XTEST extension."""

    def __init__(self, display: str | None) -> None:
        from Xlib import display as xdisplay
        from Xlib.error import DisplayError

        try:
            self._d = xdisplay.Display(display)
        except (DisplayError, OSError) as exc:
            raise ToolError(f"cannot connect to X display {display or '(default)'}: {exc}") from exc
        if not self._d.has_extension("XTEST"):
            self._d.close()
            raise ToolError(f"X display {display} lacks the XTEST extension needed for input")
        self._lock = threading.RLock()
        self._keys_down: list[int] = []
        self._buttons_down: list[int] = []
        info = self._d.display.info
        self._min_kc, self._max_kc = info.min_keycode, info.max_keycode
        mapping = self._d.get_keyboard_mapping(self._min_kc, self._max_kc - self._min_kc + 1)
        self._spare = [self._min_kc + i for i, row in enumerate(mapping) if not any(row)]
        self._borrowed: dict[int, int] = {}  # keysym -> spare keycode currently mapped to it
        self._last_remap_use = 0.0

    # --- low level -------------------------------------------------------------------------
    def _fake(self, event: int, detail: int = 0, x: int = 0, y: int = 0) -> None:
        from Xlib.ext import xtest

        xtest.fake_input(self._d, event, detail, x=x, y=y)

    def sync(self) -> None:
        """Wait until the server has processed every event sent so far."""
        with self._lock:
            self._d.sync()

    def move(self, x: int, y: int) -> None:
        """Move the pointer to screen pixel (x, y)."""
        from Xlib import X

        with self._lock:
            self._fake(X.MotionNotify, 0, x, y)
            self._d.sync()

    def button(self, number: int, down: bool) -> None:
        """Press or release mouse button `number` (1 left, 2 middle, 3 right, 4-7 wheel)."""
        from Xlib import X

        with self._lock:
            self._fake(X.ButtonPress if down else X.ButtonRelease, number)
            if down:
                self._buttons_down.append(number)
            elif number in self._buttons_down:
                self._buttons_down.remove(number)
            self._d.sync()

    def scroll(self, direction: str, clicks: int = 1) -> None:
        """Turn the wheel `clicks` notches up, down, left or right (X's wheel buttons 4-7)."""
        number = SCROLL_BUTTONS[direction]
        for _ in range(clicks):
            self.button(number, True)
            self.button(number, False)

    def has_extension(self, name: str) -> bool:
        """Whether the X server offers an extension (e.g. RECORD, which the kill switch needs)."""
        with self._lock:
            return bool(self._d.has_extension(name))

    def position(self) -> tuple[int, int]:
        """The pointer's position in screen pixels."""
        with self._lock:
            reply = self._d.screen().root.query_pointer()
            return reply.root_x, reply.root_y

    # --- keys ------------------------------------------------------------------------------
    def _keycode(self, keysym: int) -> tuple[int, bool]:
        """(keycode, needs shift) for a keysym, borrowing a spare keycode if the map lacks it."""
        keycode = self._d.keysym_to_keycode(keysym)
        if keycode:
            return keycode, self._d.keycode_to_keysym(keycode, 0) != keysym
        return self._borrow([keysym])[keysym], False

    def _borrow(self, keysyms: list[int]) -> dict[int, int]:
        """Map keysyms onto spare keycodes (at most len(spare) at once)."""
        missing = [k for k in dict.fromkeys(keysyms) if k not in self._borrowed]
        if missing:
            if len(set(keysyms)) > len(self._spare):
                raise ToolError(f"cannot type {len(set(keysyms))} unmapped characters at once")
            in_use = set(keysyms)
            free = [kc for kc in self._spare if kc not in self._borrowed.values()]
            reusable = [ks for ks in self._borrowed if ks not in in_use]
            wait = REMAP_PAUSE_S - (time.monotonic() - self._last_remap_use)
            if len(free) < len(missing) and wait > 0:
                time.sleep(wait)  # let clients translate earlier presses before re-mapping
            for keysym in missing:
                keycode = free.pop() if free else self._borrowed.pop(reusable.pop())
                self._d.change_keyboard_mapping(keycode, [(keysym, keysym)])
                self._borrowed[keysym] = keycode
            self._d.sync()
            time.sleep(REMAP_PAUSE_S)  # clients refresh their keymaps on MappingNotify
        return {k: self._borrowed[k] for k in keysyms}

    def key(self, keysym: int, down: bool) -> None:
        """Press or release the key that produces `keysym` (adding shift where the map needs it)."""
        from Xlib import X

        with self._lock:
            keycode, shift = self._keycode(keysym)
            if down:
                if shift:
                    self._press_keycode(self._d.keysym_to_keycode(XK_SHIFT_L))
                self._press_keycode(keycode)
            else:
                self._fake(X.KeyRelease, keycode)
                if keycode in self._keys_down:
                    self._keys_down.remove(keycode)
                if shift:
                    shift_code = self._d.keysym_to_keycode(XK_SHIFT_L)
                    self._fake(X.KeyRelease, shift_code)
                    if shift_code in self._keys_down:
                        self._keys_down.remove(shift_code)
            self._d.sync()

    def _press_keycode(self, keycode: int) -> None:
        from Xlib import X

        self._fake(X.KeyPress, keycode)
        self._keys_down.append(keycode)

    def type_chunk(self, text: str, stop: threading.Event | None = None) -> None:
        """Type a short piece of text (any Unicode; at most as many unmapped characters as spares).
        The chunk goes to the server at once, so `stop` is not looked at: the executor stops between chunks."""
        from Xlib import X

        with self._lock:
            keysyms = [_text_keysym(ch) for ch in text]
            unmapped = [k for k in keysyms if not self._d.keysym_to_keycode(k)]
            borrowed = self._borrow(unmapped) if unmapped else {}
            shift_code = self._d.keysym_to_keycode(XK_SHIFT_L)
            for keysym in keysyms:
                if keysym in borrowed:
                    keycode, shift = borrowed[keysym], False
                else:
                    keycode = self._d.keysym_to_keycode(keysym)
                    shift = self._d.keycode_to_keysym(keycode, 0) != keysym
                if shift:
                    self._fake(X.KeyPress, shift_code)
                self._fake(X.KeyPress, keycode)
                self._fake(X.KeyRelease, keycode)
                if shift:
                    self._fake(X.KeyRelease, shift_code)
            self._d.sync()
            if borrowed:
                self._last_remap_use = time.monotonic()

    @property
    def spare_keycodes(self) -> int:
        """How many unmapped characters one chunk may contain."""
        return len(self._spare)

    # --- cleanup ---------------------------------------------------------------------------
    def release_all(self, keep_buttons: set[int] | frozenset[int] = frozenset()) -> None:
        """Release every key and button this backend still holds down, except `keep_buttons`."""
        from Xlib import X

        with self._lock:
            for keycode in reversed(self._keys_down):
                self._fake(X.KeyRelease, keycode)
            for number in reversed(self._buttons_down):
                if number not in keep_buttons:
                    self._fake(X.ButtonRelease, number)
            self._keys_down.clear()
            self._buttons_down = [b for b in self._buttons_down if b in keep_buttons]
            self._d.sync()

    def held(self) -> dict[str, list[int]]:
        """What is held down now: keycodes and buttons."""
        return {"keys": list(self._keys_down), "buttons": list(self._buttons_down)}

    def close(self) -> None:
        """Release everything, restore borrowed keycodes after a pause, and disconnect."""
        with self._lock:
            try:
                self.release_all()
                if self._borrowed:
                    time.sleep(max(0.0, REMAP_PAUSE_S - (time.monotonic() - self._last_remap_use)))
                    for keycode in self._borrowed.values():
                        self._d.change_keyboard_mapping(keycode, [(0, 0)])
                    self._borrowed.clear()
                    self._d.sync()
            except Exception:  # the server may already be gone; closing must not fail
                pass
            finally:
                self._d.close()


def _text_keysym(char: str) -> int:
    return {"\n": XK_RETURN, "\r": XK_RETURN, "\t": XK_TAB}.get(char) or char_keysym(char)


def xdisplay_info(display: str | None) -> dict[str, Any]:
    """Size and XTEST availability of an X display (for `deskpilot doctor`)."""
    from Xlib import display as xdisplay

    d = xdisplay.Display(display)
    try:
        screen = d.screen()
        return {"width": screen.width_in_pixels, "height": screen.height_in_pixels,
                "xtest": bool(d.has_extension("XTEST"))}
    finally:
        d.close()
