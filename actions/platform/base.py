"""What a platform backend provides: a desktop to act on, and its errors."""

from __future__ import annotations

from vision.geometry import Size

DEFAULT_SIZE = Size(1280, 800)  # of a virtual desktop, unless --size says otherwise


class DesktopError(RuntimeError):
    """An environment problem: no display, Xvfb missing, a server that failed to start."""
