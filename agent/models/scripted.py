"""A scripted model: plays given replies with no network and no latency (demos, benchmarks, tests).

A script is a list of replies, each a list of blocks made with `computer(...)`, `call(...)` and
`say(...)`. The model sees screenshots at Claude's image size unless told another size.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from agent.models.base import ModelConfig
from agent.types import Reply, ToolCall, Usage
from vision.geometry import Size, fit_image_size

if TYPE_CHECKING:
    from agent.types import ToolSpec, Turn

ACTIONS = frozenset({
    "screenshot", "cursor_position", "mouse_move", "left_click", "right_click", "middle_click", "double_click",
    "triple_click", "left_click_drag", "left_mouse_down", "left_mouse_up", "scroll", "type", "key", "hold_key",
    "wait", "zoom"})
CLAUDE_MAX_LONG_EDGE, CLAUDE_MAX_PIXELS = 1568, 1_150_000
_ids = itertools.count(1)


def call(tool: str, **fields: Any) -> dict[str, Any]:
    """A tool call block for any tool, e.g. call("bash", command="ls")."""
    return {"type": "tool_use", "id": f"toolu_script_{next(_ids)}", "name": tool, "input": dict(fields)}


def computer(action: str, **fields: Any) -> dict[str, Any]:
    """A computer tool call block, e.g. computer("left_click", coordinate=[10, 20])."""
    return call("computer", action=action, **fields)


def say(text: str) -> dict[str, Any]:
    """A text block."""
    return {"type": "text", "text": text}


def claude_image_size(screen: Size) -> Size:
    """Claude's image budget (long edge <= 1568, area <= 1.15 MP), so scripts see what Claude sees."""
    return fit_image_size(screen, CLAUDE_MAX_LONG_EDGE, CLAUDE_MAX_PIXELS)


class ScriptedModel:
    """Answers each query with the next scripted reply (a list of blocks); then finishes with "Done."."""

    def __init__(self, replies: Iterable[list[dict[str, Any]]], name: str = "scripted",
                 image_size: Callable[[Size], Size] = claude_image_size,
                 computer_actions: frozenset[str] = ACTIONS) -> None:
        self.replies = list(replies)
        self.name = name
        self.computer_actions = computer_actions
        self._image_size = image_size
        self.requests: list[dict[str, Any]] = []

    def image_size(self, screen: Size) -> Size:
        """The size the scripted coordinates refer to."""
        return self._image_size(screen)

    def preflight(self) -> None:
        """A script needs nothing."""

    def query(self, system: str, history: Sequence[Turn], tools: Sequence[ToolSpec]) -> Reply:
        """The next reply; a plain "Done." once the script is over."""
        self.requests.append({"system": system, "history": list(history), "tools": list(tools)})
        blocks = self.replies.pop(0) if self.replies else [say("Done.")]
        text = "\n".join(b["text"] for b in blocks if b.get("type") == "text")
        calls = [ToolCall(b["id"], b["name"], dict(b.get("input") or {}))
                 for b in blocks if b.get("type") == "tool_use"]
        return Reply(text, calls, Usage(), 0.0, self.name, "tool_use" if calls else "end_turn", blocks)


def create(name: str, config: ModelConfig) -> ScriptedModel:
    """The registry's entry point: `scripted/NAME` plays an empty script (it finishes at once)."""
    return ScriptedModel([], name=name)
