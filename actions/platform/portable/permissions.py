"""What the portable backend needs from the operating system, checked for `deskpilot doctor`.

macOS: input (pyautogui, pynput) and listening (pynput) need the Accessibility permission,
listening also Input Monitoring, and capture (mss) Screen Recording; each is granted to the
app that runs deskpilot (the terminal, or Python). Windows: the process must be DPI-aware, or
Windows scales its coordinates and captures behind its back. X: pyautogui depends on
python3-xlib, an old fork that installs into the same `Xlib` package as python-xlib and can
replace it. Each check takes the library loader, so the tests run them with doubles.
"""

from __future__ import annotations

import ctypes
from typing import Any

from actions.platform.base import Finding

_APP_SERVICES = "/System/Library/Frameworks/ApplicationServices.framework/ApplicationServices"
_CORE_GRAPHICS = "/System/Library/Frameworks/CoreGraphics.framework/CoreGraphics"
_IOKIT = "/System/Library/Frameworks/IOKit.framework/IOKit"
_LISTEN_EVENT, _GRANTED = 1, 0  # kIOHIDRequestTypeListenEvent, kIOHIDAccessTypeGranted
_PRIVACY = "System Settings > Privacy & Security > {what}: allow the app that runs deskpilot " \
           "(your terminal, or Python), then restart it"
DPI_AWARENESS = {0: "DPI-unaware", 1: "system DPI-aware", 2: "per-monitor DPI-aware"}
XLIB_MIN = (0, 33)


def macos_checks(cdll: Any = None) -> list[Finding]:
    """Accessibility, Input Monitoring and Screen Recording permissions of this process (macOS)."""
    cdll = cdll or ctypes.cdll
    checks = []
    trusted = _call(cdll, _APP_SERVICES, "AXIsProcessTrusted")
    checks.append(Finding("accessibility", bool(trusted),
                          "granted (input and listening)" if trusted else "not granted: input and listening fail",
                          "" if trusted else _PRIVACY.format(what="Accessibility")))
    listen = _call(cdll, _IOKIT, "IOHIDCheckAccess", _LISTEN_EVENT, restype=ctypes.c_int)
    if listen is not None:
        ok = listen == _GRANTED
        checks.append(Finding("input monitoring", ok, "granted (kill switch, record)" if ok else
                              "not granted: the kill switch hotkey and `deskpilot record` hear nothing",
                              "" if ok else _PRIVACY.format(what="Input Monitoring"), required=False))
    capture = _call(cdll, _CORE_GRAPHICS, "CGPreflightScreenCaptureAccess")
    if capture is not None:
        checks.append(Finding("screen recording", bool(capture), "granted (screenshots)" if capture else
                              "not granted: screenshots show only the desktop background",
                              "" if capture else _PRIVACY.format(what="Screen Recording")))
    return checks


def _call(cdll: Any, path: str, name: str, *args: Any, restype: Any = ctypes.c_bool) -> Any:
    """`name(*args)` of the library at `path`; None when the library or the function is missing."""
    try:
        function = getattr(cdll.LoadLibrary(path), name)
    except (OSError, AttributeError):
        return None
    function.restype = restype
    return function(*args)


def windows_checks(windll: Any = None) -> list[Finding]:
    """Whether this process is DPI-aware (Windows), so that pixels are pixels."""
    windll = windll or ctypes.windll  # type: ignore[attr-defined]
    value = ctypes.c_int(-1)
    try:
        result = windll.shcore.GetProcessDpiAwareness(None, ctypes.byref(value))
    except (OSError, AttributeError):  # before Windows 8.1
        aware = bool(windll.user32.IsProcessDPIAware())
        return [Finding("DPI awareness", aware, "DPI-aware" if aware else "DPI-unaware",
                        "" if aware else _DPI_FIX)]
    if result != 0:
        return [Finding("DPI awareness", False, f"GetProcessDpiAwareness failed ({result})", _DPI_FIX)]
    aware = value.value > 0
    return [Finding("DPI awareness", aware, DPI_AWARENESS.get(value.value, str(value.value)),
                    "" if aware else _DPI_FIX)]


_DPI_FIX = ("Windows scales this process's coordinates: in python.exe's Properties > Compatibility > Change high "
            "DPI settings, tick 'Override high DPI scaling behavior' (Application)")


def xlib_checks(version: tuple[int, ...] | None = None) -> list[Finding]:
    """Whether the `Xlib` package is python-xlib (not python3-xlib, which pyautogui pulls in)."""
    if version is None:
        import Xlib

        version = tuple(Xlib.__version__)
    ok = version >= XLIB_MIN
    shown = ".".join(map(str, version))
    return [Finding("python-xlib", ok, f"Xlib {shown}",
                    "" if ok else "pyautogui's python3-xlib replaced python-xlib: "
                                  "pip install --force-reinstall --no-deps 'python-xlib>=0.33'")]
