"""The app's sandbox: a private virtual desktop kept between jobs, so a job's result stays visible."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from agent.errors import EnvironmentProblem


class Sandbox:
    """A virtual desktop started by the first job that targets it and kept until `stop()`.

    A job asking for another size gets a new one; `on_replace(display)` is called before the old
    X server stops (the live view lets go of it first). Thread-safe: jobs open it from their threads.
    """

    def __init__(self, on_replace: Callable[[str], None] = lambda _display: None) -> None:
        self.on_replace = on_replace
        self._desktop: Any = None
        self._lock = threading.Lock()

    @property
    def display(self) -> str | None:
        """The sandbox's display while its server runs, else None."""
        desktop = self._desktop
        return desktop.display if _alive(desktop) else None

    def open(self, size: Any = None) -> Any:
        """The running sandbox of `size` (default 1280x800), started or restarted as needed."""
        from actions.platform import DEFAULT_SIZE, DesktopError, virtual_desktop

        size = size or DEFAULT_SIZE
        with self._lock:
            old = self._desktop
            if _alive(old) and old.requested_size == size:
                return old
            try:
                if old is not None:
                    self.on_replace(old.display)
                    old.stop()
                    self._desktop = None
                self._desktop = virtual_desktop(size).start()
            except DesktopError as exc:
                raise EnvironmentProblem(str(exc)) from None
            return self._desktop

    def stop(self) -> None:
        """Stop the sandbox's X server, if it runs (the live view lets go of it first)."""
        with self._lock:
            if self._desktop is not None:
                if self._desktop.display:
                    self.on_replace(self._desktop.display)
                self._desktop.stop()
                self._desktop = None


def _alive(desktop: Any) -> bool:
    return desktop is not None and desktop.server is not None and desktop.server.poll() is None
