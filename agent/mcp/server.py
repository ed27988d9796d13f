"""`deskpilot mcp`: the desktop as an MCP server, over stdio or streamable HTTP, built on the official SDK.

The server (`mcp.server.mcpserver.MCPServer`) serves one `Desk`. Over stdio, nothing but protocol
messages reaches standard output: while serving, the SDK points file descriptor 1 at standard
error (so programs started by a task cannot write into the stream) and `sys.stdout` is redirected
to standard error too, for anything in deskpilot that prints; logs go to standard error. Over
HTTP the server listens on 127.0.0.1 only (`--port 0`: a free port), at path /mcp.

One recording of kind `mcp` covers the server's whole life, with every call: a middleware logs
the calls the SDK refuses before a tool runs (unknown tool, arguments that do not fit the
schema), the tools log the rest. The recording ends when the client disconnects (stdio), on
SIGTERM or Ctrl-C, with every key and button released; its path is the last line on standard
error, as `recording: PATH`.
"""

from __future__ import annotations

import contextlib
import contextvars
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from agent.errors import EnvironmentProblem, ExitCode
from agent.mcp.desk import Answer, Desk, DeskConfig
from agent.mcp.recordings import Reporter

DEFAULT_PORT = 8765
HOST = "127.0.0.1"
TRANSPORTS = ("stdio", "http")
_recorded: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar("deskpilot_mcp_recorded", default=None)


def log(message: str) -> None:
    """One line for the person running the server, on standard error."""
    print(message, file=sys.stderr, flush=True)


def _mark_recorded() -> None:
    flag = _recorded.get()
    if flag is not None:
        flag[0] = True


def recorder_middleware(desk: Desk) -> Any:
    """Logs tool calls that end in an error before any tool recorded them, and the clients that connect."""

    async def middleware(ctx: Any, call_next: Any) -> Any:
        params = ctx.params if isinstance(ctx.params, dict) else {}
        if ctx.method == "initialize":
            info = params.get("clientInfo") or {}
            with contextlib.suppress(Exception):
                clients = [*(desk.recorder.meta.get("clients") or []),
                           {"name": info.get("name"), "version": info.get("version")}]
                desk.recorder.set_meta(clients=clients)
        if ctx.method != "tools/call":
            return await call_next(ctx)
        flag = [False]
        token = _recorded.set(flag)
        name, args = str(params.get("name")), params.get("arguments") or {}
        try:
            result = await call_next(ctx)
        except Exception as exc:
            if not flag[0]:
                _log_refused(desk, name, args, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            _recorded.reset(token)
        if not flag[0] and isinstance(result, dict) and result.get("isError"):
            text = " ".join(c.get("text", "") for c in result.get("content") or [] if isinstance(c, dict))
            _log_refused(desk, name, args, text or "refused")
        return result

    return middleware


def _log_refused(desk: Desk, name: str, args: Any, text: str) -> None:
    with contextlib.suppress(Exception):
        desk.journal.log_call(name, args if isinstance(args, dict) else {"arguments": args}, Answer(text, error=True))


def build_server(desk: Desk, reporter: Reporter | None = None) -> Any:
    """The MCPServer for `desk`, with its tools and resources."""
    from mcp.server.mcpserver import MCPServer

    from agent.mcp.tools import register

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        with contextlib.redirect_stdout(sys.stderr):  # whatever prints while serving misses the protocol stream
            yield

    server = MCPServer(
        "deskpilot", title="deskpilot desktop", version=str(desk.recorder.meta.get("version") or "unknown"),
        log_level="WARNING", lifespan=lifespan, middleware=[recorder_middleware(desk)],
        instructions=(f"deskpilot serves the desktop {desk.display}. Take a screenshot first; "
                      f"{desk.describe_screen()} Act with the computer tool, one action per call; each returns "
                      "the screen after it settled. find locates text by OCR. Every action is checked by "
                      "deskpilot's safety policy and recorded."))
    register(server, desk, _mark_recorded, reporter)
    return server


def release_on_session_end(app: Any, desk: Desk) -> Any:
    """The HTTP app, releasing every key and button (a left_mouse_down too) when a client ends its session."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)
        if scope.get("type") == "http" and scope.get("method") == "DELETE":
            import anyio.to_thread

            await anyio.to_thread.run_sync(desk.release_all)

    return wrapped


async def serve_http(server: Any, desk: Desk, port: int, announce: Callable[[str], None]) -> None:
    """Serve streamable HTTP on 127.0.0.1:`port` (0: a free port) until interrupted."""
    import socket

    import uvicorn

    app = release_on_session_end(server.streamable_http_app(host=HOST), desk)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or exc
        raise EnvironmentProblem(f"cannot listen on {HOST}:{port}: {reason}; choose another --port") from None
    with sock:
        uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        announce(f"http://{HOST}:{sock.getsockname()[1]}/mcp")
        await uv.serve(sockets=[sock])


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def serve(config: DeskConfig, *, port: int = DEFAULT_PORT, reporter: Reporter | None = None) -> tuple[int, Path]:
    """Serve until the client disconnects (stdio) or the server is interrupted; (exit code, recording).

    BadInput / EnvironmentProblem when the display, the policy or the port cannot be had (nothing served).
    """
    import anyio

    if config.transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {config.transport!r}")
    desk = Desk(config)
    status: str | None = None
    message = "the MCP session ended"
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        server = build_server(desk, reporter)
        where = "standard input and output" if config.transport == "stdio" else "HTTP"
        log(f"deskpilot mcp: serving display {desk.display} over {where}; {desk.describe_screen()}")
        log(f"deskpilot mcp: this session's recording is {desk.recorder.path}")
        if config.transport == "stdio":
            anyio.run(server.run_stdio_async)
        else:
            anyio.run(serve_http, server, desk, port, lambda url: log(f"deskpilot mcp: listening on {url}"))
    except KeyboardInterrupt as exc:
        message = f"the server was stopped ({exc or 'Ctrl-C'})"
    except EnvironmentProblem:
        status, message = "error", "the server could not start"
        raise
    except Exception as exc:  # a crash of the server itself: the recording still ends, naming it
        status, message = "error", f"the MCP server failed: {type(exc).__name__}: {exc}"
        log(f"deskpilot mcp: {message}")
    finally:
        signal.signal(signal.SIGTERM, previous)
        recording = desk.close(status, message)
    code = ExitCode.FAILED if status == "error" else (ExitCode.STOPPED if desk.stopped else ExitCode.OK)
    return int(code), recording


__all__ = ["DEFAULT_PORT", "HOST", "TRANSPORTS", "build_server", "log", "recorder_middleware", "serve",
           "serve_http"]
