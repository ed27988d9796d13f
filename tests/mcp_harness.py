"""Clients for `deskpilot mcp` in tests: the official SDK's ClientSession over stdio and streamable HTTP.

`stdio_session` starts `deskpilot mcp` as a client would (stdio_client + ClientSession +
initialize). `raw_stdio_session` does the same over the server's own pipes, keeping every byte it
wrote to standard output, to check that nothing but protocol messages reach it. `http_server`
starts `deskpilot mcp --transport http --port 0` and yields its URL.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DESKPILOT = [sys.executable, "-m", "agent.ui.cli"]


def server_env(**extra: str) -> dict[str, str]:
    """The server's environment: no $DISPLAY (it is named with --display), this tree first on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")}
    env["PYTHONPATH"] = str(ROOT)
    env["XDG_CONFIG_HOME"] = str(Path(extra.pop("XDG_CONFIG_HOME", "/nonexistent-deskpilot-test-config")))
    return {**env, **extra}


def mcp_args(display: str, out: Path, *extra: str) -> list[str]:
    """`deskpilot mcp` arguments for a display and a recordings folder."""
    return ["mcp", "--display", display, "--out", str(out), *extra]


@asynccontextmanager
async def stdio_session(display: str, out: Path, *extra: str, errlog: Any = None, env: dict | None = None,
                        **session: Any) -> AsyncIterator[Any]:
    """An initialized ClientSession with `deskpilot mcp` over stdio."""
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=DESKPILOT[0], args=[*DESKPILOT[1:], *mcp_args(display, out, *extra)],
                                   env=env or server_env(), cwd=str(ROOT))
    async with stdio_client(params, errlog=errlog or sys.stderr) as (read, write), \
            ClientSession(read, write, **session) as client:
        await client.initialize()
        yield client


class RawServer:
    """`deskpilot mcp` over its own pipes: every line it wrote to standard output is kept."""

    def __init__(self, process: Any) -> None:
        self.process = process
        self.stdout_lines: list[bytes] = []


@asynccontextmanager
async def raw_stdio_session(display: str, out: Path, *extra: str, stderr: Any = None) -> AsyncIterator[Any]:
    """(ClientSession, RawServer): the SDK client over pipes this harness owns."""
    import anyio
    from mcp import ClientSession
    from mcp.shared.message import SessionMessage
    from mcp_types import JSONRPCMessage
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(JSONRPCMessage)
    process = await anyio.open_process([*DESKPILOT, *mcp_args(display, out, *extra)], env=server_env(),
                                       cwd=str(ROOT), stderr=stderr or sys.stderr)
    raw = RawServer(process)
    to_client_w, to_client_r = anyio.create_memory_object_stream[Any](100)
    to_server_w, to_server_r = anyio.create_memory_object_stream[Any](100)

    async def pump_out() -> None:
        buffer = b""
        async for chunk in process.stdout:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                raw.stdout_lines.append(line)
                try:
                    message = adapter.validate_json(line)
                except Exception as exc:  # a stray line: kept for the test, passed on as an error
                    await to_client_w.send(exc)
                    continue
                await to_client_w.send(SessionMessage(message))
        if buffer:
            raw.stdout_lines.append(buffer)
        await to_client_w.aclose()

    async def pump_in() -> None:
        async for message in to_server_r:
            data = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
            try:
                await process.stdin.send(data.encode())
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                return  # the test closed the pipe on purpose

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(pump_out)
        tasks.start_soon(pump_in)
        async with ClientSession(to_client_r, to_server_w) as client:
            await client.initialize()
            yield client, raw
        await to_server_w.aclose()
        with contextlib.suppress(Exception):
            await process.stdin.aclose()
        with anyio.fail_after(20):
            await process.wait()
        tasks.cancel_scope.cancel()


@contextmanager
def http_server(display: str, out: Path, *extra: str, env: dict | None = None) -> Iterator[tuple[str, Any]]:
    """`deskpilot mcp --transport http --port 0` running; (its URL, the process). Stopped with SIGTERM after."""
    log = out.parent / f"http-server-{time.monotonic_ns()}.log"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w+b") as errors:
        process = subprocess.Popen([*DESKPILOT, *mcp_args(display, out, "--transport", "http", "--port", "0", *extra)],
                                   env=env or server_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=errors)
        try:
            deadline = time.monotonic() + 60
            url = None
            while url is None:
                found = re.search(r"listening on (http://\S+)", log.read_text(errors="replace"))
                url = found.group(1) if found else None
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the HTTP server did not start: {log.read_text(errors='replace')}")
                time.sleep(0.05)
            yield url, process
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=30)
            process.log = log.read_text(errors="replace")  # type: ignore[attr-defined]


@asynccontextmanager
async def http_session(url: str, **session: Any) -> AsyncIterator[Any]:
    """An initialized ClientSession over streamable HTTP."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client(url) as (read, write), ClientSession(read, write, **session) as client:
        await client.initialize()
        yield client


def texts(result: Any) -> str:
    """The text blocks of a tool result, joined."""
    return "\n".join(c.text for c in result.content if c.type == "text")


def png_size(result: Any) -> tuple[int, int]:
    """(width, height) of the one PNG in a tool result."""
    images = [c for c in result.content if c.type == "image"]
    assert len(images) == 1 and images[0].mime_type == "image/png", result.content
    data = base64.b64decode(images[0].data)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def recording_of(out: Path) -> Path:
    """The one mcp recording in `out`."""
    found = [p for p in out.iterdir() if "-mcp-" in p.name]
    assert len(found) == 1, found
    return found[0]
