"""A local fake of the Anthropic Messages API, for driving the real `anthropic` SDK in tests.

`FakeAnthropic` is a small HTTP server on 127.0.0.1 that answers `POST /v1/messages` (with or without
`?beta=true`) with scripted replies, records every request, injects faults (error statuses, dropped
connections, slow answers) and simulates prompt-cache accounting in `usage`. Point a client at it:

    script = [message(tool_use("computer", {"action": "screenshot"})), message(text("done"))]
    with FakeAnthropic(script) as fake:
        client = anthropic.Anthropic(api_key="test", base_url=fake.base_url, max_retries=0)
        reply = client.beta.messages.create(model="m", max_tokens=100, messages=[...], betas=[...])

Only non-streaming `create` is supported (`"stream": true` gets a 400). `POST /v1/messages/count_tokens`
answers the estimated input size without consuming a scripted reply.

Token accounting (`estimate_tokens`, also used for every reply whose `usage` is not given):

* The prompt is the ordered sequence of blocks tools -> system -> messages (each content block; a string
  `system` or message `content` is one text block).
* Text is `ceil(chars / 4)`: text blocks, tool definitions as compact JSON (+ `TOOL_DEFINITION_TOKENS`),
  tool_use blocks as name + input JSON, tool_result text, thinking text; any other block as its JSON.
* Images are `ceil(w * h / 750)` with `w, h` read from the base64 PNG/JPEG/GIF/WebP header, after the
  API's downscaling (long edge <= `MAX_IMAGE_EDGE`, at most `MAX_IMAGE_TOKENS`); URL/file images count
  `MAX_IMAGE_TOKENS`.
* Anthropic-defined tools cost their documented fixed sizes (`SERVER_TOOL_TOKENS`), and any tools add the
  tool-use system prompt (`TOOL_USE_SYSTEM_TOKENS`, plus `COMPUTER_USE_SYSTEM_TOKENS` with a computer tool).
* A block with `cache_control` is a breakpoint (at most 4, else a 400 like the real API; a top-level
  `cache_control` marks the last block). The cache key of a position is a hash of the canonical JSON of
  every block up to it (`cache_control` itself excluded, model/tool_choice/thinking mixed in where the API
  does). The longest prefix found in the cache at a breakpoint, or up to `CACHE_LOOKBACK_BLOCKS` blocks
  before one, is `cache_read_input_tokens`; from there to the last breakpoint whose prefix has at least
  `min_cacheable_tokens` (default 1024; the real minimum depends on the model) is
  `cache_creation_input_tokens`, split by TTL in `cache_creation` (and those breakpoint prefixes are
  stored); the rest is `input_tokens`. Cache entries never expire.
* `output_tokens` is `ceil(chars / 4)` of the reply's content JSON (at least 1).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import io
import itertools
import json
import math
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "FakeAnthropic",
    "Reply",
    "Request",
    "drop",
    "estimate_output_tokens",
    "estimate_tokens",
    "fault",
    "message",
    "slow",
    "text",
    "tool_use",
]

CHARS_PER_TOKEN = 4
IMAGE_PIXELS_PER_TOKEN = 750
MAX_IMAGE_EDGE = 1568
MAX_IMAGE_TOKENS = 1600
TOOL_DEFINITION_TOKENS = 8
TOOL_USE_SYSTEM_TOKENS = 346
COMPUTER_USE_SYSTEM_TOKENS = 466
SERVER_TOOL_TOKENS = {"computer_": 735, "bash_": 245, "text_editor_": 700}
MAX_CACHE_BREAKPOINTS = 4
CACHE_LOOKBACK_BLOCKS = 20
DEFAULT_MIN_CACHEABLE_TOKENS = 1024

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_tool_ids = itertools.count(1)


# --------------------------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build it with `message`, `fault`, `drop` or `slow`."""

    kind: str  # "message" | "fault" | "drop" | "slow"
    content: tuple[dict, ...] = ()
    stop_reason: str | None = None
    usage: dict | None = None
    model: str | None = None
    status: int = 200
    error_type: str | None = None
    error_message: str | None = None
    retry_after: float | None = None
    delay: float = 0.0
    then: Reply | None = None


def text(value: str) -> dict:
    """A text content block."""
    return {"type": "text", "text": value}


def tool_use(name: str, input: dict, id: str | None = None) -> dict:
    """A tool_use content block; `id` defaults to a fresh "toolu_<n>"."""
    return {"type": "tool_use", "id": id or f"toolu_{next(_tool_ids)}", "name": name, "input": input}


