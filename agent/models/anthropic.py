"""Claude through the official `anthropic` SDK: tool versions, prices, image budget and the backend.

Tool versions are one table, chosen per model by prefix; `--tool-version` overrides it for a
model the table does not know. The SDK's own retries (exponential backoff with jitter, honouring
retry-after) handle 429, 5xx, 529, timeouts and dropped connections; when they are exhausted the
query raises ModelUnavailable (exit 4). The wire format (message blocks, cache breakpoints, image
pruning) is in `anthropic_messages`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.errors import BadInput, ModelUnavailable
from agent.models.anthropic_messages import History, parse_content, render_tool
from agent.models.base import ModelConfig
from agent.types import Reply, Usage
from vision.geometry import Size, fit_image_size

if TYPE_CHECKING:
    from agent.types import ToolSpec, Turn

# Claude's image budget: a larger image is shrunk server-side, which silently shifts every coordinate.
MAX_LONG_EDGE = 1568
MAX_PIXELS = 1_150_000

ALL_ACTIONS = frozenset({
    "screenshot", "cursor_position", "mouse_move", "left_click", "right_click", "middle_click", "double_click",
    "triple_click", "left_click_drag", "left_mouse_down", "left_mouse_up", "scroll", "type", "key", "hold_key",
    "wait", "zoom"})


@dataclass(frozen=True)
class ToolVersion:
    """One version of Claude's computer tool: its type, the beta header, and whether zoom exists."""

    name: str
    computer_type: str
    beta: str
    zoom: bool
    toolset: bool = False  # one tool per action (tool_use blocks named by the action)


TOOL_VERSIONS: dict[str, ToolVersion] = {
    "20251124": ToolVersion("20251124", "computer_20251124", "computer-use-2025-11-24", zoom=True),
    "20250124": ToolVersion("20250124", "computer_20250124", "computer-use-2025-01-24", zoom=False),
    # The SDK defines this toolset, but neither its types nor its docs say which models take it or
    # which beta header it needs; it is offered only through --tool-version, never by default.
    "toolset_20260801": ToolVersion("toolset_20260801", "computer_toolset_20260801", "computer-use-2025-11-24",
                                    zoom=True, toolset=True),
}
# Model name prefix -> tool version. First match wins, so list the longer prefixes first.
MODEL_TOOLS: tuple[tuple[str, str], ...] = (
    ("claude-opus-4-1", "20250124"), ("claude-opus-4-0", "20250124"), ("claude-opus-4-2", "20250124"),
    ("claude-sonnet-4-5", "20250124"), ("claude-sonnet-4-2", "20250124"), ("claude-sonnet-4-0", "20250124"),
    ("claude-haiku-4-5", "20250124"), ("claude-3-7-sonnet", "20250124"),
    ("claude-opus-4-5", "20251124"), ("claude-opus-4-6", "20251124"), ("claude-opus-4-7", "20251124"),
    ("claude-opus-4-8", "20251124"), ("claude-sonnet-4-6", "20251124"),
    ("claude-opus-5", "20251124"), ("claude-sonnet-5", "20251124"), ("claude-haiku-5", "20251124"),
)
KNOWN_MODELS = tuple(prefix for prefix, _ in MODEL_TOOLS)


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    cache_write: float  # 5-minute cache writes: 1.25x input
    cache_read: float  # 0.1x input


def _price(input_usd: float, output_usd: float) -> Price:
    return Price(input_usd, output_usd, input_usd * 1.25, input_usd * 0.1)


# By model family, from Anthropic's published prices for the 4.5/4.6 generation. A newer model of
# a family is priced like its family until this table says otherwise.
PRICES: tuple[tuple[str, Price], ...] = (
    ("claude-opus-4-1", _price(15.0, 75.0)), ("claude-opus-4-0", _price(15.0, 75.0)),
    ("claude-opus", _price(5.0, 25.0)), ("claude-sonnet", _price(3.0, 15.0)), ("claude-haiku", _price(1.0, 5.0)),
)


def tool_version_for(model: str, override: str | None = None) -> ToolVersion:
    """The computer tool version for `model`, or `override`; BadInput for a model the table lacks."""
    if override:
        if override not in TOOL_VERSIONS:
            raise BadInput(f"--tool-version {override!r} is not one of {', '.join(TOOL_VERSIONS)}")
        return TOOL_VERSIONS[override]
    for prefix, version in MODEL_TOOLS:
        if model.startswith(prefix):
            return TOOL_VERSIONS[version]
    raise BadInput(
        f"model {model!r} is not in deskpilot's tool table; pass --tool-version "
        f"({' or '.join(TOOL_VERSIONS)}) to say which computer tool it takes"
    )


def price_for(model: str) -> Price:
    """The price of `model` (by family prefix; Sonnet's when the family is unknown)."""
    for prefix, price in PRICES:
        if model.startswith(prefix):
            return price
    return dict(PRICES)["claude-sonnet"]


