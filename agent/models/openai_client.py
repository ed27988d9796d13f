"""What the OpenAI-compatible families share: the `openai` SDK client, errors, prices and images.

The official `openai` SDK is the client of every family that is not Anthropic's. It reads
`OPENAI_API_KEY` and `OPENAI_BASE_URL`; `--base-url` (ModelConfig.base_url) wins over the latter.
A server of one's own (vLLM, ollama, llama.cpp, LM Studio) needs no key: where a base URL is set
and no key is, a placeholder key is sent. The SDK's retries (exponential backoff with jitter,
honouring `retry-after`) handle 408, 409, 429, 5xx, timeouts and dropped connections; once they
are used up, `request` raises ModelUnavailable (exit 4).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from agent.errors import ModelUnavailable
from agent.types import Usage
from agent.vault import getenv

if TYPE_CHECKING:
    from agent.models.base import ModelConfig
    from vision.capture import Frame

LOCAL_KEY = "no-key-needed"  # sent to a server of one's own when OPENAI_API_KEY is not set
SUB_CALL = "~"  # joins a model's call id and the index of one of the canonical calls it became
T = TypeVar("T")


class RequestRefused(ModelUnavailable):
    """The server answered 400: it refuses this request as it is (retrying the same request cannot help)."""


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens: input, output and input read from the server's cache."""

    input: float
    output: float
    cached_input: float | None = None  # None: the input price

    def cost(self, usage: Usage) -> float:
        """What `usage` costs."""
        cached = self.input if self.cached_input is None else self.cached_input
        return (usage.input_tokens * self.input + usage.output_tokens * self.output
                + usage.cache_read_tokens * cached) / 1e6


def price_of(config: ModelConfig, known: dict[str, Price] | None = None, name: str = "") -> Price | None:
    """`--price IN,OUT` when given, else the table's price of the longest prefix of `name`, else None."""
    if config.price is not None:
        return Price(*config.price)
    for prefix in sorted(known or {}, key=len, reverse=True):
        if name.startswith(prefix):
            return (known or {})[prefix]
    return None


def usage_of(prompt: int, completion: int, cached: int, price: Price | None) -> Usage:
    """A Usage from an OpenAI-style count (the prompt includes its cached part), priced when a price is known."""
    usage = Usage(input_tokens=max(0, prompt - cached), output_tokens=completion, cache_read_tokens=cached)
    return Usage(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, 0,
                 price.cost(usage) if price else 0.0)


def base_url(config: ModelConfig) -> str | None:
    """The server: `--base-url`, else OPENAI_BASE_URL, else None (OpenAI's own API)."""
    return config.base_url or getenv("OPENAI_BASE_URL") or None


def check_credentials(config: ModelConfig, family: str, needs_server: bool) -> None:
    """ModelUnavailable when the model cannot be reached as configured (no network used).

    `needs_server`: the family runs on a server of one's own (no default URL makes sense).
    """
    url = base_url(config)
    if needs_server and url is None:
        raise ModelUnavailable(f"{family} models run on a server of your own: give --base-url URL (for example "
                               "http://localhost:8000/v1 for vLLM, http://localhost:11434/v1 for ollama) or set "
                               "OPENAI_BASE_URL")
    if url is None and not getenv("OPENAI_API_KEY"):
        raise ModelUnavailable("no API key: set OPENAI_API_KEY (or give --base-url URL for a server that needs none)")


def make_client(config: ModelConfig, family: str, needs_server: bool) -> Any:
    """The SDK client for `config` (retries and timeout from the config)."""
    import openai

    check_credentials(config, family, needs_server)
    url = base_url(config)
    key = getenv("OPENAI_API_KEY") or (LOCAL_KEY if url else None)
    try:
        return openai.OpenAI(api_key=key, base_url=url, max_retries=config.max_retries, timeout=config.timeout_s,
                             default_headers=config.extra_headers or None)
    except openai.OpenAIError as exc:
        raise ModelUnavailable(f"cannot create the OpenAI client: {exc}") from None


