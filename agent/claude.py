"""Claude through the official SDK: the tool-version table, the price table, and the model backend.

Tool versions are one table, chosen per model by prefix; `--tool-version` overrides it for a
model the table does not know. The SDK's own retries (exponential backoff with jitter, honouring
retry-after) handle 429, 5xx, 529, timeouts and dropped connections; when they are exhausted
the run ends with ModelUnavailable (exit 4).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from agent.errors import BadInput, EnvironmentProblem

DEFAULT_MODEL = "claude-sonnet-4-6"


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
BASH_TOOL = "bash_20250124"
EDITOR_TOOL = "text_editor_20250728"


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


@dataclass(frozen=True)
class Usage:
    """Token counts of one or more calls, and their cost."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0

    @classmethod
    def from_api(cls, usage: Any, price: Price) -> Usage:
        """Usage of one response, priced."""
        counts = {
            "input_tokens": usage.input_tokens or 0,
            "output_tokens": usage.output_tokens or 0,
            "cache_read_tokens": getattr(usage, "cache_read_input_tokens", 0) or 0,
            "cache_write_tokens": getattr(usage, "cache_creation_input_tokens", 0) or 0,
        }
        cost = (counts["input_tokens"] * price.input + counts["output_tokens"] * price.output
                + counts["cache_read_tokens"] * price.cache_read
                + counts["cache_write_tokens"] * price.cache_write) / 1e6
        return cls(**counts, cost_usd=cost)

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                     self.cache_read_tokens + other.cache_read_tokens,
                     self.cache_write_tokens + other.cache_write_tokens, self.cost_usd + other.cost_usd)

    @property
    def total_tokens(self) -> int:
        """All tokens, read from cache or not."""
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens

    def as_dict(self) -> dict[str, Any]:
        """The recording's field names."""
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cache_read_tokens": self.cache_read_tokens, "cache_write_tokens": self.cache_write_tokens,
                "cost_usd": round(self.cost_usd, 6)}


@dataclass(frozen=True)
class ToolCall:
    """One tool call of a reply, normalised: the computer toolset's per-action blocks become
    `computer` calls with the action in the input."""

    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """A model's reply: its content blocks as sent back in history, the text, the tool calls."""

    content: list[dict[str, Any]]
    text: str
    tool_calls: list[ToolCall]
    stop_reason: str | None
    usage: Usage
    latency_s: float
    model: str


def parse_tool_calls(content: list[dict[str, Any]]) -> list[ToolCall]:
    """Tool calls from response blocks, in both the single-tool and the toolset form."""
    calls = []
    for block in content:
        if block.get("type") != "tool_use":
            continue
        data = block.get("input") if isinstance(block.get("input"), dict) else {}
        if block.get("toolset_name") == "computer":
            calls.append(ToolCall(block["id"], "computer", {"action": block["name"], **data}))
        else:
            calls.append(ToolCall(block["id"], block["name"], dict(data)))
    return calls


class ModelUnavailable(EnvironmentProblem):
    """The model API could not be reached or kept failing after the retries."""


@dataclass
class ClaudeConfig:
    """Model settings (YAML key `model`)."""

    model: str = DEFAULT_MODEL
    tool_version: str | None = None
    max_tokens: int = 4096
    thinking_budget: int | None = None  # extended thinking tokens; None = off
    effort: str | None = None  # "low" | "medium" | "high" where the model supports it
    temperature: float | None = None
    max_retries: int = 4
    timeout_s: float = 120.0
    base_url: str | None = None  # default: ANTHROPIC_BASE_URL or the SDK's
    extra_headers: dict[str, str] = field(default_factory=dict)


class Claude:
    """The Anthropic backend: one `query` per step through `client.beta.messages.create`."""

    def __init__(self, config: ClaudeConfig) -> None:
        import anthropic

        from agent.credentials import api_key

        self.config = config
        self.version = tool_version_for(config.model, config.tool_version)
        self.price = price_for(config.model)
        key = api_key()
        if not key and not os.environ.get("ANTHROPIC_AUTH_TOKEN"):
            raise ModelUnavailable("no API key: set ANTHROPIC_API_KEY (or store one with `deskpilot app`, File menu)")
        try:
            self.client = anthropic.Anthropic(api_key=key, max_retries=config.max_retries,
                                              timeout=config.timeout_s, base_url=config.base_url)
        except anthropic.AnthropicError as exc:  # e.g. no API key
            raise ModelUnavailable(f"cannot create the Anthropic client: {exc}") from None

    def query(self, system: list[dict], messages: list[dict], tools: list[dict]) -> Reply:
        """Send one request; the SDK retries transient faults, then ModelUnavailable is raised."""
        import anthropic

        kwargs: dict[str, Any] = {
            "model": self.config.model, "max_tokens": self.config.max_tokens, "system": system,
            "messages": messages, "tools": tools, "betas": [self.version.beta],
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
            response = self.client.beta.messages.create(**kwargs)
        except anthropic.BadRequestError as exc:
            raise ModelUnavailable(f"the model API refused the request: {exc.message}") from None
        except anthropic.AuthenticationError as exc:
            raise ModelUnavailable(f"the API key was refused: {exc.message}; set ANTHROPIC_API_KEY") from None
        except (anthropic.APIConnectionError, anthropic.APIStatusError) as exc:
            raise ModelUnavailable(
                f"the model API failed after {self.config.max_retries} retries: {type(exc).__name__}: {exc}"
            ) from None
        content = [block.model_dump(mode="json", exclude_none=True) for block in response.content]
        text = "\n".join(b.get("text", "") for b in content if b.get("type") == "text").strip()
        return Reply(content, text, parse_tool_calls(content), response.stop_reason,
                     Usage.from_api(response.usage, self.price), time.monotonic() - started, response.model)
