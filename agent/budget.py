"""A run's budgets (steps, seconds, cost, tokens) and its stop and pause signals, checked before work."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from agent.errors import BudgetExceeded, Stopped
from agent.types import Usage, stop_reason


@dataclass
class Limits:
    """Budgets of one run (YAML key `limits`); None means unlimited."""

    max_steps: int | None = 50
    max_seconds: float | None = 600.0
    max_cost_usd: float | None = 5.0
    max_tokens: int | None = None


class Budget:
    """What a run has spent, checked against its limits; time spent paused does not count."""

    def __init__(self, limits: Limits, stop: threading.Event, pause: threading.Event | None = None) -> None:
        self.limits, self.stop, self.pause = limits, stop, pause or threading.Event()
        self.started = time.monotonic()
        self.steps = 0
        self.usage = Usage()

    def restart_clock(self) -> None:
        """Count time from now."""
        self.started = time.monotonic()

    @property
    def elapsed_s(self) -> float:
        """Seconds spent, pauses excluded."""
        return time.monotonic() - self.started

    def check(self) -> None:
        """Hold while paused; raise Stopped or BudgetExceeded before more work is done."""
        paused_at = time.monotonic()
        while self.pause.is_set() and not self.stop.wait(0.05):
            pass
        self.started += time.monotonic() - paused_at
        if self.stop.is_set():
            raise Stopped(stop_reason(self.stop))
        limits = self.limits
        if limits.max_steps is not None and self.steps >= limits.max_steps:
            raise BudgetExceeded(f"step budget of {limits.max_steps} used up")
        if limits.max_seconds is not None and self.elapsed_s >= limits.max_seconds:
            raise BudgetExceeded(f"time budget of {limits.max_seconds:g} s used up")
        if limits.max_cost_usd is not None and self.usage.cost_usd >= limits.max_cost_usd:
            raise BudgetExceeded(f"cost budget of ${limits.max_cost_usd:g} used up (${self.usage.cost_usd:.4f})")
        if limits.max_tokens is not None and self.usage.total_tokens >= limits.max_tokens:
            raise BudgetExceeded(f"token budget of {limits.max_tokens} used up")