def priced_usage(usage: Any, price: Price) -> Usage:
    """The Usage of one API response (its `usage` object), priced."""
    counts = {
        "input_tokens": usage.input_tokens or 0,
        "output_tokens": usage.output_tokens or 0,
        "cache_read_tokens": getattr(usage, "cache_read_input_tokens", 0) or 0,
        "cache_write_tokens": getattr(usage, "cache_creation_input_tokens", 0) or 0,
    }
    cost = (counts["input_tokens"] * price.input + counts["output_tokens"] * price.output
            + counts["cache_read_tokens"] * price.cache_read + counts["cache_write_tokens"] * price.cache_write) / 1e6
    return Usage(**counts, cost_usd=cost)


def image_size(screen: Size) -> Size:
    """The largest same-aspect image within Claude's budget; never larger than `screen`."""
    return fit_image_size(screen, MAX_LONG_EDGE, MAX_PIXELS)


class Claude:
    """The Anthropic backend: one `query` per step through `client.beta.messages.create`."""

    plans_in_words = True  # it calls the functions it is given, so it can plan for a grounder

    def __init__(self, name: str, config: ModelConfig) -> None:
        self.name, self.config = name, config
        self.version = tool_version_for(name, config.tool_version)  # BadInput before any work
        self.price = Price(*config.price, config.price[0] * 1.25, config.price[0] * 0.1) if config.price \
            else price_for(name)
        self.computer_actions = ALL_ACTIONS if self.version.zoom else ALL_ACTIONS - {"zoom"}
        self.history = History(config.context)
        self._client: Any = None

    def image_size(self, screen: Size) -> Size:
        """Claude's image of `screen` (see `image_size`)."""
        return image_size(screen)

    def preflight(self) -> None:
        """ModelUnavailable when there is no API key (from the environment or the keyring)."""
        self._key()

    def _key(self) -> str | None:
        from agent.models.credentials import api_key
        from agent.vault import getenv

        key = api_key()
        if not key and not getenv("ANTHROPIC_AUTH_TOKEN"):
            raise ModelUnavailable("no API key: set ANTHROPIC_API_KEY (or store one with `deskpilot app`, File menu)")
        return key

    @property
    def client(self) -> Any:
        """The SDK client, created on first use."""
        if self._client is None:
            import anthropic

            from agent.vault import getenv

            key = self._key()
            try:
                token = None if key else getenv("ANTHROPIC_AUTH_TOKEN")  # passed: the environment may not hold it
                self._client = anthropic.Anthropic(api_key=key, auth_token=token, max_retries=self.config.max_retries,
                                                   timeout=self.config.timeout_s)
            except anthropic.AnthropicError as exc:
                raise ModelUnavailable(f"cannot create the Anthropic client: {exc}") from None
        return self._client

    def query(self, system: str, history: Sequence[Turn], tools: Sequence[ToolSpec]) -> Reply:
        """Send one request; the SDK retries transient faults, then ModelUnavailable is raised."""
        import anthropic

        client = self.client
        kwargs: dict[str, Any] = {
            "model": self.name, "max_tokens": self.config.max_tokens,
            "system": self.history.system(system), "messages": self.history.messages(history),
            "tools": [render_tool(tool, self.version) for tool in tools], "betas": [self.version.beta],
        }
        if self.config.thinking_budget:
            kwargs["thinking"] = {"type": "enabled", "budget_tokens": self.config.thinking_budget}
        if self.config.effort:
            kwargs["extra_body"] = {"output_config": {"effort": self.config.effort}}
        if self.config.temperature is not None and not self.config.thinking_budget:
            kwargs["temperature"] = self.config.temperature
        if self.config.extra_headers:
            kwargs["extra_headers"] = self.config.extra_headers
        started = time.monotonic()
        try:
            response = client.beta.messages.create(**kwargs)
        except anthropic.BadRequestError as exc:
            raise ModelUnavailable(f"the model API refused the request: {exc.message}") from None
        except anthropic.AuthenticationError as exc:
            raise ModelUnavailable(f"the API key was refused: {exc.message}; set ANTHROPIC_API_KEY") from None
        except (anthropic.APIConnectionError, anthropic.APIStatusError) as exc:
            raise ModelUnavailable(
                f"the model API failed after {self.config.max_retries} retries: {type(exc).__name__}: {exc}"
            ) from None
        content = [block.model_dump(mode="json", exclude_none=True) for block in response.content]
        text, calls = parse_content(content)
        return Reply(text, calls, priced_usage(response.usage, self.price), time.monotonic() - started,
                     response.model, response.stop_reason, content)


def create(name: str, config: ModelConfig) -> Claude:
    """The registry's entry point: Claude `name` (BadInput for a model the tool table lacks)."""
    return Claude(name, config)
