"""A scripted model: plays given replies with no network and no latency (demos, benchmarks, tests)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from agent.claude import Reply, Usage, parse_tool_calls

_ids = itertools.count(1)


def computer(action: str, **fields: Any) -> dict[str, Any]:
    """A computer tool_use block, e.g. computer("left_click", coordinate=[10, 20])."""
    return {"type": "tool_use", "id": f"toolu_script_{next(_ids)}", "name": "computer",
            "input": {"action": action, **fields}}


def say(text: str) -> dict[str, Any]:
    """A text block."""
    return {"type": "text", "text": text}


class ScriptedModel:
    """Answers each query with the next scripted reply (a list of content blocks); then finishes."""

    def __init__(self, replies: Iterable[list[dict[str, Any]]], name: str = "scripted") -> None:
        self.replies = list(replies)
        self.name = name
        self.requests: list[dict[str, Any]] = []

    def query(self, system: list[dict], messages: list[dict], tools: list[dict]) -> Reply:
        """The next reply; a plain "Done." once the script is over."""
        self.requests.append({"system": system, "messages": messages, "tools": tools})
        content = self.replies.pop(0) if self.replies else [say("Done.")]
        text = "\n".join(b["text"] for b in content if b.get("type") == "text")
        return Reply(content, text, parse_tool_calls(content), "tool_use" if len(content) > 1 else "end_turn",
                     Usage(), 0.0, self.name)