def message(
    *blocks: dict, stop_reason: str | None = None, usage: dict | None = None, model: str | None = None
) -> Reply:
    """A successful assistant message made of `blocks`.

    `stop_reason` defaults to "tool_use" when a block is a tool_use, else "end_turn". `usage` None means
    simulated (see the module docstring); a given dict is sent as is, missing counters filled with 0.
    `model` None echoes the request's model.
    """
    if stop_reason is None:
        stop_reason = "tool_use" if any(b.get("type") == "tool_use" for b in blocks) else "end_turn"
    return Reply("message", content=tuple(blocks), stop_reason=stop_reason, usage=usage, model=model)


def fault(
    status: int,
    *,
    error_type: str | None = None,
    message: str | None = None,
    retry_after: float | None = None,
) -> Reply:
    """An error answer with the API's JSON body `{"type": "error", "error": {"type", "message"}}`.

    `error_type` defaults from the status (429 rate_limit_error, 500 api_error, 529 overloaded_error, ...);
    `retry_after` (seconds) is sent as the `retry-after` header, which the SDK's retry honours.
    """
    error_type = error_type or ERROR_TYPES.get(status, "api_error")
    return Reply(
        "fault",
        status=status,
        error_type=error_type,
        error_message=message or f"Fake {error_type} ({status})",
        retry_after=retry_after,
    )


def drop() -> Reply:
    """Read the request, then close the connection without any response."""
    return Reply("drop")


def slow(seconds: float, then: Reply) -> Reply:
    """Wait `seconds` before answering with `then` (stopping the server cuts the wait and drops)."""
    return Reply("slow", delay=seconds, then=then)


# --------------------------------------------------------------------------------------------- requests


@dataclass
class Request:
    """One recorded HTTP request, and what the fake did with it.

    `headers` has lower-cased names; `body` is the parsed JSON (None if there was none or it was not JSON);
    `time` is `time.monotonic()` at arrival. `outcome` is one of "pending", "message", "fault", "drop",
    "exhausted", "invalid", "count_tokens", "not_found", "responder_error", "fake_error"; `status` is the
    HTTP status sent (None when nothing was sent); `usage` is the usage sent with a message.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    time: float
    outcome: str = "pending"
    status: int | None = None
    reply: Reply | None = None
    usage: dict | None = None

    def __getitem__(self, key: str) -> Any:
        """Dict-style access to the body, so a responder written against the body dict also works."""
        return self.body[key]

    def get(self, key: str, default: Any = None) -> Any:
        """`body.get(key, default)`, or `default` if the body is not a JSON object."""
        return self.body.get(key, default) if isinstance(self.body, dict) else default

    def first_user_text(self) -> str:
        """The text of the first user message (its text blocks joined), or "" if there is none."""
        for msg in self.get("messages") or []:
            if isinstance(msg, dict) and msg.get("role") == "user":
                content = msg.get("content")
                if isinstance(content, str):
                    return content
                return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict))
        return ""


# --------------------------------------------------------------------------------------------- accounting


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _text_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


def _without_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_without_cache_control(v) for v in value]
    return value


@functools.lru_cache(maxsize=256)
def _image_size(data: str) -> tuple[int, int] | None:
    """(width, height) of a base64 image, from its PNG header or else via PIL; None if unreadable."""
    try:
        head = base64.b64decode(data[:44] + "=" * (-len(data[:44]) % 4))
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        from PIL import Image

        with Image.open(io.BytesIO(base64.b64decode(data))) as img:
            return img.size
    except (binascii.Error, ValueError, OSError):
        return None


def _image_tokens(block: dict) -> int:
    source = block.get("source") or {}
    size = _image_size(source["data"]) if source.get("type") == "base64" and source.get("data") else None
    if size is None:
        return MAX_IMAGE_TOKENS
    w, h = size
    scale = min(1.0, MAX_IMAGE_EDGE / max(w, h, 1))
    w, h = max(1, int(w * scale)), max(1, int(h * scale))
    return min(MAX_IMAGE_TOKENS, math.ceil(w * h / IMAGE_PIXELS_PER_TOKEN))


def _block_tokens(block: Any) -> int:
    """Estimated tokens of one content block (of system, a message or a tool_result)."""
    if isinstance(block, str):
        return _text_tokens(len(block))
    if not isinstance(block, dict):
        return _text_tokens(len(_canonical(block)))
    kind = block.get("type")
    if kind == "text":
        return _text_tokens(len(block.get("text", "")))
    if kind == "image":
        return _image_tokens(block)
    if kind in ("tool_use", "server_tool_use"):
        return _text_tokens(len(block.get("name", "")) + len(_canonical(block.get("input", {}))))
    if kind == "tool_result":
        content = block.get("content")
        if content is None:
            return 1
        if isinstance(content, str):
            return _text_tokens(len(content))
        return sum(_block_tokens(b) for b in content)
    if kind == "thinking":
        return _text_tokens(len(block.get("thinking", "")))
    return _text_tokens(len(_canonical(_without_cache_control(block))))


def _tool_tokens(tool: dict) -> int:
    kind = str(tool.get("type", ""))
    for prefix, tokens in SERVER_TOOL_TOKENS.items():
        if kind.startswith(prefix):
            return tokens
    return _text_tokens(len(_canonical(_without_cache_control(tool)))) + TOOL_DEFINITION_TOKENS


def _has_cache_control(block: Any) -> dict | None:
    """The block's cache_control (or that of content nested in a tool_result), else None."""
    if not isinstance(block, dict):
        return None
    if isinstance(block.get("cache_control"), dict):
        return block["cache_control"]
    content = block.get("content")
    if block.get("type") == "tool_result" and isinstance(content, list):
        for inner in content:
            if isinstance(inner, dict) and isinstance(inner.get("cache_control"), dict):
                return inner["cache_control"]
    return None


