"""The live view's capture thread: the newest frame of one display, ready for the window.

It makes no Tk call (the window picks the newest frame up on its own thread), so capture and
encoding never stall the window, and the app's controller can own it without Tk.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any


class ScreenFeed:
    """The newest frame of one display, scaled to fit `box` and PNG-encoded (base64), `fps` times a second.

    `watch(display)` chooses the display (None: nothing); `release(display)` lets go of it and
    returns only once no capture of it is running (call it before stopping that X server);
    `take()` returns (png_base64, scale, (screen_w, screen_h), display) or None when nothing new.
    `box` (the view's size) and `active` (False while the window is hidden) are set by the Tk thread.
    """

    def __init__(self, fps: float = 4.0) -> None:
        self.interval = 1.0 / fps
        self.box: tuple[int, int] = (640, 400)
        self.active = True
        self.error: str | None = None
        self._lock = threading.Lock()
        self._display: str | None = None
        self._screen: Any = None
        self._latest: tuple | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="live-view")

    def start(self) -> ScreenFeed:
        """Start the capture thread."""
        self._thread.start()
        return self

    @property
    def display(self) -> str | None:
        """The display watched, or None."""
        return self._display

    def watch(self, display: str | None) -> None:
        """Show `display` from now on (None: nothing)."""
        with self._lock:
            if display != self._display:
                self._drop()
                self._display, self._latest, self.error = display, None, None

    def release(self, display: str) -> None:
        """Let go of `display`; returns once no capture of it is running (before its X server stops)."""
        with self._lock:
            if self._display == display:
                self._drop()
                self._display, self._latest = None, None

    def take(self) -> tuple | None:
        """The newest frame not yet taken: (png_base64, scale, (screen_w, screen_h), display), or None."""
        with self._lock:
            latest, self._latest = self._latest, None
            return latest

    def close(self) -> None:
        """Stop the thread and let go of the display."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        with self._lock:
            self._drop()
            self._display = None

    def _drop(self) -> None:
        if self._screen is not None:
            with contextlib.suppress(Exception):
                self._screen.close()
            self._screen = None

    def _run(self) -> None:
        from vision.capture import Screen
        from vision.encode import encode, resize
        from vision.geometry import Size

        wait = self.interval
        while not self._stopping.wait(wait):
            wait = self.interval
            if not self.active:
                continue
            with self._lock:
                display = self._display
                if display is None:
                    continue
                try:
                    if self._screen is None:
                        self._screen = Screen(display)
                    frame = self._screen.grab()
                except Exception as exc:  # the display went away or cannot be read: try again later
                    self.error = f"cannot show {display}: {exc}"
                    self._drop()
                    wait = 1.0
                    continue
            try:
                h, w = frame.pixels.shape[:2]
                bw, bh = max(self.box[0], 16), max(self.box[1], 16)
                scale = min(bw / w, bh / h, 1.0)
                size = Size(max(1, int(w * scale)), max(1, int(h * scale)))
                data = encode(resize(frame.pixels, size), "png").base64()
            except Exception as exc:
                self.error = f"cannot show {display}: {exc}"
                continue
            with self._lock:
                if self._display == display:
                    self._latest, self.error = (data, scale, (w, h), display), None
