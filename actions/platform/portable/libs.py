"""pyautogui and pynput, loaded for one display.

On X (Linux and the BSDs) both libraries find their display in $DISPLAY themselves:
pyautogui once, when it is imported (its module keeps that connection for the life of the
process), pynput whenever a controller or a listener is made (a listener on its own thread).
So `x_display(name)` sets $DISPLAY while they connect, under a lock, and puts the old value
back; and one process drives one X display with pyautogui: the first one it was loaded for.
Asking for another is refused with an error that says so (the x11 backend has no such limit).
On macOS and Windows there is one screen and no $DISPLAY: display names are ignored.

pyautogui's own fail-safe (pointer in a corner raises) and pause (0.1 s after every call) are
turned off: deskpilot's kill switch stops runs, and its settle step waits for the screen.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

from actions.result import ToolError

IS_X = not sys.platform.startswith(("darwin", "win32", "cygwin"))  # the libraries' X11 code paths

_lock = threading.RLock()
_gui_display: str | None = None  # the X display pyautogui was loaded for


def _same(a: str, b: str) -> bool:
    return a.removesuffix(".0") == b.removesuffix(".0")


@contextlib.contextmanager
def x_display(display: str | None) -> Iterator[None]:
    """$DISPLAY set to `display` while the block runs (on X; elsewhere nothing changes)."""
    if not IS_X or not display:
        yield
        return
    with _lock:
        old = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = display
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = old


def target(display: str | None) -> str | None:
    """The X display `display` means (None: $DISPLAY); ToolError on X when there is none. None elsewhere."""
    if not IS_X:
        return None
    display = display or os.environ.get("DISPLAY")
    if not display:
        raise ToolError("no X display: $DISPLAY is not set and no display was named (--display)")
    return display


def bound_display() -> str | None:
    """The X display pyautogui drives in this process, once loaded."""
    return _gui_display


def load_pyautogui(display: str | None) -> Any:
    """The pyautogui module, connected to `display` (on X), with its fail-safe and pause off.

    ToolError when it cannot be loaded, or when it already drives another X display.
    """
    global _gui_display
    display = target(display)
    with _lock:
        if display is not None and _gui_display is not None and not _same(display, _gui_display):
            raise ToolError(
                f"the portable backend drives one X display per process: pyautogui is connected to "
                f"{_gui_display}, not {display}; use --backend x11, or a separate deskpilot process for {display}")
        try:
            with x_display(display):
                import pyautogui
        except Exception as exc:  # ImportError, Xlib's connection errors, KeyError('DISPLAY')
            where = f" on {display}" if display else ""
            raise ToolError(f"pyautogui cannot be loaded{where}: {type(exc).__name__}: {exc}") from exc
        if display is not None and _gui_display is None:
            _gui_display = display
        pyautogui.FAILSAFE = False  # deskpilot's kill switch instead
        pyautogui.PAUSE = 0  # deskpilot's settle instead
        return pyautogui


def load_pynput(display: str | None) -> tuple[Any, Any]:
    """pynput's keyboard and mouse modules (connecting to `display` on X to check it); ToolError otherwise."""
    display = target(display)
    try:
        with x_display(display):
            from pynput import keyboard, mouse
    except Exception as exc:
        where = f" on {display}" if display else ""
        raise ToolError(f"pynput cannot be loaded{where}: {type(exc).__name__}: {exc}") from exc
    return keyboard, mouse


def keyboard_controller(display: str | None) -> Any:
    """A new pynput keyboard controller for `display`."""
    keyboard, _ = load_pynput(display)
    with x_display(target(display)):
        return keyboard.Controller()
