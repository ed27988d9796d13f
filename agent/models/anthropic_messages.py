"""Anthropic's wire format: history turns as Messages API blocks, tools as tool definitions.

The request places the four cache breakpoints on the system prompt (which caches the tools too)
and on the three most recent user turns, so each turn reads the previous turn's prefix from the
cache. Old screenshots are pruned in batches: the oldest images are replaced by a short text only
when more than `keep_images + prune_batch` images are present, so the cached prefix changes
rarely (benchmarks/tokens.py measures the policy). Each turn is rendered (and its PNG encoded)
once; a request is a copy of the rendered turns, pruned and marked.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent.models.base import ContextConfig
from agent.types import AssistantTurn, ToolCall, ToolSpec, ToolTurn, Turn, UserTurn
from vision.encode import encode

if TYPE_CHECKING:
    from actions.result import ToolResult
    from agent.models.anthropic import ToolVersion
    from vision.capture import Frame

PRUNED_IMAGE = "[an older screenshot was removed to save context]"
BUILTIN_TOOLS = {"bash": {"type": "bash_20250124", "name": "bash"},
                 "editor": {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}}


def render_tool(tool: ToolSpec, version: ToolVersion) -> dict[str, Any]:
    """A tool definition: the computer, bash and editor as Anthropic's built-in tools, others as functions."""
    if tool.kind == "computer" and tool.display is not None:
        if version.toolset:
            return {"type": version.computer_type}
        params: dict[str, Any] = {"type": version.computer_type, "name": tool.name,
                                  "display_width_px": tool.display.width, "display_height_px": tool.display.height}
        if version.zoom:
            params["enable_zoom"] = True
        return params
    if tool.kind in BUILTIN_TOOLS:
        return {**BUILTIN_TOOLS[tool.kind], **tool.options}
    return {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}


def parse_content(content: list[dict[str, Any]]) -> tuple[str, list[ToolCall]]:
    """(text, tool calls) of response blocks; the toolset form's per-action blocks become `computer` calls."""
    calls = []
    for block in content:
        if block.get("type") != "tool_use":
            continue
        data = block.get("input") if isinstance(block.get("input"), dict) else {}
        if block.get("toolset_name") == "computer":
            calls.append(ToolCall(block["id"], "computer", {"action": block["name"], **data}))
        else:
            calls.append(ToolCall(block["id"], block["name"], dict(data)))
    text = "\n".join(b.get("text", "") for b in content if b.get("type") == "text").strip()
    return text, calls


def image_block(frame: Frame) -> dict[str, Any]:
    """An image block (PNG) of a frame, as it is."""
    image = encode(frame.pixels, "png")
    return {"type": "image", "source": {"type": "base64", "media_type": image.media_type, "data": image.base64()}}


def tool_result_block(call: ToolCall, result: ToolResult) -> dict[str, Any]:
    """The API block of one tool result: text, error flag and image, as the model sees them."""
    content: list[dict[str, Any]] = []
    text = "\n".join(part for part in (result.system, result.output, result.error) if part)
    if text:
        content.append({"type": "text", "text": text})
    if result.image is not None:
        content.append(image_block(result.image))
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call.id, "content": content}
    if result.error:
        block["is_error"] = True
    return block


def render_turn(turn: Turn) -> dict[str, Any]:
    """One history turn as a message."""
    if isinstance(turn, UserTurn):
        return {"role": "user", "content": [{"type": "text", "text": part} if isinstance(part, str)
                                            else image_block(part) for part in turn.parts]}
    if isinstance(turn, AssistantTurn):
        return {"role": "assistant", "content": _assistant_blocks(turn)}
    if isinstance(turn, ToolTurn):
        return {"role": "user", "content": [tool_result_block(call, result) for call, result in turn.results]}
    raise TypeError(f"not a history turn: {turn!r}")


def _assistant_blocks(turn: AssistantTurn) -> list[dict[str, Any]]:
    """The reply's own blocks when it came as Anthropic blocks (thinking included), else text and tool_use."""
    reply = turn.reply
    if reply.raw and all(isinstance(b, dict) and "type" in b for b in reply.raw):
        return reply.raw
    blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    return blocks + [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.input} for c in reply.tool_calls]


class History:
    """Renders a run's history into requests: each turn once, then pruned and marked per request."""

    def __init__(self, config: ContextConfig | None = None) -> None:
        self.config = config or ContextConfig()
        self._rendered: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()

    def system(self, text: str) -> list[dict[str, Any]]:
        """The system prompt; its breakpoint caches the tool definitions and the prompt."""
        block: dict[str, Any] = {"type": "text", "text": text}
        if self.config.cache:
            block["cache_control"] = {"type": "ephemeral"}
        return [block]

    def messages(self, history: Sequence[Turn]) -> list[dict[str, Any]]:
        """The messages to send: old images pruned in batches, cache breakpoints on recent user turns."""
        rendered = []
        for turn in history:
            message = self._rendered.get(turn)
            if message is None:
                message = self._rendered[turn] = render_turn(turn)
            rendered.append(message)
        messages = copy.deepcopy(rendered)
        _prune_images(messages, self.config.keep_images, self.config.prune_batch)
        if self.config.cache:
            for message in [m for m in messages if m["role"] == "user"][-3:]:
                if message["content"]:
                    message["content"][-1]["cache_control"] = {"type": "ephemeral"}
        return messages


def _image_slots(messages: list[dict[str, Any]]) -> list[tuple[list[dict[str, Any]], int]]:
    """(containing list, index) of every image block, oldest first, also inside tool results."""
    slots = []
    for message in messages:
        if not isinstance(message["content"], list):
            continue
        for block in message["content"]:
            inner = block.get("content") if block.get("type") == "tool_result" else None
            if isinstance(inner, list):
                slots += [(inner, i) for i, b in enumerate(inner) if b.get("type") == "image"]
        slots += [(message["content"], i) for i, b in enumerate(message["content"]) if b.get("type") == "image"]
    return slots


def _prune_images(messages: list[dict[str, Any]], keep: int, batch: int) -> None:
    slots = _image_slots(messages)
    excess = len(slots) - keep
    if excess <= 0 or batch <= 0:
        return
    remove = (excess // batch) * batch if batch > 1 else excess
    for container, index in slots[:remove]:
        container[index] = {"type": "text", "text": PRUNED_IMAGE}
