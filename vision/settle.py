"""Waiting until the screen stops changing: the bounded replacement for a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from vision.capture import Frame


@dataclass(frozen=True)
class SettleConfig:
    """How settling is decided (YAML key `settle`).

    The screen counts as settled once it has not changed for `quiet_s`, but never before
    `min_s`; when nothing has changed at all, it waits `idle_s` for a late reaction. Whatever
    happens, it returns after `timeout_s`. Frames are polled every `interval_s`.
    """

    min_s: float = 0.08
    quiet_s: float = 0.06
    idle_s: float = 0.15
    timeout_s: float = 3.0
    interval_s: float = 0.015


@dataclass(frozen=True)
class Settled:
    """The outcome of a wait: the last frame, how long it took, and whether the screen settled."""

    frame: Frame
    elapsed_s: float
    settled: bool
    changed: bool
    capture_s: float = 0.0  # how long the last grab took


def wait_until_settled(
    grab: Callable[[], Frame], config: SettleConfig | None = None, before: Frame | None = None
) -> Settled:
    """Poll `grab` until the screen is still; return the last frame.

    `before` is a frame taken before the action, so a change that already happened counts.
    """
    config = config or SettleConfig()
    start = time.monotonic()
    last = grab()
    capture = time.monotonic() - start
    changed = before is not None and not last.same_as(before)
    last_change = start
    while True:
        now = time.monotonic()
        elapsed = now - start
        still_for = now - last_change
        if elapsed >= config.min_s and still_for >= config.quiet_s and (changed or elapsed >= config.idle_s):
            return Settled(last, elapsed, True, changed, capture)
        if elapsed >= config.timeout_s:
            return Settled(last, elapsed, False, changed, capture)
        time.sleep(config.interval_s)
        grabbed = time.monotonic()
        frame = grab()
        capture = time.monotonic() - grabbed
        if not frame.same_as(last):
            changed, last_change = True, time.monotonic()
        last = frame
