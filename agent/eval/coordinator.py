"""The coordinator of a Ray run: one small actor (no CPU) that the driver and every attempt's task share.

It holds stop requests (the tasks poll them), how many times each attempt began (a retry after a
worker died begins it again), and the step lines the driver has not read yet. It imports nothing
heavy, so the actor's worker starts quickly.
"""

from __future__ import annotations

from typing import Any


class Coordinator:
    """The Ray run's shared state, as a Ray actor: stop requests, attempts begun, step lines."""

    def __init__(self) -> None:
        self.stopped_all: str | None = None
        self.stopped: dict[int, str] = {}
        self.begun: dict[int, int] = {}  # index -> how many times a worker began it
        self.lines: list[tuple[int, dict, Any]] = []

    def stop(self, index: int | None, reason: str) -> None:
        """Stop attempt `index` (None: every attempt)."""
        if index is None:
            self.stopped_all = self.stopped_all or reason
        else:
            self.stopped.setdefault(index, reason)

    def should_stop(self, index: int) -> str | None:
        """Why attempt `index` should stop, or None."""
        return self.stopped_all or self.stopped.get(index)

    def begin(self, index: int) -> int:
        """A worker begins attempt `index`: which try this is (1, 2, ...)."""
        self.begun[index] = self.begun.get(index, 0) + 1
        return self.begun[index]

    def step(self, index: int, line: dict, usage: Any) -> None:
        """A step line of attempt `index`, for the driver."""
        self.lines.append((index, line, usage))

    def drain(self) -> tuple[dict[int, int], list[tuple[int, dict, Any]]]:
        """Tries so far, and the step lines since the last call."""
        lines, self.lines = self.lines, []
        return dict(self.begun), lines
