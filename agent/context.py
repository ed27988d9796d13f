"""The conversation sent to the model: tool results as API blocks, cache breakpoints, image pruning.

`tool_result_block` is the one function that turns a ToolResult into an API block. The request
places the four cache breakpoints on the system prompt (which caches the tools too) and on the
three most recent user turns, so each turn reads the previous turn's prefix from the cache.
Old screenshots are pruned in batches: the oldest images are replaced by a short text only when
more than `keep_images + prune_batch` images are present, so the cached prefix changes rarely
(benchmarks/tokens.py measures the policy).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from actions.result import ToolResult
from vision.encode import encode

PRUNED_IMAGE = "[an older screenshot was removed to save context]"


@dataclass(frozen=True)
class ContextConfig:
    """How much history the model sees (YAML key `context`)."""

    keep_images: int = 3
    prune_batch: int = 8  # measured best for keep_images=3 by benchmarks/tokens.py
    cache: bool = True


def tool_result_block(call_id: str, result: ToolResult) -> dict[str, Any]:
    """The API block for one tool result: text, error flag and image (PNG) as the model sees them."""
    content: list[dict[str, Any]] = []
    text = "\n".join(part for part in (result.system, result.output, result.error) if part)
    if text:
        content.append({"type": "text", "text": text})
    if result.image is not None:
        image = encode(result.image.pixels, "png")
        content.append({"type": "image",
                        "source": {"type": "base64", "media_type": image.media_type, "data": image.base64()}})
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id, "content": content}
    if result.error:
        block["is_error"] = True
    return block


def image_block(pixels: Any) -> dict[str, Any]:
    """A user-turn image block (PNG)."""
    image = encode(pixels, "png")
    return {"type": "image", "source": {"type": "base64", "media_type": image.media_type, "data": image.base64()}}


class Conversation:
    """The message history, and the request view of it (pruned, with cache breakpoints)."""

    def __init__(self, config: ContextConfig | None = None) -> None:
        self.config = config or ContextConfig()
        self.messages: list[dict[str, Any]] = []

    def add_user(self, content: list[dict[str, Any]]) -> None:
        """Append a user turn."""
        self.messages.append({"role": "user", "content": content})

    def add_assistant(self, content: list[dict[str, Any]]) -> None:
        """Append the model's reply as it was sent."""
        self.messages.append({"role": "assistant", "content": content})

    def request(self) -> list[dict[str, Any]]:
        """The messages to send: old images pruned in batches, cache breakpoints on recent user turns."""
        messages = copy.deepcopy(self.messages)
        _prune_images(messages, self.config.keep_images, self.config.prune_batch)
        if self.config.cache:
            user_turns = [m for m in messages if m["role"] == "user"]
            for message in user_turns[-3:]:
                message["content"][-1]["cache_control"] = {"type": "ephemeral"}
        return messages


def system_blocks(text: str, cache: bool = True) -> list[dict[str, Any]]:
    """The system prompt; its breakpoint caches the tool definitions and the prompt."""
    block: dict[str, Any] = {"type": "text", "text": text}
    if cache:
        block["cache_control"] = {"type": "ephemeral"}
    return [block]


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
