"""A local fake of the OpenAI API (chat completions, Responses, models), for driving the real `openai` SDK.

`FakeOpenAI` is a small HTTP server on 127.0.0.1 answering

* `POST /v1/chat/completions` with scripted `chat(...)` replies (content and/or function tool_calls),
* `POST /v1/responses` with scripted `response(...)` replies (output items: computer_call, message,
  reasoning, function_call),
* `GET /v1/models` with the names in `models`,

records every request (`requests`; `Request.images()` decodes the data-URL images it carried) and
injects faults (`fault(status, retry_after=...)`, `drop()`, `slow(seconds, then)`). A reply of the
wrong kind for its endpoint, or an exhausted script, is a 500 with `x-should-retry: false`.

Like a vLLM server started without `--enable-auto-tool-choice`, a fake made with
`tools_supported=False` answers a chat request that carries `tools` with a 400. Responses requests
with a `computer_use_preview` tool must set `truncation: "auto"` (a 400 otherwise, as the real API);
a `previous_response_id` must name a response this fake gave.

Usage is simulated: input tokens are ceil(chars / 4) of the request's text plus ceil(w * h / 784)
per image; output tokens ceil(chars / 4) of the reply's JSON.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import math
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_ids = itertools.count(1)
TOOLS_REFUSED = ('"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set')


@dataclass(frozen=True)
class Reply:
    """One scripted answer: build it with `chat`, `response`, `fault`, `drop` or `slow`."""

    kind: str  # "chat" | "response" | "fault" | "drop" | "slow"
    body: dict = field(default_factory=dict)
    status: int = 200
    message: str = ""
    retry_after: float | None = None
    delay: float = 0.0
    then: Reply | None = None


def function_call(name: str, arguments: dict | str, id: str | None = None) -> dict:
    """A chat tool_calls entry; `arguments` a dict (sent as JSON text) or the text itself."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": id or f"call_{next(_ids)}", "type": "function", "function": {"name": name, "arguments": text}}


def chat(content: str | None = None, *tool_calls: dict, usage: dict | None = None, model: str | None = None,
         finish_reason: str | None = None) -> Reply:
    """A chat completion whose message has `content` and `tool_calls`."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    return Reply("chat", {"message": message, "usage": usage, "model": model,
                          "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop")})


def computer_call(action: dict, call_id: str | None = None, checks: tuple[dict, ...] = ()) -> dict:
    """A Responses `computer_call` item; `checks` are pending safety checks ({id, code, message})."""
    n = next(_ids)
    return {"type": "computer_call", "id": f"cu_{n}", "call_id": call_id or f"call_{n}", "action": action,
            "pending_safety_checks": list(checks), "status": "completed"}


def message_item(text: str) -> dict:
    """A Responses assistant `message` item with one output_text."""
    return {"type": "message", "id": f"msg_{next(_ids)}", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def reasoning_item(summary: str) -> dict:
    """A Responses `reasoning` item with a summary."""
    return {"type": "reasoning", "id": f"rs_{next(_ids)}", "summary": [{"type": "summary_text", "text": summary}]}


def function_call_item(name: str, arguments: dict, call_id: str | None = None) -> dict:
    """A Responses `function_call` item."""
    n = next(_ids)
    return {"type": "function_call", "id": f"fc_{n}", "call_id": call_id or f"call_{n}", "name": name,
            "arguments": json.dumps(arguments), "status": "completed"}


def response(*items: dict, usage: dict | None = None, model: str | None = None) -> Reply:
    """A Responses API response whose output is `items`."""
    return Reply("response", {"output": list(items), "usage": usage, "model": model})


def fault(status: int, message: str | None = None, retry_after: float | None = None) -> Reply:
    """An error answer `{"error": {"message", "type", "code"}}`; `retry_after` seconds as the header."""
    return Reply("fault", status=status, message=message or f"fake error {status}", retry_after=retry_after)


def drop() -> Reply:
    """Read the request, then close the connection without answering."""
    return Reply("drop")


def slow(seconds: float, then: Reply) -> Reply:
    """Answer with `then` after `seconds` (stopping the server drops it)."""
    return Reply("slow", delay=seconds, then=then)


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG header, or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


@dataclass
class Request:
    """One recorded request: method, path, lower-cased headers, JSON body, what the fake did."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    time: float
    outcome: str = "pending"
    status: int | None = None

    def image_urls(self) -> list[str]:
        """Every image URL in the request, in order (chat messages, Responses input items)."""
        found: list[str] = []

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                url = value.get("image_url")
                if isinstance(url, dict):
                    url = url.get("url")
                if isinstance(url, str):
                    found.append(url)
                for key, inner in value.items():
                    if key != "image_url":
                        walk(inner)
            elif isinstance(value, list):
                for inner in value:
                    walk(inner)

        walk(self.body)
        return found

    def images(self) -> list[tuple[int, int]]:
        """(width, height) of every data-URL PNG the request carried, in order."""
        sizes = []
        for url in self.image_urls():
            if url.startswith("data:image/png;base64,"):
                size = png_size(base64.b64decode(url.split(",", 1)[1][:64] + "=="))
                if size:
                    sizes.append(size)
        return sizes


