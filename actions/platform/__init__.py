"""Platform backends behind one factory: desktops to act on, and input on them.

Agent code opens desktops and executors only through these functions; a backend module is
imported here, when it is chosen, and nowhere else.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from actions.platform.base import DEFAULT_SIZE, DesktopError

if TYPE_CHECKING:
    from actions.executor import Executor
    from vision.geometry import Size

__all__ = ["DEFAULT_SIZE", "DesktopError", "open_desktop", "open_executor", "virtual_desktop"]


def open_desktop(spec: str = "auto", size: Size | None = None, window_manager: bool = False) -> Any:
    """The desktop `--display SPEC` names (host | virtual | :N | auto), started and ready.

    ValueError for a malformed spec; DesktopError when the display cannot be had.
    """
    from actions.platform.x11.desktop import open_desktop as open_x11

    return open_x11(spec, size, window_manager)


def virtual_desktop(size: Size | None = None, window_manager: bool = False) -> Any:
    """A private virtual desktop, not yet started (`start()` or `with`)."""
    from actions.platform.x11.desktop import VirtualDesktop

    return VirtualDesktop(size or DEFAULT_SIZE, window_manager=window_manager)


def open_executor(display: str | None = None) -> Executor:
    """An executor acting on `display` (the one place the input backend is chosen)."""
    from actions.executor import Executor
    from actions.result import ToolError
    from vision.capture import Screen

    if not sys.platform.startswith("linux"):
        raise ToolError(f"input on {sys.platform} is not supported yet; deskpilot drives X11 displays")
    from actions.platform.x11.input import X11Input

    return Executor(Screen(display), X11Input(display))
