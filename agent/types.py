"""The plain data every layer of the agent shares: usage, tool calls, replies, history turns, tool specs.

These types are the language between the loop and a model backend. They say nothing of any
wire format: each backend turns them into its own messages and back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actions.result import ToolResult
    from vision.capture import Frame
    from vision.geometry import Size


@dataclass(frozen=True)
class Usage:
    """Token counts of one or more model calls, and their cost in US dollars."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0

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
    """One tool call of a reply: the tool's name and its input, in the canonical vocabulary.

    A backend whose model writes something else (a text family's action, a grid coordinate, an
    OpenAI action object) translates it into `input` and keeps what the model wrote in `raw`: the
    recording keeps `raw` as the step's `model_action`. `error` says why a call the model wrote
    could not be read: it becomes an error result, and nothing executes. `checks` are the reasons a
    model's provider gives for a person to confirm the call before it runs (OpenAI's pending safety
    checks): the safety policy asks, whatever its rules say.
    """

    id: str
    name: str
    input: dict[str, Any]
    raw: Any = None
    error: str | None = None
    checks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reply:
    """A model's reply: its text, its tool calls, what it cost and how long it took.

    `raw` is the reply in the backend's own form (JSON-able), kept for the recording and for
    the backend's own rendering of the history. `requests` lists the API requests behind the reply
    when there were several (a correction turn, a grounder's calls), each a model.jsonl record with
    at least `model`, `usage` and `latency_ms`; empty means one request, described by the reply.
    """

    text: str
    tool_calls: list[ToolCall]
    usage: Usage
    latency_s: float
    model: str
    stop_reason: str | None = None
    raw: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class UserTurn:
    """What the user says: texts and images in order (a frame is sent as it is, at its own size)."""

    parts: tuple[str | Frame, ...]

    @property
    def text(self) -> str:
        """The texts, joined."""
        return "\n".join(part for part in self.parts if isinstance(part, str))

    @property
    def images(self) -> list[Frame]:
        """The images, in order."""
        return [part for part in self.parts if not isinstance(part, str)]


@dataclass(frozen=True, eq=False)
class AssistantTurn:
    """The model's reply, as it was given."""

    reply: Reply


@dataclass(frozen=True, eq=False)
class ToolTurn:
    """The results of every tool call of the previous reply, in the calls' order."""

    results: tuple[tuple[ToolCall, ToolResult], ...]


Turn = UserTurn | AssistantTurn | ToolTurn


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model is told of it.

    `kind` is "computer", "bash", "editor" or "function": a backend whose API has a built-in tool
    of that kind renders it natively, else as a function with `parameters` (a JSON Schema).
    `display` is the image size a computer tool's coordinates refer to; `options` are settings a
    built-in tool takes (the editor's `max_characters`).
    """

    name: str
    description: str
    parameters: dict[str, Any]
    kind: str = "function"
    display: Size | None = None
    options: dict[str, Any] = field(default_factory=dict)  # e.g. the editor's max_characters


class StopSignal(threading.Event):
    """A stop request that says why: set once by the app, the kill switch, a signal or a test."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = "stopped by the user"

    def stop(self, reason: str = "stopped by the user") -> None:
        """Ask the run to stop, giving the reason (the first reason given is kept)."""
        if not self.is_set():
            self.reason = reason
        self.set()


def stop_reason(stop: threading.Event, default: str = "stopped by the user") -> str:
    """Why `stop` was set: its reason when it is a StopSignal, else `default`."""
    return stop.reason if isinstance(stop, StopSignal) else default


@dataclass(frozen=True)
class RunResult:
    """How a run ended: its status, exit code and final message, the steps it took and what it cost."""

    status: str
    exit_code: int
    message: str
    steps: int
    usage: Usage