def request(send: Callable[[], T], config: ModelConfig, what: str) -> tuple[T, float]:
    """(the SDK call's result, seconds it took); ModelUnavailable once the SDK's retries are used up.

    `what` names the model and server in messages.
    """
    import openai

    started = time.monotonic()
    try:
        result = send()
    except openai.AuthenticationError as exc:
        raise ModelUnavailable(f"{what}: the API key was refused ({_message(exc)}); set OPENAI_API_KEY") from None
    except openai.NotFoundError as exc:
        raise ModelUnavailable(f"{what}: not found ({_message(exc)}); check the model name and --base-url "
                               "(`deskpilot doctor --model ... --base-url ...` lists what the server serves)") from None
    except openai.BadRequestError as exc:
        raise RequestRefused(f"{what}: the server refused the request: {_message(exc)}") from None
    except (openai.APIConnectionError, openai.APIStatusError) as exc:
        raise ModelUnavailable(f"{what}: the model API failed after {config.max_retries} retries: "
                               f"{type(exc).__name__}: {_message(exc)}") from None
    return result, time.monotonic() - started


def _message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error") if isinstance(body.get("error"), dict) else body
        if isinstance(error.get("message"), str):
            return error["message"]
    return str(getattr(exc, "message", None) or exc)


def list_models(config: ModelConfig) -> list[str]:
    """The model names the server serves (GET /models), for `doctor`; ModelUnavailable when it does not answer."""
    client = make_client(config, "the model server", needs_server=False)
    page, _ = request(lambda: client.models.list(), config, f"the server at {base_url(config) or 'OpenAI'}")
    return [model.id for model in page]


_data_urls: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def data_url(frame: Frame) -> str:
    """The frame as a PNG data URL, as it is (no resizing); encoded once per frame."""
    url = _data_urls.get(frame)
    if url is None:
        from vision.encode import encode

        image = encode(frame.pixels, "png")
        url = _data_urls[frame] = f"data:{image.media_type};base64,{image.base64()}"
    return url


def sub_id(call_id: str, index: int, count: int) -> str:
    """The id of canonical call `index` of `count` that one model call became (the call's own id when alone)."""
    return call_id if count == 1 else f"{call_id}{SUB_CALL}{index}"


def origin_id(call_id: str) -> str:
    """The model's call id a canonical call came from."""
    return call_id.split(SUB_CALL, 1)[0]


def request_record(model: str, purpose: str, latency_s: float, usage: Usage, response: Any,
                   stop_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """One model.jsonl record of an API request (see Reply.requests)."""
    return {"purpose": purpose, "model": model, "stop_reason": stop_reason, "latency_ms": round(latency_s * 1000),
            "usage": usage.as_dict(), "response": response, **extra}


@dataclass(frozen=True)
class Completion:
    """The first choice of a chat completion, as plain data."""

    text: str
    tool_calls: list[dict[str, Any]]  # as the server sent them (id, function name, arguments text)
    usage: Usage
    model: str
    finish_reason: str | None
    latency_s: float
    message: dict[str, Any]  # the message as JSON, for the recording


def complete(client: Any, config: ModelConfig, name: str, messages: list[dict[str, Any]], price: Price | None,
             **kwargs: Any) -> Completion:
    """One chat-completions request (`kwargs` added to it); ModelUnavailable when it fails for good."""
    body: dict[str, Any] = {"model": name, "messages": messages, **kwargs}
    body.setdefault("max_tokens" if base_url(config) else "max_completion_tokens", config.max_tokens)
    response, latency = request(lambda: client.chat.completions.create(**body), config, f"model {name!r}")
    if not response.choices:
        raise ModelUnavailable(f"model {name!r}: the server answered with no choices")
    choice = response.choices[0]
    message = choice.message.model_dump(mode="json", exclude_none=True)
    usage = response.usage
    if usage is None:
        counted = usage_of(0, 0, 0, price)
    else:
        details = getattr(usage, "prompt_tokens_details", None)
        counted = usage_of(usage.prompt_tokens or 0, usage.completion_tokens or 0,
                           getattr(details, "cached_tokens", 0) or 0, price)
    calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict) and c.get("function")]
    return Completion((choice.message.content or ""), calls, counted, response.model or name, choice.finish_reason,
                      latency, message)
