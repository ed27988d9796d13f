"""The X11 backend: XTest input, Xvfb or existing displays, one RECORD listener, the focused window.

Only `actions.platform` imports this package; its modules are imported when a function needs them.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from actions.platform.base import DEFAULT_SIZE

if TYPE_CHECKING:
    from actions.platform.base import Sink, WindowInfo
    from actions.platform.x11.desktop import Desktop, VirtualDesktop
    from actions.platform.x11.input import X11Input
    from actions.platform.x11.listener import XRecordListener
    from vision.geometry import Size


def open_desktop(spec: str, size: Size | None, window_manager: bool) -> Desktop:
    """The display `spec` names (host | virtual | :N | auto), started and ready."""
    from actions.platform.x11.desktop import open_desktop as open_x11_desktop

    return open_x11_desktop(spec, size, window_manager)


def virtual_desktop(size: Size | None, window_manager: bool) -> VirtualDesktop:
    """A private Xvfb desktop, not yet started."""
    from actions.platform.x11.desktop import VirtualDesktop

    return VirtualDesktop(size or DEFAULT_SIZE, window_manager=window_manager)


def open_input(display: str | None) -> X11Input:
    """XTest input on `display`; ToolError when there is none."""
    from actions.result import ToolError

    if not sys.platform.startswith("linux"):
        raise ToolError(f"input on {sys.platform} is not supported yet; deskpilot drives X11 displays")
    from actions.platform.x11.input import X11Input

    return X11Input(display)


def open_listener(display: str, sink: Sink, motion: bool = False) -> XRecordListener:
    """A RECORD listener on `display`, not yet started."""
    from actions.platform.x11.listener import XRecordListener

    return XRecordListener(display, sink, motion=motion)


def focused_window(display: str) -> WindowInfo | None:
    """The window with the keyboard focus on `display`, or None."""
    from actions.platform.x11.windows import focused_window as x11_focused_window

    return x11_focused_window(display)
