"""The Model protocol every backend implements, and the model settings they share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from agent.types import Reply, ToolSpec, Turn, Usage
    from vision.capture import Frame
    from vision.geometry import Size

DEFAULT_MODEL = "claude-sonnet-4-6"


@dataclass
class ModelConfig:
    """Model settings (YAML key `model`). `model` is `FAMILY/NAME` (a bare `claude-*` is Anthropic's)."""

    model: str = DEFAULT_MODEL
    # an OpenAI-compatible server (`--base-url`); default OPENAI_BASE_URL, else OpenAI's API. Claude
    # ignores it (ANTHROPIC_BASE_URL is Anthropic's), so rollouts can mix families.
    base_url: str | None = None
    grounder: str | None = None  # `--grounder FAMILY/NAME`: points at targets the model names in words
    grounder_base_url: str | None = None  # the grounder's server; default base_url
    price: tuple[float, float] | None = None  # `--price IN,OUT`: USD per million tokens, where none is known
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


@dataclass(frozen=True)
class Grounding:
    """Where a grounder points for a target described in words: `point` in its image's pixels, or
    `error` saying why it gave none; `record` is its request for model.jsonl (see Reply.requests)."""

    point: tuple[int, int] | None
    error: str | None
    usage: Usage
    record: dict


class Grounder(Protocol):
    """A model that can point at a target named in words (`--grounder`): UI-TARS and the Qwen-VL families."""

    name: str

    def image_size(self, screen: Size) -> Size:
        """The size of the screenshots it points on."""
        ...

    def preflight(self) -> None:
        """ModelUnavailable now when it cannot be used."""
        ...

    def ground(self, image: Frame, target: str) -> Grounding:
        """One request: where on `image` (already at image_size) is `target`? ModelUnavailable if unreachable."""
        ...
