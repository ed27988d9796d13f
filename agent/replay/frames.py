"""The screenshots just before each input event: a ring of recent frames grabbed on a thread."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

FRAME_FPS = 15.0
FRAME_RING = 12


class FrameRing:
    """Grabs the screen continuously on a thread and keeps the last few frames."""

    def __init__(self, screen: Any, fps: float = FRAME_FPS, keep: int = FRAME_RING) -> None:
        self.screen = screen
        self.interval = 1.0 / fps
        self._frames: deque[Any] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deskpilot-record-frames", daemon=True)
        self.error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> FrameRing:
        """Start grabbing; returns once the first frame is there (or raises the grab's error)."""
        self._thread.start()
        if not self._first.wait(timeout):
            raise RuntimeError(f"no screenshot of the display within {timeout:.0f} s")
        if self.error is not None and not self._frames:
            raise self.error
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                frame = self.screen.grab()
            except Exception as exc:  # keep trying: the steps just lack fresh frames meanwhile
                self.error = exc
                self._first.set()
                if self._stop.wait(0.5):
                    break
                continue
            with self._lock:
                self._frames.append(frame)
            self._first.set()
            spent = time.monotonic() - began
            self._stop.wait(max(self.interval - spent, spent))  # at most half the time grabbing

    def before(self, t: float) -> Any:
        """The newest frame grabbed before monotonic time `t` (else the oldest one kept)."""
        with self._lock:
            frames = list(self._frames)
        for frame in reversed(frames):
            if frame.time <= t:
                return frame
        return frames[0] if frames else None

    def latest(self) -> Any:
        """The newest frame kept, or None."""
        with self._lock:
            return self._frames[-1] if self._frames else None

    def stop(self) -> None:
        """Stop grabbing (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

