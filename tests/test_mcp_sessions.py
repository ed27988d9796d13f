"""`deskpilot mcp` sessions: task files, replay and goals through MCP, the session's recording, HTTP,
and robustness (disconnects, concurrent calls, the kill switch, a display that vanishes, bad options)."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import time
from pathlib import Path

import anyio

from agent.recording.writer import Recording
from tests.conftest import Probe, start_probe
from tests.fake_anthropic import FakeAnthropic, message, text, tool_use
from tests.mcp_harness import (
    DESKPILOT,
    ROOT,
    http_server,
    http_session,
    png_size,
    raw_stdio_session,
    recording_of,
    server_env,
    stdio_session,
    texts,
)
from vision.geometry import Size


def demo_task(folder: Path) -> Path:
    """examples/demo.yaml and the demo app it drives, writing their result into `folder`."""
    result = folder / "demo.json"
    yaml = (ROOT / "examples" / "demo.yaml").read_text(encoding="utf-8").replace("/tmp/deskpilot-demo.json",
                                                                              str(result))
    (folder / "demo_app.py").write_text((ROOT / "examples" / "demo_app.py").read_text(encoding="utf-8"))
    (folder / "demo.yaml").write_text(yaml, encoding="utf-8")
    return folder / "demo.yaml"


def recording_line(answer: str) -> Path:
    assert answer.splitlines()[-1].startswith("recording: "), answer
    return Path(answer.splitlines()[-1].removeprefix("recording: "))


def typed(probe: Probe) -> str:
    values = [e["value"] for e in probe.events() if e["type"] == "text"]
    return values[-1] if values else ""


def test_run_task_passing_failing_and_invalid(desktop, tmp_path: Path) -> None:
    failing = tmp_path / "failing.yaml"
    failing.write_text("name: failing\nsteps:\n  - wait: 0.2\nchecks:\n  - command: test -e no-such-file\n")

    async def main() -> None:
        async with stdio_session(desktop.display, tmp_path / "rec") as client:
            passed = await client.call_tool("run_task", {"path": str(demo_task(tmp_path))})
            assert not passed.is_error
            answer = texts(passed)
            assert answer.startswith("succeeded:"), answer
            assert answer.count("check ok") == 3 and "FAIL" not in answer
            task_recording = Recording.load(recording_line(answer))
            assert task_recording.meta["kind"] == "task" and task_recording.meta["status"] == "succeeded"
            assert passed.structured_content["status"] == "succeeded" and passed.structured_content["exit_code"] == 0
            assert json.loads((tmp_path / "demo.json").read_text())["name"] == "Ada Lovelace"

            failed = await client.call_tool("run_task", {"path": str(failing)})
            assert not failed.is_error  # a failed task is an outcome
            answer = texts(failed)
            assert answer.startswith("failed:") and "check FAIL command test -e no-such-file" in answer, answer
            assert Recording.load(recording_line(answer)).meta["status"] == "failed"
            assert failed.structured_content["exit_code"] == 1

            invalid = await client.call_tool("run_task", {"path": str(ROOT / "tests/tasks/invalid/scroll_amount.yaml")})
            assert invalid.is_error and "invalid task file" in texts(invalid) and "scroll" in texts(invalid)
            assert "Nothing was run" in texts(invalid)
            missing = await client.call_tool("run_task", {"path": str(tmp_path / "nope.yaml")})
            assert missing.is_error and "no such file" in texts(missing)

    anyio.run(main)
    steps = Recording.load(recording_of(tmp_path / "rec")).steps
    assert [(s["tool"], s["ok"], s.get("status")) for s in steps] == [
        ("run_task", True, "succeeded"), ("run_task", True, "failed"), ("run_task", False, None),
        ("run_task", False, None)]
    assert Path(steps[0]["recording"]).is_dir()


def test_the_session_recording_replays_and_reports_like_any_other(desktop_factory, tmp_path: Path) -> None:
    first = desktop_factory(Size(1280, 800))
    probe = start_probe(first, tmp_path / "first.jsonl")
    out = tmp_path / "rec"

    async def work() -> None:
        async with stdio_session(first.display, out) as client:
            await client.call_tool("screenshot", {})
            await client.call_tool("computer", {"action": "type", "text": "recorded over MCP"})
            found = (await client.call_tool("find", {"text": "over"})).structured_content["matches"][0]["center"]
            await client.call_tool("computer", {"action": "left_click", "coordinate": found})
            await client.call_tool("computer", {"action": "type", "text": "X"})
            await client.call_tool("computer", {"action": "key", "text": "ctrl+alt+Delete"})  # refused

    anyio.run(work)
    original = typed(probe)
    assert original.startswith("recorded o") and "X" in original and original != "recorded over MCPX"
    clicked = next(e for e in probe.events() if e["type"] == "press")
    path = recording_of(out)
    recording = Recording.load(path)
    meta = recording.meta
    assert meta["kind"] == "mcp" and meta["status"] == "succeeded" and meta["display"] == first.display
    assert meta["clients"] and meta["final_frame"] and meta["summary"]["steps"] == 6
    assert [s["tool"] for s in recording.steps] == ["screenshot", "computer", "find", "computer", "computer",
                                                    "computer"]
    assert [s["ok"] for s in recording.steps] == [True, True, True, True, True, False]
    assert all((path / s["frame"]).is_file() for s in recording.steps if s["frame"])
    assert recording.steps[3]["anchor"] and recording.steps[3]["timing"]["settle_ms"] is not None

    second = desktop_factory(Size(1280, 800))
    replayed = start_probe(second, tmp_path / "second.jsonl")
    result = subprocess.run([*DESKPILOT, "replay", str(path), "--display", second.display, "--out",
                             str(tmp_path / "replays")], capture_output=True, text=True, timeout=120,
                            env=server_env(), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    events = replayed.wait_for(lambda ev: any(e["type"] == "text" and e["value"] == original for e in ev))
    assert [(e["x"], e["y"]) for e in events if e["type"] == "press"] == [(clicked["x"], clicked["y"])]
    assert not any(e["type"] == "keypress" and e["keysym"] == "Delete" for e in events)  # refused: not replayed
    report = subprocess.run([*DESKPILOT, "report", str(path)], capture_output=True, text=True, timeout=60,
                            env=server_env(), cwd=ROOT)
    assert report.returncode == 0 and (path / "report.html").is_file(), report.stderr

    third = desktop_factory(Size(1280, 800))
    again = start_probe(third, tmp_path / "third.jsonl")

    async def through_mcp() -> None:
        async with stdio_session(third.display, out) as client:
            listing = json.loads((await client.read_resource("deskpilot://recordings")).contents[0].text)
            names = [r["name"] for r in listing["recordings"]]
            assert path.name in names and listing["recordings"][0]["status"] == "running"  # this session, newest
            done = await client.call_tool("replay", {"recording": path.name, "from": 1, "to": 4})
            assert not done.is_error and texts(done).startswith("succeeded"), texts(done)
            assert Recording.load(recording_line(texts(done))).meta["kind"] == "replay"
            meta = json.loads((await client.read_resource(f"deskpilot://recordings/{path.name}/meta")).contents[0].text)
            assert meta["kind"] == "mcp"
            html = (await client.read_resource(f"deskpilot://recordings/{path.name}/report")).contents[0].text
            assert html.lstrip().lower().startswith("<!doctype html")
            bad = await client.call_tool("replay", {"recording": "no-such-recording"})
            assert bad.is_error and "Nothing was run" in texts(bad)
            out_of_range = await client.call_tool("replay", {"recording": path.name, "from": 99})
            assert out_of_range.is_error and "--from 99 is out of range" in texts(out_of_range)
            from mcp.shared.exceptions import MCPError

            for uri, expected in (("deskpilot://recordings/..%2F..%2Fetc/meta", "Unknown resource"),
                                  ("deskpilot://recordings/nope/meta", "no recording called 'nope'")):
                try:
                    await client.read_resource(uri)
                except MCPError as exc:
                    assert expected in str(exc), str(exc)
                else:
                    raise AssertionError(f"{uri} was read")

    anyio.run(through_mcp)
    assert typed(again) == original


def test_disconnect_mid_drag_releases_the_button_and_finishes_the_recording(desktop, probe: Probe,
                                                                            tmp_path: Path) -> None:
    left: dict[str, float] = {}

    def shift_pressed() -> None:
        probe.wait_for(lambda ev: any(e["type"] == "keypress" and e["keysym"] == "Shift_L" for e in ev), 15)

    async def main() -> None:
        async with raw_stdio_session(desktop.display, tmp_path / "rec") as (client, raw):
            await client.call_tool("computer", {"action": "left_mouse_down", "coordinate": [200, 200]})
            await client.call_tool("computer", {"action": "mouse_move", "coordinate": [260, 240]})
            async def hold() -> None:
                with contextlib.suppress(Exception):  # the connection closes under it
                    await client.call_tool("computer", {"action": "hold_key", "text": "shift", "duration": 30})

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(hold)
                await anyio.to_thread.run_sync(shift_pressed)
                left["t"] = time.time()
                await raw.process.stdin.aclose()  # the client vanishes mid-drag, mid-action: no cancel, no goodbye
                with anyio.fail_after(15):
                    await raw.process.wait()
                tasks.cancel_scope.cancel()
            assert raw.process.returncode == 0

    anyio.run(main)
    events = probe.wait_for(lambda ev: any(e["type"] == "release" for e in ev), timeout=10)
    release = next(e for e in events if e["type"] == "release")
    shift_up = next(e for e in events if e["type"] == "keyrelease" and e["keysym"] == "Shift_L")
    assert (release["x"], release["y"], release["button"]) == (260, 240, 1)
    assert release["t"] - left["t"] < 3 and shift_up["t"] - left["t"] < 3
    recording = Recording.load(recording_of(tmp_path / "rec"))
    assert recording.meta["status"] == "succeeded" and recording.meta["ended"]
    assert recording.steps[-1]["action"]["action"] == "hold_key" and "interrupted" in recording.steps[-1]["error"]


def test_concurrent_calls_are_serialised_per_display(desktop, probe: Probe, tmp_path: Path) -> None:
    texts_typed = ["a" * 60, "b" * 60, "c" * 60]

    async def main() -> None:
        async with stdio_session(desktop.display, tmp_path / "rec") as client, anyio.create_task_group() as tasks:
            for value in texts_typed:
                tasks.start_soon(client.call_tool, "computer", {"action": "type", "text": value})

    anyio.run(main)
    final = probe.wait_for(lambda ev: any(e["type"] == "text" and len(e["value"]) == 180 for e in ev))
    value = [e["value"] for e in final if e["type"] == "text"][-1]
    assert re.fullmatch(r"(a{60}|b{60}|c{60}){3}", value) and set(value) == {"a", "b", "c"}, value


def test_http_transport_on_localhost(desktop_factory, tmp_path: Path) -> None:
    desktop = desktop_factory(Size(1920, 1080))
    probe = start_probe(desktop, tmp_path / "events.jsonl")
    out = tmp_path / "rec"
    with http_server(desktop.display, out) as (url, process):
        assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")

        async def main() -> None:
            async with http_session(url) as client:
                assert len((await client.list_tools()).tools) == 6
                assert png_size(await client.call_tool("screenshot", {})) == (1430, 804)
                result = await client.call_tool("computer", {"action": "left_click", "coordinate": [715, 402]})
                assert not result.is_error and png_size(result) == (1430, 804)
                await client.call_tool("computer", {"action": "left_mouse_down", "coordinate": [100, 100]})
            # that client ended its session holding the button: released
            probe.wait_for(lambda ev: [e["type"] for e in ev if e["type"] in ("press", "release")]
                           == ["press", "release", "press", "release"])

            async def type_in(value: str) -> None:
                async with http_session(url) as client:
                    await client.call_tool("computer", {"action": "type", "text": value})

            async with anyio.create_task_group() as tasks:  # two clients at once
                tasks.start_soon(type_in, "x" * 80)
                tasks.start_soon(type_in, "y" * 80)

            async with http_session(url) as client, anyio.create_task_group() as tasks:
                tasks.start_soon(client.call_tool, "computer", {"action": "hold_key", "text": "shift", "duration": 30})
                await anyio.to_thread.run_sync(lambda: probe.wait_for(
                    lambda ev: any(e["type"] == "keypress" and e["keysym"] == "Shift_L" for e in ev), 15))
                tasks.cancel_scope.cancel()  # the client cancels mid-action

        anyio.run(main)
        events = probe.wait_for(lambda ev: any(e["type"] == "keyrelease" and e["keysym"] == "Shift_L" for e in ev))
        presses = [(e["x"], e["y"]) for e in events if e["type"] == "press"]
        assert presses[0] == (960, 540)
        assert re.fullmatch(r"x{80}y{80}|y{80}x{80}", typed(probe)), typed(probe)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert "recording: " in process.log.strip().splitlines()[-1]
    meta = Recording.load(recording_of(out)).meta
    assert meta["status"] == "succeeded" and meta["transport"] == "http"


def test_kill_switch_stops_the_mcp_session(desktop, probe: Probe, tmp_path: Path) -> None:
    async def main() -> None:
        async with raw_stdio_session(desktop.display, tmp_path / "rec") as (client, raw):
            async with anyio.create_task_group() as tasks:
                box: dict = {}

                async def hold() -> None:
                    box["result"] = await client.call_tool("computer", {"action": "hold_key", "text": "shift",
                                                                        "duration": 30})

                tasks.start_soon(hold)
                await anyio.to_thread.run_sync(lambda: probe.wait_for(
                    lambda ev: any(e["type"] == "keypress" and e["keysym"] == "Shift_L" for e in ev), 15))
                await anyio.sleep(0.3)
                subprocess.run(["xdotool", "key", "ctrl+alt+shift+k"], env={"DISPLAY": desktop.display}, check=True)
            assert box["result"].is_error and "interrupted" in texts(box["result"])
            probe.mark()
            after = await client.call_tool("computer", {"action": "left_click", "coordinate": [10, 10]})
            assert after.is_error and "kill switch" in texts(after) and "Nothing was executed" in texts(after)
            assert not (await client.call_tool("screenshot", {})).is_error  # looking is still allowed
            task = await client.call_tool("run_task", {"path": str(ROOT / "examples/demo.yaml")})
            assert task.is_error and "kill switch" in texts(task)
        assert raw.process.returncode == 3

    anyio.run(main)
    time.sleep(0.3)
    assert not [e for e in probe.new_events() if e["type"] == "press"]
    meta = Recording.load(recording_of(tmp_path / "rec")).meta
    assert meta["status"] == "stopped" and "kill switch" in meta["result"]


def test_a_vanished_display_is_a_clear_error_and_the_server_keeps_running(desktop_factory, tmp_path: Path) -> None:
    desktop = desktop_factory(Size(1280, 800))

    async def main() -> None:
        async with raw_stdio_session(desktop.display, tmp_path / "rec") as (client, raw):
            assert not (await client.call_tool("screenshot", {})).is_error
            await anyio.to_thread.run_sync(desktop.stop)
            for tool, args in (("screenshot", {}), ("computer", {"action": "left_click", "coordinate": [5, 5]}),
                               ("find", {"text": "anything"})):
                result = await client.call_tool(tool, args)
                assert result.is_error and f"display {desktop.display} does not answer" in texts(result), texts(result)
            assert len((await client.list_tools()).tools) == 6  # still serving
        assert raw.process.returncode == 0

    anyio.run(main)
    recording = Recording.load(recording_of(tmp_path / "rec"))
    assert recording.meta["status"] == "succeeded" and [s["ok"] for s in recording.steps] == [True, False, False, False]


def test_run_goal_needs_a_configured_model_and_runs_with_one(desktop, probe: Probe, tmp_path: Path) -> None:
    async def main() -> None:
        env = server_env(PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
        async with stdio_session(desktop.display, tmp_path / "rec", env=env) as client:
            result = await client.call_tool("run_goal", {"goal": "click the middle"})
            assert result.is_error and "ANTHROPIC_API_KEY" in texts(result) and "Nothing was run" in texts(result)
            unknown = await client.call_tool("run_goal", {"goal": "x", "model": "nosuchfamily/model"})
            assert unknown.is_error and "unknown family" in texts(unknown)
        with FakeAnthropic() as fake:
            fake.add(message(tool_use("computer", {"action": "left_click", "coordinate": [640, 400]})),
                     message(text("Clicked the middle.")))
            env = server_env(ANTHROPIC_API_KEY="sk-test-not-a-real-key", ANTHROPIC_BASE_URL=fake.base_url)
            async with stdio_session(desktop.display, tmp_path / "rec2", env=env) as client:
                result = await client.call_tool("run_goal", {"goal": "click the middle"})
                assert not result.is_error and texts(result).startswith("succeeded"), texts(result)
                run = Recording.load(recording_line(texts(result)))
                assert run.meta["kind"] == "run" and run.meta["goal"] == "click the middle"

    anyio.run(main)
    assert [(e["x"], e["y"]) for e in probe.events() if e["type"] == "press"] == [(640, 400)]


def test_bad_options_are_usage_errors_and_a_missing_display_exits_4(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*DESKPILOT, "mcp", *args], capture_output=True, text=True, timeout=60,
                              env=server_env(), cwd=ROOT, stdin=subprocess.DEVNULL)

    for args, expected in ((("--transport", "carrier-pigeon"), "invalid choice"), (("--port", "70000"), "0..65535"),
                           (("--confirm", "maybe"), "invalid choice"), (("--display", "nowhere"), "invalid display")):
        result = run(*args)
        assert result.returncode == 2 and expected in result.stderr and result.stdout == "", (args, result.stderr)
    missing = run("--display", ":987", "--out", str(tmp_path))
    assert missing.returncode == 4 and ":987" in missing.stderr and missing.stdout == ""
    assert not any(tmp_path.iterdir())  # nothing recorded when nothing could be served


def test_a_broken_policy_file_or_out_folder_is_bad_input(desktop, tmp_path: Path) -> None:
    config = tmp_path / "config"
    (config / "deskpilot").mkdir(parents=True)
    (config / "deskpilot" / "policy.yaml").write_text("version: 1\nrules:\n  - name: x\n    decision: perhaps\n")
    out = tmp_path / "rec"
    broken = subprocess.run([*DESKPILOT, "mcp", "--display", desktop.display, "--out", str(out)],
                            capture_output=True, text=True, timeout=60, env=server_env(XDG_CONFIG_HOME=str(config)),
                            cwd=ROOT, stdin=subprocess.DEVNULL)
    assert broken.returncode == 2 and "policy.yaml" in broken.stderr and "perhaps" in broken.stderr, broken.stderr
    assert not out.exists()  # no recording left behind
    (tmp_path / "file").write_text("not a folder")
    unwritable = subprocess.run([*DESKPILOT, "mcp", "--display", desktop.display, "--out", str(tmp_path / "file")],
                                capture_output=True, text=True, timeout=60, env=server_env(), cwd=ROOT,
                                stdin=subprocess.DEVNULL)
    assert unwritable.returncode == 4 and "--out" in unwritable.stderr and "Traceback" not in unwritable.stderr


def test_http_port_in_use_exits_4(desktop, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = subprocess.run([*DESKPILOT, "mcp", "--display", desktop.display, "--transport", "http", "--port",
                                 port, "--out", str(tmp_path / "rec")], capture_output=True, text=True, timeout=60,
                                env=server_env(), cwd=ROOT)
    assert result.returncode == 4 and f"127.0.0.1:{port}" in result.stderr and "--port" in result.stderr

