"""The kill switch: a global hotkey (pynput) and, on the host display, a fail-safe corner.

Either one calls `trigger(reason)`; the session then sets its stop event and cancels the
running action, which releases held keys and buttons. The hotkey is Ctrl+Alt+Shift+K; it
works whichever window has focus, because pynput listens to the X server's RECORD stream, not
to a window. The fail-safe corner works like pyautogui's: the pointer pushed into a corner of
the host screen stops the run.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

HOTKEY_MODIFIERS = frozenset({"ctrl", "alt", "shift"})
HOTKEY_KEY = "k"
HOTKEY_TEXT = "Ctrl+Alt+Shift+K"
MODIFIER_KEYSYMS = {0xFFE3: "ctrl", 0xFFE4: "ctrl", 0xFFE9: "alt", 0xFFEA: "alt", 0xFFE7: "alt", 0xFFE8: "alt",
                    0xFFE1: "shift", 0xFFE2: "shift"}  # Control, Alt, Meta, Shift (left and right)
FAILSAFE_POLL_S = 0.05
_DISPLAY_LOCK = threading.Lock()


@contextlib.contextmanager
def on_display(display: str | None) -> Iterator[None]:
    """Run a block with $DISPLAY set to `display`: pynput opens its X connections from it."""
    with _DISPLAY_LOCK:
        old = os.environ.get("DISPLAY")
        if display:
            os.environ["DISPLAY"] = display
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = old


def current_display() -> str | None:
    """$DISPLAY, read while no listener is being started (which changes it for a moment)."""
    with _DISPLAY_LOCK:
        return os.environ.get("DISPLAY")


def start_listener(make: Callable[[], Any], display: str | None) -> Any:
    """Make and start a pynput listener bound to `display`; return it once it listens.

    pynput picks its backend when first imported and opens its X connections from $DISPLAY, so
    `make` (which imports pynput) runs with $DISPLAY set to `display`.
    """
    with on_display(display):
        listener = make()
        listener.start()
        listener.wait()  # pynput opens its displays before it reports ready
    return listener


def stop_listener(listener: Any) -> None:
    """Stop a pynput listener and wait for its thread (a second or so at most).

    pynput queues its RECORD disable request on the connection its thread is blocked on, so
    the thread may not notice until the next X event; the request is sent again on pynput's
    other connection, where the X server acts on it at once.
    """
    with contextlib.suppress(Exception):  # the display may already be gone
        listener.stop()
    with contextlib.suppress(Exception):  # private attributes of pynput's xorg backend
        listener._display_stop.record_disable_context(listener._context)
        listener._display_stop.flush()
    listener.join(timeout=2)


class KillSwitch:
    """Calls `trigger(reason)` on the hotkey (on `hotkey_display`) or the fail-safe corner."""

    def __init__(self, trigger: Callable[[str], None], hotkey_display: str | None,
                 failsafe_display: str | None = None) -> None:
        self.trigger, self.hotkey_display, self.failsafe_display = trigger, hotkey_display, failsafe_display
        self._listener: Any = None
        self._held: set[str] = set()
        self._done = threading.Event()
        self._fired = False

    def _fire(self, reason: str) -> None:
        if not self._fired:
            self._fired = True
            self.trigger(reason)

    def start(self) -> KillSwitch:
        """Listen for the hotkey, and watch the corners on the host display."""
        def make() -> Any:
            from pynput import keyboard

            return keyboard.Listener(on_press=self._press, on_release=self._release)

        if self.hotkey_display is not None:
            self._listener = start_listener(make, self.hotkey_display)
        if self.failsafe_display is not None:
            threading.Thread(target=self._watch_corners, daemon=True, name="failsafe").start()
        return self

    @staticmethod
    def _name(key: Any) -> str:
        """"ctrl", "alt", "shift" for either side's modifier; the lower-case character otherwise.

        By keysym, since Alt pressed with Shift held arrives as Meta on the usual X keymap.
        """
        code = getattr(getattr(key, "value", key), "vk", None)
        if code in MODIFIER_KEYSYMS:
            return MODIFIER_KEYSYMS[code]
        char = getattr(key, "char", None)
        return char.lower() if char else ""

    def _press(self, key: Any) -> None:
        # matched by key, not by character: a Shift the agent already holds must not hide the hotkey
        name = self._name(key)
        if name == HOTKEY_KEY and self._held >= HOTKEY_MODIFIERS:
            self._fire(f"kill switch ({HOTKEY_TEXT})")
        elif name in HOTKEY_MODIFIERS:
            self._held.add(name)

    def _release(self, key: Any) -> None:
        self._held.discard(self._name(key))

    def _watch_corners(self) -> None:
        from Xlib import display as xdisplay

        conn = xdisplay.Display(self.failsafe_display)
        try:
            screen = conn.screen()
            corners = {(0, 0), (screen.width_in_pixels - 1, 0), (0, screen.height_in_pixels - 1),
                       (screen.width_in_pixels - 1, screen.height_in_pixels - 1)}
            while not self._done.wait(FAILSAFE_POLL_S):
                pointer = conn.screen().root.query_pointer()
                if (pointer.root_x, pointer.root_y) in corners:
                    self._fire("fail-safe: the pointer was pushed into a screen corner")
                    return
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop listening."""
        self._done.set()
        if self._listener is not None:
            stop_listener(self._listener)
            self._listener = None

    def __enter__(self) -> KillSwitch:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
