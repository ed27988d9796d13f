"""Platform backends behind one factory: desktops, input on them, listening to them, their windows.

Agent code reaches the platform only through these functions. A backend is chosen by name
(`backend=`, else `$DESKPILOT_BACKEND`, else `default_backend()`) from a table of backends; a
backend module is imported here, when it is chosen, and nowhere else. `register_backend` adds
one (a test double, say) to the table.

A backend may act on another backend's desktops: it says so with `desktops_from()` (the portable
backend on X acts on X displays, which the x11 backend opens); desktops and the focused
window then come from that backend.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from functools import cache
from typing import TYPE_CHECKING, Any

from actions.platform.base import DEFAULT_SIZE, DesktopError

if TYPE_CHECKING:
    from actions.executor import Executor
    from actions.platform.base import Backend, Desktop, Finding, Listener, Sink, VirtualDisplay, WindowInfo
    from vision.geometry import Size

__all__ = ["DEFAULT_SIZE", "DesktopError", "backend_checks", "backend_name", "default_backend", "focused_window",
           "get_backend", "known_backends", "open_desktop", "open_executor", "open_listener", "register_backend",
           "virtual_desktop"]

_BACKENDS: dict[str, Any] = {  # name -> module path, or the backend itself
    "x11": "actions.platform.x11",
    "portable": "actions.platform.portable",
}


def register_backend(name: str, backend: Any) -> None:
    """Make `backend` choosable as `name`: a module path, or a module or object with `Backend`'s functions."""
    _BACKENDS[name] = backend


def known_backends() -> list[str]:
    """The names backends can be chosen by."""
    return sorted(_BACKENDS)


def default_backend() -> str:
    """"x11" where an X server is reachable (or Xvfb can start one), else "portable" (macOS, Windows)."""
    if sys.platform in ("darwin", "win32", "cygwin"):
        return "portable"
    return "x11" if _x_reachable(os.environ.get("DISPLAY") or "") or shutil.which("Xvfb") else "portable"


@cache
def _x_reachable(display: str) -> bool:
    if not display:
        return False
    try:
        from Xlib import display as xdisplay

        xdisplay.Display(display).close()
    except Exception:
        return False
    return True


def backend_name(name: str | None = None) -> str:
    """The backend a command uses: `name` (--backend), else $DESKPILOT_BACKEND, else `default_backend()`."""
    return name or os.environ.get("DESKPILOT_BACKEND") or default_backend()


def get_backend(name: str | None = None) -> Backend:
    """The backend `backend_name(name)` names, imported now. DesktopError if unknown."""
    name = backend_name(name)
    try:
        backend = _BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(_BACKENDS))
        raise DesktopError(f"unknown platform backend {name!r} (--backend, DESKPILOT_BACKEND); known: {known}") \
            from None
    if isinstance(backend, str):
        backend = importlib.import_module(backend)
    return backend


def _desktops_of(name: str | None) -> Backend:
    """The backend whose desktops the backend `name` acts on (itself, unless it says otherwise)."""
    backend = get_backend(name)
    other = getattr(backend, "desktops_from", lambda: None)()
    return get_backend(other) if other else backend


def open_desktop(spec: str = "auto", size: Size | None = None, window_manager: bool = False,
                 backend: str | None = None) -> Desktop:
    """The desktop `--display SPEC` names (host | virtual | :N | auto), started and ready.

    ValueError for a malformed spec; DesktopError when the display cannot be had.
    """
    return _desktops_of(backend).open_desktop(spec, size, window_manager)


def virtual_desktop(size: Size | None = None, window_manager: bool = False,
                    backend: str | None = None) -> VirtualDisplay:
    """A private virtual desktop, not yet started (`start()` or `with`)."""
    return _desktops_of(backend).virtual_desktop(size, window_manager)


def open_executor(display: str | None = None, backend: str | None = None) -> Executor:
    """An executor acting on `display` through the chosen backend's input. ToolError when input cannot be had."""
    from actions.executor import Executor
    from actions.result import ToolError
    from vision.capture import Screen

    try:
        chosen = get_backend(backend)
    except DesktopError as exc:
        raise ToolError(str(exc)) from None
    return Executor(Screen(display or None), chosen.open_input(display))


def open_listener(display: str, sink: Sink, *, motion: bool = False, backend: str | None = None) -> Listener:
    """A listener (not yet started) sending every key and button event of `display` to `sink`.

    Pointer motion is sent only while a button is held (drags), or always with `motion`. Raises
    when the display cannot be listened to (RuntimeError when its server cannot report input,
    the backend's connection errors otherwise).
    """
    return get_backend(backend).open_listener(display, sink, motion=motion)


def focused_window(display: str, backend: str | None = None) -> WindowInfo | None:
    """The window with the keyboard focus on `display`; None when unknown (never raises)."""
    try:
        return _desktops_of(backend).focused_window(display)
    except Exception:
        return None


def backend_checks(display: str | None, backend: str | None = None) -> list[Finding]:
    """What the backend checks about its environment for `deskpilot doctor` (none, if it checks nothing)."""
    checks = getattr(get_backend(backend), "checks", None)
    return list(checks(display)) if checks is not None else []
