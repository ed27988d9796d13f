"""Platform backends behind one factory: desktops, input on them, listening to them, their windows.

Agent code reaches the platform only through these functions. A backend is chosen by name
(`$DESKPILOT_BACKEND`, default "x11") from a table of backends; a backend module is imported here,
when it is chosen, and nowhere else. `register_backend` adds one (a test double, say) to the table.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from actions.platform.base import DEFAULT_SIZE, DesktopError

if TYPE_CHECKING:
    from actions.executor import Executor
    from actions.platform.base import Backend, Desktop, Listener, Sink, VirtualDisplay, WindowInfo
    from vision.geometry import Size

__all__ = ["DEFAULT_SIZE", "DesktopError", "backend_name", "focused_window", "get_backend", "open_desktop",
           "open_executor", "open_listener", "register_backend", "virtual_desktop"]
DEFAULT_BACKEND = "x11"

_BACKENDS: dict[str, Any] = {"x11": "actions.platform.x11"}  # name -> module path, or the backend itself


def register_backend(name: str, backend: Any) -> None:
    """Make `backend` choosable as `name`: a module path, or a module or object with `Backend`'s functions."""
    _BACKENDS[name] = backend


def backend_name() -> str:
    """The chosen backend's name: $DESKPILOT_BACKEND, else "x11"."""
    return os.environ.get("DESKPILOT_BACKEND") or DEFAULT_BACKEND


def get_backend(name: str | None = None) -> Backend:
    """The backend called `name` (default: `backend_name()`), imported now. DesktopError if unknown."""
    name = name or backend_name()
    try:
        backend = _BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(_BACKENDS))
        raise DesktopError(f"unknown platform backend {name!r} (DESKPILOT_BACKEND); known: {known}") from None
    if isinstance(backend, str):
        backend = importlib.import_module(backend)
    return backend


def open_desktop(spec: str = "auto", size: Size | None = None, window_manager: bool = False) -> Desktop:
    """The desktop `--display SPEC` names (host | virtual | :N | auto), started and ready.

    ValueError for a malformed spec; DesktopError when the display cannot be had.
    """
    return get_backend().open_desktop(spec, size, window_manager)


def virtual_desktop(size: Size | None = None, window_manager: bool = False) -> VirtualDisplay:
    """A private virtual desktop, not yet started (`start()` or `with`)."""
    return get_backend().virtual_desktop(size, window_manager)


def open_executor(display: str | None = None) -> Executor:
    """An executor acting on `display` through the chosen backend's input. ToolError when input cannot be had."""
    from actions.executor import Executor
    from actions.result import ToolError
    from vision.capture import Screen

    try:
        backend = get_backend()
    except DesktopError as exc:
        raise ToolError(str(exc)) from None
    return Executor(Screen(display), backend.open_input(display))


def open_listener(display: str, sink: Sink, *, motion: bool = False) -> Listener:
    """A listener (not yet started) sending every key and button event of `display` to `sink`.

    Pointer motion is sent only while a button is held (drags), or always with `motion`. Raises
    when the display cannot be listened to (RuntimeError when its server cannot report input,
    the backend's connection errors otherwise).
    """
    return get_backend().open_listener(display, sink, motion=motion)


def focused_window(display: str) -> WindowInfo | None:
    """The window with the keyboard focus on `display`; None when unknown (never raises)."""
    try:
        return get_backend().focused_window(display)
    except Exception:
        return None
