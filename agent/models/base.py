"""The Model protocol every backend implements, and the model settings they share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from agent.types import Reply, ToolSpec, Turn
    from vision.geometry import Size

DEFAULT_MODEL = "claude-sonnet-4-6"


@dataclass
class ModelConfig:
    """Model settings (YAML key `model`). `model` is `FAMILY/NAME` (a bare `claude-*` is Anthropic's)."""

    model: str = DEFAULT_MODEL
    base_url: str | None = None  # default: the SDK's environment variable, or its own default
    tool_version: str | None = None  # Anthropic: the computer tool version, for a model the table lacks
    max_tokens: int = 4096
    thinking_budget: int | None = None  # extended thinking tokens; None = off
    effort: str | None = None  # "low" | "medium" | "high" where the model supports it
    temperature: float | None = None
    max_retries: int = 4
    timeout_s: float = 120.0
    extra_headers: dict[str, str] = field(default_factory=dict)
    context: ContextConfig = field(default_factory=lambda: ContextConfig())


class Model(Protocol):
    """A vision model behind one API. The backend owns its wire format: it renders the history
    and the tools into its own messages, encodes the images, places cache breakpoints, prices
    the usage and parses the reply back into tool calls."""

    name: str  # as the server knows it
    computer_actions: frozenset[str]  # the computer actions this model can express

    def image_size(self, screen: Size) -> Size:
        """The size of the screenshots this model receives (and its coordinates refer to)."""
        ...

    def preflight(self) -> None:
        """Raise ModelUnavailable now (no network) when the model cannot be used, e.g. no API key."""
        ...

    def query(self, system: str, history: Sequence[Turn], tools: Sequence[ToolSpec]) -> Reply:
        """One model call: the system prompt, the whole history and the tools -> the reply.

        Raises ModelUnavailable when the API cannot be reached after the retries.
        """
        ...


@dataclass(frozen=True)
class ContextConfig:
    """How much history the model sees (YAML key `context`): the latest `keep_images` screenshots,
    older ones pruned `prune_batch` at a time (so a cached prefix changes rarely), prompt caching on."""

    keep_images: int = 3
    prune_batch: int = 8  # measured best for keep_images=3 by benchmarks/tokens.py
    cache: bool = True
