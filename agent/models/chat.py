"""The `chat` family: any OpenAI-compatible model with function calling, hosted or local.

The computer is a function whose parameters are DESIGN.md's action vocabulary, with coordinates
in the pixels of the image sent (at most 1568 px on the long edge and 1.15 megapixels, aspect
kept: a size every vision model of this kind takes without shrinking it much); bash and the
editor are functions too. A reply with no function call ends the run, as with Claude. Prices are
known for a few OpenAI models; `--price IN,OUT` prices any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent.models.chat_format import parse_arguments, prune_images, render_messages, render_tool
from agent.models.openai_client import Price, check_credentials, complete, make_client, price_of
from agent.types import Reply
from vision.geometry import Size, fit_image_size

if TYPE_CHECKING:
    from agent.models.base import ModelConfig
    from agent.types import ToolSpec, Turn

FAMILY = "chat"
MAX_LONG_EDGE, MAX_PIXELS = 1568, 1_150_000
ACTIONS = frozenset({
    "screenshot", "cursor_position", "mouse_move", "left_click", "right_click", "middle_click", "double_click",
    "triple_click", "left_click_drag", "left_mouse_down", "left_mouse_up", "scroll", "type", "key", "hold_key",
    "wait", "zoom"})
KNOWN_MODELS = ("gpt-4.1", "gpt-4.1-mini", "gpt-4o")
PRICES: dict[str, Price] = {  # USD per million tokens (input, output, cached input), OpenAI's published prices
    "gpt-4.1": Price(2.0, 8.0, 0.5), "gpt-4.1-mini": Price(0.4, 1.6, 0.1), "gpt-4.1-nano": Price(0.1, 0.4, 0.025),
    "gpt-4o": Price(2.5, 10.0, 1.25), "gpt-4o-mini": Price(0.15, 0.6, 0.075),
}


class ChatModel:
    """One chat-completions request per step, tools as functions."""

    computer_actions = ACTIONS
    plans_in_words = True  # can be a planner for --grounder: it calls functions it is given

    def __init__(self, name: str, config: ModelConfig) -> None:
        self.name, self.config = name, config
        self.price = price_of(config, PRICES, name)
        self._client: Any = None

    def image_size(self, screen: Size) -> Size:
        """The screenshot size: the largest same-aspect image within 1568 px and 1.15 megapixels."""
        return fit_image_size(screen, MAX_LONG_EDGE, MAX_PIXELS)

    def preflight(self) -> None:
        """ModelUnavailable without a key for OpenAI's API (a server of one's own needs none)."""
        check_credentials(self.config, FAMILY, needs_server=False)

    @property
    def client(self) -> Any:
        """The SDK client, made on first use."""
        if self._client is None:
            self._client = make_client(self.config, FAMILY, needs_server=False)
        return self._client

    def query(self, system: str, history: Sequence[Turn], tools: Sequence[ToolSpec]) -> Reply:
        """One request; ModelUnavailable once the SDK's retries are used up."""
        messages = prune_images(render_messages(system, history), self.config.context)
        extra: dict[str, Any] = {"tools": [render_tool(tool) for tool in tools]} if tools else {}
        if self.config.temperature is not None:
            extra["temperature"] = self.config.temperature
        answer = complete(self.client, self.config, self.name, messages, self.price, **extra)
        calls = [parse_arguments(c.get("id") or f"call_{n}", c["function"].get("name", ""),
                                 c["function"].get("arguments")) for n, c in enumerate(answer.tool_calls)]
        return Reply(answer.text.strip(), calls, answer.usage, answer.latency_s, answer.model, answer.finish_reason,
                     [answer.message])


def create(name: str, config: ModelConfig) -> ChatModel:
    """The registry's entry point: `chat/NAME`, any model the server serves under NAME."""
    return ChatModel(name, config)