def _text_chars(value: Any) -> int:
    if isinstance(value, str):
        return 0 if value.startswith("data:") else len(value)
    if isinstance(value, dict):
        return sum(_text_chars(v) for k, v in value.items() if k not in ("image_url",))
    if isinstance(value, list):
        return sum(_text_chars(v) for v in value)
    return 0


def estimate_input(request: Request) -> int:
    """Simulated input tokens of a request."""
    images = sum(math.ceil(w * h / 784) for w, h in request.images())
    body = {k: v for k, v in (request.body or {}).items() if k in ("messages", "input", "tools", "instructions")}
    return math.ceil(_text_chars(body) / 4) + images


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connections reset by a client (or by stop()) are normal here."""


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
        request = Request(self.command, urlsplit(self.path).path.rstrip("/"),
                          {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
        fake._record(request)
        try:
            self._route(fake, request)
        except OSError:
            request.status = None
            self.close_connection = True
        except Exception as exc:  # a bug in the fake: said, not swallowed
            fake.errors.append(exc)
            request.outcome = "fake_error"
            if request.status is None:
                self._error(request, 500, f"FakeOpenAI failed: {exc!r}", {"x-should-retry": "false"})

    def _route(self, fake: FakeOpenAI, request: Request) -> None:
        path = request.path
        if self.command == "GET" and path == "/v1/models":
            request.outcome = "models"
            self._json(request, 200, {"object": "list", "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "fake"} for name in fake.models]})
            return
        if self.command != "POST" or path not in ("/v1/chat/completions", "/v1/responses"):
            request.outcome = "not_found"
            self._error(request, 404, f"{self.command} {request.path} is not faked")
            return
        problem = fake._invalid(request)
        if problem:
            request.outcome = "invalid"
            self._error(request, 400, problem)
            return
        reply = fake._next_reply(request)
        if reply is None:
            request.outcome = "exhausted"
            self._error(request, 500, "FakeOpenAI: script exhausted", {"x-should-retry": "false"})
            return
        self._answer(fake, request, reply)

    def _answer(self, fake: FakeOpenAI, request: Request, reply: Reply) -> None:
        if reply.kind == "slow":
            if fake._stopping.wait(reply.delay) or reply.then is None:
                reply = drop()
            else:
                self._answer(fake, request, reply.then)
                return
        if reply.kind == "drop":
            request.outcome = "drop"
            self.close_connection = True
            return
        if reply.kind == "fault":
            request.outcome = "fault"
            headers = {} if reply.retry_after is None else {"retry-after": f"{reply.retry_after:g}"}
            self._error(request, reply.status, reply.message, headers)
            return
        wanted = "chat" if request.path.endswith("chat/completions") else "response"
        if reply.kind != wanted:
            request.outcome = "fake_error"
            self._error(request, 500, f"FakeOpenAI: a {reply.kind} reply was scripted for {request.path}",
                        {"x-should-retry": "false"})
            return
        request.outcome = reply.kind
        model = reply.body.get("model") or request.body.get("model")
        if reply.kind == "chat":
            self._json(request, 200, fake._chat_body(request, reply, model))
        else:
            self._json(request, 200, fake._response_body(request, reply, model))

    def _error(self, request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        kind = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                429: "rate_limit_exceeded"}.get(status, "server_error")
        self._json(request, status, {"error": {"message": message, "type": kind, "param": None, "code": None}},
                   headers)

    def _json(self, request: Request, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        request.status = status
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class FakeOpenAI:
    """A scripted OpenAI API on 127.0.0.1 (see the module docstring); `base_url` ends in /v1."""

    def __init__(self, script: list[Reply] | None = None, responder: Callable[[Request], Reply | None] | None = None,
                 *, tools_supported: bool = True, models: tuple[str, ...] = ("fake-model",)) -> None:
        self.responder = responder
        self.tools_supported = tools_supported
        self.models = models
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []
        self.base_url = ""
        self._script: deque[Reply] = deque(script or [])
        self._responses: set[str] = set()
        self._lock = threading.Lock()
        self._closed = threading.Condition(self._lock)
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
        """Scripted replies not used yet."""
        with self._lock:
            return len(self._script)

    def api_requests(self) -> list[Request]:
        """The chat and Responses requests that got an answer from the script (not 400s, not /models)."""
        with self._lock:
            return [r for r in self.requests if r.outcome in ("chat", "response")]

    def start(self) -> FakeOpenAI:
        """Serve in a daemon thread on a free port."""
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; slow replies drop, open connections close."""
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
        with self._closed:
            self._closed.wait_for(lambda: not self._connections, timeout=1.0)

    def __enter__(self) -> FakeOpenAI:
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

    def _next_reply(self, request: Request) -> Reply | None:
        with self._lock:
            if self._script:
                return self._script.popleft()
        return self.responder(request) if self.responder else None

    def _invalid(self, request: Request) -> str | None:
        body = request.body
        if not isinstance(body, dict) or not body.get("model"):
            return "model: field required"
        if body.get("stream"):
            return "FakeOpenAI does not stream"
        if request.path.endswith("chat/completions"):
            if not isinstance(body.get("messages"), list) or not body["messages"]:
                return "messages: a non-empty list is required"
            if body.get("tools") and not self.tools_supported and body.get("tool_choice") != "none":
                return TOOLS_REFUSED
            return None
        if "input" not in body:
            return "input: field required"
        if any(t.get("type") == "computer_use_preview" for t in body.get("tools") or []) \
                and body.get("truncation") != "auto":
            return "truncation must be 'auto' when using the computer_use_preview tool"
        previous = body.get("previous_response_id")
        if previous is not None and previous not in self._responses:
            return f"Previous response with id '{previous}' not found."
        return None

    def _chat_body(self, request: Request, reply: Reply, model: str) -> dict:
        message = reply.body["message"]
        completion = max(1, math.ceil(len(json.dumps(message)) / 4))
        prompt = estimate_input(request)
        usage = reply.body.get("usage") or {"prompt_tokens": prompt, "completion_tokens": completion,
                                            "total_tokens": prompt + completion}
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "message": message,
                                             "finish_reason": reply.body["finish_reason"], "logprobs": None}],
                "usage": usage}

    def _response_body(self, request: Request, reply: Reply, model: str) -> dict:
        output = reply.body["output"]
        completion = max(1, math.ceil(len(json.dumps(output)) / 4))
        prompt = estimate_input(request)
        usage = reply.body.get("usage") or {
            "input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion,
            "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
        response_id = f"resp_{uuid.uuid4().hex[:16]}"
        with self._lock:
            self._responses.add(response_id)
        body = request.body
        return {"id": response_id, "object": "response", "created_at": int(time.time()), "model": model,
                "status": "completed", "output": output, "usage": usage, "error": None, "incomplete_details": None,
                "instructions": body.get("instructions"), "metadata": {}, "parallel_tool_calls": True,
                "temperature": 1.0, "top_p": 1.0, "tool_choice": "auto", "tools": body.get("tools") or [],
                "truncation": body.get("truncation") or "disabled",
                "previous_response_id": body.get("previous_response_id")}