@dataclass
class _Position:
    tokens: int
    key: str
    ttl: str | None  # "5m"/"1h" for a breakpoint, None otherwise


@dataclass
class _Prompt:
    positions: list[_Position] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(p.tokens for p in self.positions)


def _analyse(body: dict) -> _Prompt:
    """Split a request body into ordered, hashed, counted positions; ValueError if invalid for caching."""
    prompt = _Prompt()
    chain = hashlib.sha256(_canonical(["model", body.get("model")]).encode())

    def add(tokens: int, tag: Any, block: Any) -> None:
        chain.update(_canonical([tag, _without_cache_control(block)]).encode())
        cache_control = _has_cache_control(block)
        ttl = str(cache_control.get("ttl") or "5m") if cache_control is not None else None
        prompt.positions.append(_Position(tokens, chain.copy().hexdigest(), ttl))

    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    if tools:
        overhead = TOOL_USE_SYSTEM_TOKENS
        if any(str(t.get("type", "")).startswith("computer_") for t in tools):
            overhead += COMPUTER_USE_SYSTEM_TOKENS
        add(overhead, "tool-preamble", None)
        for tool in tools:
            add(_tool_tokens(tool), "tool", tool)

    system = body.get("system")
    for block in [text(system)] if isinstance(system, str) else system or []:
        add(_block_tokens(block), "system", block)

    chain.update(_canonical(["settings", body.get("tool_choice"), body.get("thinking")]).encode())
    for index, msg in enumerate(body.get("messages") or []):
        if not isinstance(msg, dict):
            continue
        content = msg.get("content")
        for block in [text(content)] if isinstance(content, str) else content or []:
            add(_block_tokens(block), ["message", index, msg.get("role")], block)

    top = body.get("cache_control")
    if isinstance(top, dict) and prompt.positions and prompt.positions[-1].ttl is None:
        prompt.positions[-1].ttl = str(top.get("ttl") or "5m")
    found = sum(p.ttl is not None for p in prompt.positions)
    if found > MAX_CACHE_BREAKPOINTS:
        raise ValueError(
            f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found {found}."
        )
    return prompt


def _account(prompt: _Prompt, cache: set[str] | None, min_cacheable_tokens: int) -> dict:
    """Split the prompt's tokens into read / created / uncached against `cache` (and update it)."""
    cache = set() if cache is None else cache
    positions = prompt.positions
    prefix = list(itertools.accumulate(p.tokens for p in positions))
    breakpoints = [i for i, p in enumerate(positions) if p.ttl is not None]

    hit = -1
    for bp in breakpoints:
        for i in range(bp, max(hit, bp - CACHE_LOOKBACK_BLOCKS - 1), -1):
            if positions[i].key in cache:
                hit = i
                break
    read = prefix[hit] if hit >= 0 else 0

    created = {"5m": 0, "1h": 0}
    start = hit
    for bp in breakpoints:
        if prefix[bp] < min_cacheable_tokens:
            continue
        cache.add(positions[bp].key)
        if bp > start:
            ttl = "1h" if positions[bp].ttl == "1h" else "5m"
            created[ttl] += prefix[bp] - (prefix[start] if start >= 0 else 0)
            start = bp
    creation = created["5m"] + created["1h"]
    return {
        "input_tokens": prompt.total - read - creation,
        "cache_creation_input_tokens": creation,
        "cache_read_input_tokens": read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": created["5m"],
            "ephemeral_1h_input_tokens": created["1h"],
        },
    }


