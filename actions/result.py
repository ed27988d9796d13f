"""The one result type of every action and tool, success and error alike."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vision.capture import Frame


@dataclass(frozen=True)
class ToolResult:
    """What an action or tool produced: text output, an error, and/or an image.

    `image` holds raw pixels (a screenshot or zoom crop at full resolution); the agent encodes
    it for the model. A result with `error` set is an error result; it never ends a run.
    """

    output: str | None = None
    error: str | None = None
    image: Frame | None = None
    system: str | None = None

    @property
    def ok(self) -> bool:
        """True unless the result is an error."""
        return self.error is None

    def with_output(self, output: str) -> ToolResult:
        """A copy with `output` replaced."""
        return replace(self, output=output)


class ToolError(Exception):
    """An error inside an action or tool; where actions are dispatched it becomes an error result."""
