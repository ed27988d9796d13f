"""What MCP adds to an action: a `computer` left_click over `deskpilot mcp` against the same step in-process.

MCP: the official SDK's client calls `computer` {left_click} on `deskpilot mcp` over stdio and
times request to response, the settled screenshot included (validation, the safety policy, the
action, settling, the session's recording, PNG and base64, the protocol both ways).
In-process: the same click through deskpilot's own executor, the same settling
(`wait_until_settled`) and the same screenshot (the model-size PNG), with nothing else.
Both run 50 times, alternating, on one busy 1280x800 virtual desktop (a full-screen text window),
in the same run; warm-up calls are not counted. The server writes a step's recording while its
answer travels, and every call first waits for the previous step to be written: the alternation
waits for that line before the in-process step, so the two never overlap. A further 50 MCP calls
back to back (no pause, so each also waits for the previous step's recording) are reported too.
Prints one JSON object, with the load average.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

CALLS = 50
WARMUP = 3
TARGET_MS = 30.0
POINTS = [(400, 300), (700, 420)]  # alternated, so every click moves the text cursor


def _ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


def _p90(values: list[float]) -> float:
    return round(sorted(values)[int(len(values) * 0.9) - 1] * 1000, 1)


async def _run(display: str, out: Path) -> dict:
    import anyio.to_thread
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    from actions.vocabulary import parse_action
    from agent.models import registry
    from agent.session import open_executor
    from vision.encode import encode_for_model
    from vision.settle import SettleConfig, wait_until_settled

    root = Path(__file__).resolve().parent.parent
    params = StdioServerParameters(command=sys.executable, args=["-m", "agent.ui.cli", "mcp", "--display", display,
                                                                 "--out", str(out), "--confirm", "deny"],
                                   env={"PYTHONPATH": str(root), "PATH": os.environ.get("PATH", "")}, cwd=str(root))
    executor = open_executor(display)
    model = registry.image_size("claude-sonnet-4-6", executor.screen.size)
    settle = SettleConfig()
    last = [executor.screen.grab()]

    def in_process(point: tuple[int, int]) -> float:
        started = time.perf_counter()
        result = executor.perform(parse_action({"action": "left_click", "coordinate": list(point)}))
        assert result.ok, result.error
        settled = wait_until_settled(executor.screen.grab, settle, last[0])
        encode_for_model(settled.frame.pixels, model)
        last[0] = settled.frame
        return time.perf_counter() - started

    def recorded(count: int) -> None:  # the server writes a step after answering: let it finish first
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            steps = list(out.glob("*-mcp-*/steps.jsonl"))
            if steps and steps[0].read_bytes().count(b"\n") >= count:
                return
            time.sleep(0.002)

    mcp_times: list[float] = []
    local_times: list[float] = []
    back_to_back: list[float] = []
    sizes: list[int] = []
    with open(out / "server.log", "w") as errors:
        async with stdio_client(params, errlog=errors) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            await client.call_tool("screenshot", {})
            for n in range(WARMUP + CALLS):
                point = POINTS[n % 2]
                started = time.perf_counter()
                result = await client.call_tool("computer", {"action": "left_click", "coordinate": list(point)})
                elapsed = time.perf_counter() - started
                assert not result.is_error and result.content[-1].type == "image", result.content
                await anyio.to_thread.run_sync(recorded, n + 2)
                local = await anyio.to_thread.run_sync(in_process, POINTS[(n + 1) % 2])
                if n >= WARMUP:
                    mcp_times.append(elapsed)
                    local_times.append(local)
                    sizes.append(len(result.content[-1].data))
            for n in range(CALLS):  # no pause: each call also waits for the previous step's recording
                started = time.perf_counter()
                await client.call_tool("computer", {"action": "left_click", "coordinate": list(POINTS[n % 2])})
                back_to_back.append(time.perf_counter() - started)
    executor.close()
    steps = [json.loads(line) for p in out.glob("*-mcp-*/steps.jsonl") for line in p.read_text().splitlines()]
    settle_ms = [s["timing"]["settle_ms"] for s in steps if s["action"].get("action") == "left_click"][WARMUP:][:CALLS]
    mcp_ms, local_ms = _ms(mcp_times), _ms(local_times)
    return {
        "benchmark": "mcp_overhead", "screen": str(executor.screen.size), "image": str(model), "calls": CALLS,
        "mcp_left_click_median_ms": mcp_ms, "mcp_left_click_p90_ms": _p90(mcp_times),
        "in_process_median_ms": local_ms, "in_process_p90_ms": _p90(local_times),
        "overhead_median_ms": round(mcp_ms - local_ms, 1), "ratio": round(mcp_ms / local_ms, 2),
        "mcp_back_to_back_median_ms": _ms(back_to_back),
        "server_settle_median_ms": round(statistics.median(settle_ms), 1) if settle_ms else None,
        "response_base64_bytes": int(statistics.median(sizes)), "target_overhead_ms": TARGET_MS,
        "meets_target": mcp_ms - local_ms < TARGET_MS, "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def main() -> None:
    """Start a busy virtual desktop, measure both ways in one run, print the figures."""
    import anyio

    from benchmarks._screens import text_desktop
    from vision.geometry import Size

    desktop = text_desktop(Size(1280, 800))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            figures = anyio.run(_run, desktop.display, Path(tmp))
    finally:
        desktop.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
