"""The portable backend: pyautogui for the pointer, keys and screen size, pynput for text and listening.

It is built for macOS and Windows, and runs on any X display too (where the tests run it).
Capture is mss's, as for every backend (vision.capture). On X its desktops are X displays,
which the x11 backend opens (`desktops_from` says so to the factory), and one process drives one X
display with it (pyautogui keeps one connection; see libs.py). Elsewhere the desktop is the
screen itself (host.py).

Only `actions.platform` imports this package; its modules are imported when a function needs them.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actions.platform.base import Finding, Sink, WindowInfo
    from actions.platform.portable.host import HostScreen
    from actions.platform.portable.input import PortableInput
    from actions.platform.portable.listener import PynputListener
    from vision.geometry import Size


def desktops_from() -> str | None:
    """The backend whose desktops this one acts on: "x11" on X (X displays), None where it has its own."""
    from actions.platform.portable.libs import IS_X

    return "x11" if IS_X else None


def open_desktop(spec: str, size: Size | None, window_manager: bool) -> HostScreen:
    """The screen itself (outside X; on X the factory asks the x11 backend)."""
    from actions.platform.portable.host import open_host

    return open_host(spec, size)


def virtual_desktop(size: Size | None, window_manager: bool) -> HostScreen:
    """Virtual desktops need Xvfb: DesktopError outside X."""
    from actions.platform.portable.host import open_host

    return open_host("virtual", size)


def _pixels(display: str | None) -> tuple[Size, float]:
    """The screen's size in physical pixels and mss's pixels per point."""
    from actions.result import ToolError
    from vision.capture import CaptureError, Screen

    try:
        with Screen(display or None) as screen:
            return screen.size, screen.scale
    except CaptureError as exc:
        raise ToolError(str(exc)) from None


def open_input(display: str | None) -> PortableInput:
    """pyautogui and pynput input on `display` (X) or the screen; ToolError when they cannot be had."""
    from actions.platform.portable import libs
    from actions.platform.portable.input import PortableInput, PynputTypist

    target = libs.target(display)
    gui = libs.load_pyautogui(target)
    keyboard, _ = libs.load_pynput(target)
    pixels, _ = _pixels(target)
    if libs.IS_X:
        from actions.platform.portable.xtyping import XTypist

        assert target is not None
        typist = XTypist(target, lambda: libs.keyboard_controller(target))
        keymap = typist.keysyms()
    else:
        typist, keymap = PynputTypist(libs.keyboard_controller(None)), None
    return PortableInput(gui, keyboard, typist, pixels, display=target, x_keymap=keymap)


def open_listener(display: str, sink: Sink, motion: bool = False) -> PynputListener:
    """A pynput listener on `display` (X) or the screen, not yet started."""
    from actions.platform.portable import libs
    from actions.platform.portable.listener import PynputListener

    target = libs.target(display or None)
    keyboard, mouse = libs.load_pynput(target)
    size, scale = _pixels(target)
    return PynputListener(target, sink, motion, keyboard=keyboard, mouse=mouse, size=size, scale=scale,
                          x_keysyms=libs.IS_X, connect=lambda: libs.x_display(target))


def focused_window(display: str) -> WindowInfo | None:
    """Unknown outside X (on X the factory asks the x11 backend)."""
    return None


def checks(display: str | None) -> list[Finding]:
    """What this backend needs, for `deskpilot doctor`: its libraries, the pointer's space, OS permissions."""
    from actions.platform.base import Finding
    from actions.platform.portable import libs, permissions
    from actions.result import ToolError

    found: list[Finding] = []
    if sys.platform == "darwin":
        found += permissions.macos_checks()
    elif sys.platform == "win32":
        found += permissions.windows_checks()
    else:
        found += permissions.xlib_checks()
    try:
        target = libs.target(display)
        gui = libs.load_pyautogui(target)
        libs.load_pynput(target)
        pixels, _ = _pixels(target)
        width, height = gui.size()
        from actions.platform.portable.input import measure_scale

        scale = measure_scale(pixels, (width, height))
        found.append(Finding("pointer space", True, f"pyautogui {gui.__version__}: {width}x{height} points = "
                             f"{pixels} pixels (scale {scale:g})"))
    except ToolError as exc:
        found.append(Finding("pointer space", False, str(exc), "pip install 'pyautogui>=0.9.54' 'pynput>=1.7.7'; "
                             "on X, a reachable display"))
    return found
