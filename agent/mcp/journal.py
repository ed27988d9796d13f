"""The recording of an MCP server session: one step line per call, in order, each complete before the next acts.

A computer action's line (its frame, anchor and step) is written on a thread of its own while
the answer travels to the client (`defer`); every other write, and every next call, first waits
for it (`flush`), so the recording keeps DESIGN.md's rule that a step is logged before the next
step begins. Other calls are logged with `log_call`: `{"tool": NAME, ...arguments}` as the action,
their result as `output` (or `error`), and the frame they looked at.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.mcp.desk import Answer
    from agent.recording.writer import RecordingWriter
    from agent.stepping import Stepper
    from vision.capture import Frame


class Journal:
    """Writes the session's steps through its Stepper and RecordingWriter, in call order."""

    def __init__(self, recorder: RecordingWriter, stepper: Stepper) -> None:
        self.recorder, self.stepper = recorder, stepper
        self._pending: threading.Thread | None = None

    def defer(self, log: Callable[[], Any]) -> None:
        """Run `log` (a step's write) on its own thread; `flush` waits for it."""
        self.flush()

        def write() -> None:
            try:
                log()
            except Exception as exc:  # the action happened; only its line is missing
                print(f"deskpilot mcp: a step could not be recorded: {type(exc).__name__}: {exc}", file=sys.stderr)

        self._pending = threading.Thread(target=write, name="mcp-record")
        self._pending.start()

    def flush(self) -> None:
        """Wait until the last deferred step is written."""
        pending = self._pending
        if pending is not None:
            pending.join()

    def log_call(self, tool: str, args: dict[str, Any], answer: Answer, *, frame: Frame | None = None,
                 action: dict[str, Any] | None = None, **extra: Any) -> dict:
        """Append a call that is not a performed computer action: its arguments, result and frame."""
        self.flush()
        return self.recorder.add_step(
            source="model", action=action or {"tool": tool, **args}, tool=tool, ok=not answer.error,
            error=answer.text if answer.error else None, output=None if answer.error else answer.text[:2000],
            frame=self.stepper.save_frame(frame) if frame is not None else None, **extra)


__all__ = ["Journal"]
