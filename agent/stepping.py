"""Performing and recording one step, and ending a run: the part every kind of run shares.

A step is: act, settle (unless the action left the screen alone), save the frame seen before it
and an anchor around its target, append the step line, tell the listener. The model loop, the
task runner, the replayer and `deskpilot act` all step through a Stepper, and all end through
`finish_run`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent.errors import ExitCode, RecordingFailed, RunEnded
from agent.types import RunResult, Usage

if TYPE_CHECKING:
    from actions.result import ToolResult
    from agent.recording.writer import RecordingWriter
    from vision.capture import Frame
    from vision.settle import SettleConfig

OnStep = Callable[[dict, Usage], None]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


class Stepper:
    """Steps of one run on one screen, written to one recording.

    `frame` is the screen as last seen: the frame before the next step.
    """

    def __init__(self, recorder: RecordingWriter, grab: Callable[[], Frame], settle: SettleConfig, *,
                 source: str, stop: threading.Event | None = None, on_step: OnStep | None = None,
                 usage: Callable[[], Usage] = Usage) -> None:
        self.recorder, self.grab, self.settle_config, self.source = recorder, grab, settle, source
        self.stop = stop or threading.Event()
        self.on_step, self.usage = on_step, usage
        self.frame: Frame | None = None
        self._saved: tuple[Frame, str] | None = None  # the last frame saved, and its file

    def look(self) -> Frame:
        """The frame before the next step (grabbed now when none was kept)."""
        if self.frame is None:
            self.frame = self.grab()
        return self.frame

    def settle(self, before: Frame | None = None) -> Any:
        """Wait until the screen is still; keep its frame. Returns the Settled outcome."""
        from vision.settle import wait_until_settled

        settled = wait_until_settled(self.grab, self.settle_config, before)
        self.frame = settled.frame
        return settled

    def perform(self, act: Callable[[], ToolResult], *, settle: bool = True) -> tuple[ToolResult, dict]:
        """Run `act`, then settle when it succeeded and may have changed the screen; (result, timing)."""
        before = self.look()
        started = time.monotonic()
        result = act()
        timing: dict[str, Any] = {"exec_ms": _ms(time.monotonic() - started), "settle_ms": None, "capture_ms": None}
        if result.ok and settle and not self.stop.is_set():
            settled = self.settle(before)
            timing["settle_ms"], timing["capture_ms"] = _ms(settled.elapsed_s), _ms(settled.capture_s)
        return result, timing

    def log(self, before: Frame, *, action: dict | None, result: ToolResult, timing: dict,
            point: tuple[int, int] | list[int] | None = None, frame: str | None = None, **fields: Any) -> dict:
        """Append the step (frame, anchor around `point`, outcome) to the recording and tell the listener.

        When the recording cannot be written (RecordingFailed: a full disk), the step's line is still
        written when it can (without its pictures), then RecordingFailed ends the run before the next
        action.
        """
        failed: RecordingFailed | None = None
        anchor = None
        try:
            if frame is None:
                frame = self.save_frame(before)
            anchor = self.recorder.save_anchor(before, tuple(point), self.recorder.steps) if point else None
        except RecordingFailed as exc:
            failed, frame, anchor = exc, None, None
        line = self.recorder.add_step(source=self.source, action=action, frame=frame, anchor=anchor, ok=result.ok,
                                      error=result.error, timing=timing, **fields)
        if self.on_step:
            self.on_step(line, self.usage())
        if failed is not None:
            raise failed
        return line

    def save_frame(self, frame: Frame) -> str:
        """Save `frame` once, however many steps start from it; its file in the recording."""
        if self._saved is None or self._saved[0] is not frame:
            self._saved = (frame, self.recorder.save_frame(frame))
        return self._saved[1]


def ending(exc: BaseException) -> tuple[str, int, str]:
    """(status, exit code, message) of a run ended by `exc`: a RunEnded, or Ctrl-C."""
    if isinstance(exc, RunEnded):
        return exc.status, int(exc.exit_code), str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "stopped", int(ExitCode.STOPPED), str(exc) or "interrupted by the user"
    raise exc


def final_frame(grab: Callable[[], Frame], fallback: Frame | None = None) -> Frame | None:
    """The screen at the end; `fallback` when the display is already gone."""
    try:
        return grab()
    except Exception:  # the display may be gone; the recording still gets its status
        return fallback


def finish_run(recorder: RecordingWriter, status: str, exit_code: int, message: str, *, steps: int, usage: Usage,
               final: Frame | None = None, checks: list[dict] | None = None, **meta: Any) -> RunResult:
    """Write the recording's result and final status (once) and say how the run ended."""
    if not recorder.finished:
        with contextlib.suppress(RecordingFailed):  # a full disk: finish still tries the final status
            recorder.set_meta(result=message, **meta)
        recorder.finish(status, error=None if status == "succeeded" else message, checks=checks, final_frame=final)
    return RunResult(status, int(exit_code), message, steps, usage)
