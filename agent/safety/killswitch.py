"""The kill switch: a global hotkey and, on the host display, a fail-safe corner.

Either one calls `trigger(reason)`; the session then sets its stop event and cancels the
running action, which releases held keys and buttons. The hotkey is Ctrl+Alt+Shift+K; it
works whichever window has focus, because the platform's input listener hears the display's
input (on X11 through the RECORD extension, the listener `deskpilot record` uses; on the
portable backend through pynput's listeners), not a window's. The fail-safe corner works like
pyautogui's (whose own fail-safe deskpilot turns off): the pointer pushed into a corner of the
host screen stops the run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actions.keys import keysym_char

if TYPE_CHECKING:
    from actions.platform.base import RawEvent, Sink
    from vision.geometry import Size

HOTKEY_MODIFIERS = frozenset({"ctrl", "alt", "shift"})
HOTKEY_KEY = "k"
HOTKEY_TEXT = "Ctrl+Alt+Shift+K"


def current_display() -> str | None:
    """The user's display ($DISPLAY), where their keyboard is; None without one."""
    return os.environ.get("DISPLAY")


def corners(size: Size) -> set[tuple[int, int]]:
    """The four corner pixels of a screen."""
    right, bottom = size.width - 1, size.height - 1
    return {(0, 0), (right, 0), (0, bottom), (right, bottom)}


class KillSwitch:
    """Calls `trigger(reason)` on the hotkey (on `hotkey_display`) or the fail-safe corner (on `failsafe_display`)."""

    def __init__(self, trigger: Callable[[str], None], hotkey_display: str | None,
                 failsafe_display: str | None = None, backend: str | None = None) -> None:
        self.trigger, self.hotkey_display, self.failsafe_display = trigger, hotkey_display, failsafe_display
        self.backend = backend  # the platform backend that listens (None: the default)
        self._listeners: list[Any] = []
        self._held: set[str] = set()
        self._corners: set[tuple[int, int]] = set()
        self._lock = threading.Lock()
        self._fired = False

    def _fire(self, reason: str) -> None:
        with self._lock:
            if self._fired:
                return
            self._fired = True
        self.trigger(reason)

    def start(self) -> KillSwitch:
        """Listen for the hotkey, and watch the corners on the fail-safe display (one listener per display)."""
        from actions.platform import open_listener

        displays = [d for d in (self.hotkey_display, self.failsafe_display) if d is not None]
        try:
            for display in dict.fromkeys(displays):
                failsafe = display == self.failsafe_display
                listener = open_listener(display, self._sink(display == self.hotkey_display, failsafe),
                                         motion=failsafe, backend=self.backend)
                if failsafe:
                    self._corners = corners(listener.size)
                self._listeners.append(listener)
                listener.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _sink(self, hotkey: bool, failsafe: bool) -> Sink:
        def sink(event: RawEvent) -> None:
            if hotkey and event.key is not None:
                self._key(event)
            elif failsafe and event.kind == "motion" and (event.x, event.y) in self._corners:
                self._fire("fail-safe: the pointer was pushed into a screen corner")

        return sink

    def _key(self, event: RawEvent) -> None:
        # matched by key, not by character: a Shift the agent already holds must not hide the hotkey.
        # Modifiers are known by keysym, since Alt pressed with Shift held arrives as Meta (also "alt").
        key = event.key
        assert key is not None
        if key.modifier is not None:
            if key.modifier in HOTKEY_MODIFIERS:
                if event.kind == "key_down":
                    self._held.add(key.modifier)
                else:
                    self._held.discard(key.modifier)
            return
        name = (keysym_char(key.base) or "").lower()
        if event.kind == "key_down" and name == HOTKEY_KEY and self._held >= HOTKEY_MODIFIERS:
            self._fire(f"kill switch ({HOTKEY_TEXT})")

    def stop(self) -> None:
        """Stop listening."""
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.stop()

    def __enter__(self) -> KillSwitch:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
