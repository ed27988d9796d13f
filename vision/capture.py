"""Screen capture with mss: frames in physical pixels, with the screen's size and scale."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vision.geometry import CoordinateError, Size

if TYPE_CHECKING:
    import numpy as np


class CaptureError(RuntimeError):
    """The display could not be captured (not reachable, or the grab failed)."""


@dataclass(frozen=True, eq=False)
class Frame:
    """One captured image: BGR pixels (H x W x 3, uint8) of a screen or of a region of it.

    `origin` is the top-left screen pixel of the region; `scale` is physical pixels per
    logical point of the screen it came from.
    """

    pixels: np.ndarray
    origin: tuple[int, int] = (0, 0)
    scale: float = 1.0
    time: float = field(default=0.0, compare=False)

    @property
    def size(self) -> Size:
        """Width and height in pixels."""
        return Size(self.pixels.shape[1], self.pixels.shape[0])

    def crop(self, box: tuple[int, int, int, int]) -> Frame:
        """The part (x0, y0, x1, y1) of this frame (frame coordinates, x1/y1 exclusive)."""
        x0, y0, x1, y1 = box
        h, w = self.pixels.shape[:2]
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise CoordinateError(f"crop box {list(box)} is outside the {w}x{h} frame")
        ox, oy = self.origin
        return Frame(self.pixels[y0:y1, x0:x1].copy(), (ox + x0, oy + y0), self.scale, self.time)

    def same_as(self, other: Frame) -> bool:
        """True when both frames hold identical pixels."""
        import numpy as np

        return self.pixels.shape == other.pixels.shape and np.array_equal(self.pixels, other.pixels)


class Screen:
    """The capture front for one display: validates regions and keeps one mss handle per thread.

    `display` is an X display name such as ":7" (None: $DISPLAY, or the main screen elsewhere).
    """

    def __init__(self, display: str | None = None) -> None:
        self.display = display
        self._local = threading.local()
        self._handles: list[Any] = []
        self._lock = threading.Lock()
        self._size: Size | None = None
        self._scale: float | None = None

    def _mss(self) -> Any:
        handle = getattr(self._local, "mss", None)
        if handle is None:
            import mss

            kwargs = {"display": self.display} if self.display else {}
            try:
                handle = mss.MSS(**kwargs)
            except Exception as exc:  # mss raises ScreenShotError and ctypes errors
                raise CaptureError(f"cannot open display {self.display or '(default)'}: {exc}") from exc
            self._local.mss = handle
            with self._lock:
                self._handles.append(handle)
        return handle

    def _monitor(self) -> dict[str, int]:
        # monitors[0] is the bounding box of all monitors: the X root window on Linux.
        return dict(self._mss().monitors[0])

    @property
    def size(self) -> Size:
        """The screen's size in physical pixels."""
        if self._size is None:
            self.grab(region=None)
        assert self._size is not None
        return self._size

    @property
    def scale(self) -> float:
        """Physical pixels per logical point (1.0 on a plain X server, 2.0 on Retina)."""
        if self._scale is None:
            self.grab(region=None)
        assert self._scale is not None
        return self._scale

    @property
    def logical_size(self) -> Size:
        """The screen's size in logical points."""
        return Size(round(self.size.width / self.scale), round(self.size.height / self.scale))

    def grab(self, region: tuple[int, int, int, int] | None = None) -> Frame:
        """Capture the whole screen, or the region (x0, y0, x1, y1) in screen pixels."""
        import time

        import cv2
        import numpy as np

        monitor = self._monitor()
        if region is not None:
            scale = self._scale or 1.0
            x0, y0, x1, y1 = region
            full = Size(round(monitor["width"] * scale), round(monitor["height"] * scale))
            if not (0 <= x0 < x1 <= full.width and 0 <= y0 < y1 <= full.height):
                raise CoordinateError(f"region {list(region)} is outside the {full} screen")
            monitor = {
                "left": monitor["left"] + round(x0 / scale),
                "top": monitor["top"] + round(y0 / scale),
                "width": max(1, round((x1 - x0) / scale)),
                "height": max(1, round((y1 - y0) / scale)),
            }
        try:
            shot = self._mss().grab(monitor)
        except CaptureError:
            raise
        except Exception as exc:
            raise CaptureError(f"capture of display {self.display or '(default)'} failed: {exc}") from exc
        bgra = np.frombuffer(shot.raw, dtype=np.uint8).reshape(shot.height, shot.width, 4)
        pixels = cv2.cvtColor(bgra, cv2.COLOR_BGRA2BGR)
        scale = shot.width / monitor["width"]
        if region is None:
            self._size, self._scale = Size(shot.width, shot.height), scale
            origin = (0, 0)
        else:
            origin = (region[0], region[1])
        return Frame(pixels, origin, scale, time.monotonic())

    def close(self) -> None:
        """Release every mss handle this screen opened."""
        with self._lock:
            handles, self._handles = self._handles, []
        for handle in handles:
            with contextlib.suppress(Exception):  # the X server may already be gone; closing must not fail
                handle.close()
        self._local = threading.local()

    def __enter__(self) -> Screen:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
