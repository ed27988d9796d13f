"""OpenAI chat-completions wire format: the neutral history as messages, tools as functions.

Used by the `chat` family (and by the planner side of `--grounder` when the planner is a chat
model). Images travel as PNG data URLs, exactly at the size the loop made them. Tool messages
carry text only (most OpenAI-compatible servers refuse images there), so the screenshot that
answers a reply follows its tool messages as a user message. Older screenshots are replaced by a
short text in batches (ContextConfig: keep the latest `keep_images`, prune `prune_batch` at a
time), so a server's prefix cache sees the same prefix for several steps.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent.models.openai_client import data_url, origin_id
from agent.types import AssistantTurn, ToolCall, ToolSpec, ToolTurn, Turn, UserTurn

if TYPE_CHECKING:
    from actions.result import ToolResult
    from agent.models.base import ContextConfig

PRUNED_IMAGE = "[an older screenshot was removed to save context]"
SCREEN_AFTER = "The screen now:"
ACTION_FIELDS: dict[str, dict[str, Any]] = {
    "coordinate": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2,
                   "description": "[x, y] in pixels of the screenshot image"},
    "start_coordinate": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2,
                         "description": "left_click_drag: where the drag starts, [x, y]"},
    "text": {"type": "string", "description": "type: the text; key and hold_key: xdotool key names such as "
                                              "ctrl+s or Return; clicks and scroll: modifier keys held"},
    "scroll_direction": {"type": "string", "enum": ["up", "down", "left", "right"]},
    "scroll_amount": {"type": "integer", "minimum": 1, "maximum": 50, "description": "wheel clicks"},
    "duration": {"type": "number", "minimum": 0, "maximum": 100, "description": "seconds (wait, hold_key)"},
    "repeat": {"type": "integer", "minimum": 1, "maximum": 100, "description": "key: how many times"},
    "region": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4,
               "description": "zoom: [x0, y0, x1, y1] of the screenshot, returned at full resolution"},
}


def computer_function(tool: ToolSpec) -> dict[str, Any]:
    """The computer tool as a function whose parameters are the canonical vocabulary (DESIGN.md, "Actions")."""
    actions = tool.parameters.get("properties", {}).get("action", {}).get("enum") or []
    size = f"{tool.display.width}x{tool.display.height}" if tool.display else "the screenshot's"
    fields = {k: v for k, v in ACTION_FIELDS.items() if k != "region" or "zoom" in actions}
    description = (f"Use the mouse and keyboard on a {size} screen and take screenshots. Coordinates are pixels of "
                   "the screenshot image, (0, 0) at its top left. One action per call.")
    return {"type": "function", "function": {
        "name": tool.name, "description": description,
        "parameters": {"type": "object", "required": ["action"],
                       "properties": {"action": {"type": "string", "enum": list(actions)}, **fields}}}}


def render_tool(tool: ToolSpec) -> dict[str, Any]:
    """A tool as a chat-completions function: the computer with the canonical vocabulary, others as declared."""
    if tool.kind == "computer" and tool.display is not None:
        return computer_function(tool)
    return {"type": "function", "function": {"name": tool.name, "description": tool.description,
                                             "parameters": tool.parameters}}


def result_text(result: ToolResult) -> str:
    """What a tool result says in words: its notes, output and error (or "ok")."""
    parts = [part for part in (result.system, result.output) if part]
    if result.error:
        parts.append(f"error: {result.error}")
    return "\n".join(parts) or "ok"


def image_part(frame: Any) -> dict[str, Any]:
    """A user message part with the frame as a PNG data URL."""
    return {"type": "image_url", "image_url": {"url": data_url(frame)}}


def user_message(turn: UserTurn) -> dict[str, Any]:
    """A user turn: its texts and images in order."""
    return {"role": "user", "content": [{"type": "text", "text": part} if isinstance(part, str) else image_part(part)
                                        for part in turn.parts]}


def assistant_message(turn: AssistantTurn) -> dict[str, Any]:
    """The reply as the server sent it (its message), else rebuilt from its text and calls."""
    reply = turn.reply
    if len(reply.raw) == 1 and reply.raw[0].get("role") == "assistant":
        message = {k: v for k, v in reply.raw[0].items() if k in ("role", "content", "tool_calls")}
        if not message.get("tool_calls"):
            message.pop("tool_calls", None)
        return message
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": json.dumps(c.input, ensure_ascii=False)}}
                                 for c in reply.tool_calls]
    return message


def tool_messages(turn: ToolTurn) -> list[dict[str, Any]]:
    """One tool message per call the model made (canonical calls it became are joined), then the images."""
    texts: dict[str, list[str]] = {}
    images = []
    for call, result in turn.results:
        texts.setdefault(origin_id(call.id), []).append(result_text(result))
        if result.image is not None:
            images.append(result.image)
    messages: list[dict[str, Any]] = [{"role": "tool", "tool_call_id": call_id, "content": "\n".join(parts)}
                                      for call_id, parts in texts.items()]
    if images:
        messages.append({"role": "user", "content": [{"type": "text", "text": SCREEN_AFTER},
                                                     *[image_part(image) for image in images]]})
    return messages


def render_messages(system: str, history: Sequence[Turn]) -> list[dict[str, Any]]:
    """The system prompt and every turn, as chat-completions messages."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for turn in history:
        if isinstance(turn, UserTurn):
            messages.append(user_message(turn))
        elif isinstance(turn, AssistantTurn):
            messages.append(assistant_message(turn))
        elif isinstance(turn, ToolTurn):
            messages += tool_messages(turn)
    return messages


def prune_images(messages: list[dict[str, Any]], context: ContextConfig) -> list[dict[str, Any]]:
    """The messages with all but the latest images replaced by a note, removed `prune_batch` at a time."""
    slots = [(m, i) for m in messages if isinstance(m.get("content"), list)
             for i, part in enumerate(m["content"]) if part.get("type") == "image_url"]
    excess = len(slots) - context.keep_images
    if excess <= 0:
        return messages
    batch = max(1, context.prune_batch)
    remove = (excess // batch) * batch if batch > 1 else excess
    copies: dict[int, dict[str, Any]] = {}
    for message, index in slots[:remove]:
        copy = copies.setdefault(id(message), {**message, "content": list(message["content"])})
        copy["content"][index] = {"type": "text", "text": PRUNED_IMAGE}
    return [copies.get(id(m), m) for m in messages]


def parse_arguments(call_id: str, name: str, arguments: Any) -> ToolCall:
    """A function call's JSON arguments as a ToolCall; unreadable JSON becomes a call that is an error result."""
    if isinstance(arguments, dict):
        return ToolCall(call_id, name, arguments)
    try:
        data = json.loads(arguments or "{}")
    except (TypeError, ValueError) as exc:
        return ToolCall(call_id, name, {}, raw=arguments, error=f"the arguments of {name} are not valid JSON ({exc})")
    if not isinstance(data, dict):
        return ToolCall(call_id, name, {}, raw=arguments, error=f"the arguments of {name} must be a JSON object")
    return ToolCall(call_id, name, data)