def estimate_tokens(
    request_body: dict,
    cache: set[str] | None = None,
    *,
    min_cacheable_tokens: int = DEFAULT_MIN_CACHEABLE_TOKENS,
) -> dict:
    """The simulated input `usage` of a Messages request body, exactly as `FakeAnthropic` reports it.

    `cache` is the set of cached prefix keys: pass the same set across calls to simulate a session offline
    (it is updated in place); None means a cold cache that is thrown away. Returns `input_tokens`,
    `cache_creation_input_tokens`, `cache_read_input_tokens`, `cache_creation` (by TTL) and
    `total_input_tokens` (their sum). Raises ValueError for more than 4 cache breakpoints.
    """
    prompt = _analyse(request_body)
    usage = _account(prompt, cache, min_cacheable_tokens)
    usage["total_input_tokens"] = prompt.total
    return usage


def estimate_output_tokens(content: Iterable[dict]) -> int:
    """Simulated `output_tokens` of a reply: ceil(chars / 4) of its content JSON, at least 1."""
    return max(1, _text_tokens(len(_canonical(list(content)))))


# --------------------------------------------------------------------------------------------- server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeAnthropic

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connections reset by a client (or by stop()) are normal here; report anything else."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            time=time.monotonic(),
        )
        fake._record(request)
        try:
            self._route(fake, request)
        except OSError:  # the client went away (e.g. it timed out): nothing was delivered
            request.status = None
            self.close_connection = True
        except Exception as exc:  # a bug in the fake (or an odd body): say so instead of dropping silently
            fake.errors.append(exc)
            request.outcome = "fake_error"
            if request.status is None:
                msg = f"FakeAnthropic failed: {exc!r}"
                self._error(request, 500, "api_error", msg, extra_headers={"x-should-retry": "false"})

    def _route(self, fake: FakeAnthropic, request: Request) -> None:
        path = request.path.rstrip("/")
        if self.command != "POST" or path not in ("/v1/messages", "/v1/messages/count_tokens"):
            request.outcome = "not_found"
            self._error(request, 404, "not_found_error", f"{self.command} {request.path} is not faked")
            return
        body = request.body
        problem = _invalid(body, count_only=path.endswith("count_tokens"))
        prompt = None
        if problem is None:
            try:
                prompt = _analyse(body)
            except ValueError as exc:
                problem = str(exc)
        if problem is not None or prompt is None:
            request.outcome = "invalid"
            self._error(request, 400, "invalid_request_error", problem or "invalid request")
            return
        if path.endswith("count_tokens"):
            request.outcome = "count_tokens"
            self._json(request, 200, {"input_tokens": prompt.total})
            return
        reply, error = fake._next_reply(request)
        if reply is None:
            request.outcome = "responder_error" if error else "exhausted"
            msg = f"FakeAnthropic responder raised {error!r}" if error else "FakeAnthropic: script exhausted"
            self._error(request, 500, "api_error", msg, extra_headers={"x-should-retry": "false"})
            return
        request.reply = reply
        self._answer(fake, request, reply, prompt)

    def _answer(self, fake: FakeAnthropic, request: Request, reply: Reply, prompt: _Prompt) -> None:
        if reply.kind == "slow":
            if fake._stopping.wait(reply.delay) or reply.then is None:
                reply = drop()
            else:
                self._answer(fake, request, reply.then, prompt)
                return
        if reply.kind == "drop":
            request.outcome = "drop"
            self.close_connection = True
            return
        if reply.kind == "fault":
            request.outcome = "fault"
            headers = {}
            if reply.retry_after is not None:
                seconds = reply.retry_after
                headers["retry-after"] = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
            self._error(
                request, reply.status, reply.error_type or "api_error", reply.error_message or "", headers
            )
            return
        usage = fake._usage(prompt)
        if reply.usage is not None:
            usage = {
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                **reply.usage,
            }
        else:
            usage["output_tokens"] = estimate_output_tokens(reply.content)
        request.outcome = "message"
        request.usage = usage
        self._json(
            request,
            200,
            {
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "type": "message",
                "role": "assistant",
                "model": reply.model or request.get("model") or "claude-fake",
                "content": list(reply.content),
                "stop_reason": reply.stop_reason,
                "stop_sequence": None,
                "usage": usage,
            },
        )

    def _error(
        self,
        request: Request,
        status: int,
        error_type: str,
        msg: str,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        body = {"type": "error", "error": {"type": error_type, "message": msg}}
        self._json(request, status, body, extra_headers)

    def _json(
        self, request: Request, status: int, body: dict, extra_headers: dict[str, str] | None = None
    ) -> None:
        request_id = f"req_{uuid.uuid4().hex[:24]}"
        if body.get("type") == "error":
            body["request_id"] = request_id
        data = json.dumps(body).encode()
        request.status = status  # before writing, so it is set by the time the client has the answer
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", request_id)
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _invalid(body: Any, *, count_only: bool) -> str | None:
    """Why a Messages request body would be rejected with a 400, or None."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    required = ("model", "messages") if count_only else ("model", "max_tokens", "messages")
    for name in required:
        if name not in body:
            return f"{name}: Field required"
    if not isinstance(body["messages"], list):
        return "messages: Input should be a valid list"
    if body.get("stream") and not count_only:
        return "FakeAnthropic does not support stream=true; use non-streaming create"
    return None


class FakeAnthropic:
    """A scripted Anthropic Messages API on 127.0.0.1; see the module docstring.

    Replies in `script` (and those `add`ed later) are used in order, one per messages request. When the
    script is empty, `responder(request)` is asked (it gets the `Request`, whose `body`, `headers` and
    `first_user_text()` allow routing, e.g. for parallel attempts); if there is no responder, or it returns
    None, the request gets a 500 "script exhausted" (with `x-should-retry: false`, so the SDK does not
    retry) and is recorded with outcome "exhausted". Invalid requests (400) and count_tokens requests
    do not consume replies. Every request is appended to `requests`.
    """

    def __init__(
        self,
        script: list[Reply] | None = None,
        responder: Callable[[Request], Reply | None] | None = None,
        *,
        min_cacheable_tokens: int = DEFAULT_MIN_CACHEABLE_TOKENS,
    ) -> None:
        self.responder = responder
        self.min_cacheable_tokens = min_cacheable_tokens
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []  # exceptions raised by the responder or inside the fake
        self.cache: set[str] = set()
        self.base_url = ""
        self._script: deque[Reply] = deque(script or [])
        self._lock = threading.Lock()
        self._closed = threading.Condition(self._lock)  # notified when a connection's handler finishes
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def add(self, *replies: Reply) -> None:
        """Append replies to the script."""
        with self._lock:
            self._script.extend(replies)

    @property
    def remaining(self) -> int:
        """How many scripted replies are still unused."""
        with self._lock:
            return len(self._script)

    def messages_requests(self) -> list[Request]:
        """The recorded requests to the messages endpoint (not count_tokens or unknown paths)."""
        with self._lock:
            return [r for r in self.requests if r.path.rstrip("/") == "/v1/messages"]

    def total_usage(self) -> dict[str, int]:
        """The sums of the usage counters sent so far."""
        keys = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        totals = dict.fromkeys(keys, 0)
        with self._lock:
            for request in self.requests:
                for key in keys:
                    totals[key] += int((request.usage or {}).get(key) or 0)
        return totals

    def start(self) -> FakeAnthropic:
        """Start serving in a daemon thread on a free port; sets `base_url`."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-anthropic", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: wakes slow replies (they drop), closes open connections, frees the port.

        Returns within about a second at worst, normally at once, with every request record final.
        """
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        with self._closed:  # let the handlers finish, so the records are final when stop() returns
            self._closed.wait_for(lambda: not self._connections, timeout=1.0)
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- used by the handler threads

    def _track(self, conn: socket.socket, opened: bool) -> None:
        with self._lock:
            if opened:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)
                self._closed.notify_all()

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_reply(self, request: Request) -> tuple[Reply | None, BaseException | None]:
        with self._lock:
            if self._script:
                return self._script.popleft(), None
        if self.responder is None:
            return None, None
        try:
            return self.responder(request), None
        except Exception as exc:  # reported to the client as a 500, not swallowed silently
            self.errors.append(exc)
            return None, exc

    def _usage(self, prompt: _Prompt) -> dict:
        with self._lock:
            return _account(prompt, self.cache, self.min_cacheable_tokens)
