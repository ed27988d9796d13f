"""`deskpilot mcp` driven by the official SDK's client over stdio, on a real Xvfb with the probe window.

Tools and schemas, the screenshot size, every computer action landing where the client pointed
(1280x800 and 1920x1080), policy refusals and invalid actions as errors that execute nothing,
`find`, the session's recording, and nothing but protocol on standard output.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import pytest

from actions.vocabulary import ACTION_NAMES
from agent.models import registry
from agent.recording.writer import Recording
from tests.conftest import Probe, start_probe
from tests.mcp_harness import png_size, raw_stdio_session, recording_of, stdio_session, texts
from vision.geometry import ScreenMap, Size

SIZES = [Size(1280, 800), Size(1920, 1080)]


def screen_map(size: Size) -> ScreenMap:
    return ScreenMap(size, registry.image_size("claude-sonnet-4-6", size))


def presses(events: list[dict], kind: str = "press") -> list[tuple[int, int, int]]:
    return [(e["x"], e["y"], e["button"]) for e in events if e["type"] == kind]


def assert_nothing_happened(probe: Probe, wait: float = 0.5) -> None:
    time.sleep(wait)
    acted = [e for e in probe.new_events() if e["type"] not in ("motion", "text")]
    assert acted == [], acted


def test_tools_resources_schemas_and_descriptions(desktop, tmp_path: Path) -> None:
    async def main() -> None:
        async with stdio_session(desktop.display, tmp_path / "rec") as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert set(tools) == {"screenshot", "computer", "find", "run_task", "replay", "run_goal"}
            computer = tools["computer"].input_schema
            assert computer["required"] == ["action"]
            assert computer["properties"]["action"]["enum"] == list(ACTION_NAMES)
            coordinate = computer["properties"]["coordinate"]["anyOf"][0]
            assert coordinate["type"] == "array" and coordinate["minItems"] == coordinate["maxItems"] == 2
            assert coordinate["items"]["type"] == "integer"
            for field in ("start_coordinate", "text", "scroll_direction", "scroll_amount", "duration", "region"):
                assert field in computer["properties"], field
            described = tools["computer"].description
            assert "1280x800" in described and "x 0..1279, y 0..799" in described
            for action in ("left_click_drag", "scroll_direction", "hold_key", "zoom", "xdotool"):
                assert action in described
            assert "1280x800" in tools["screenshot"].description
            assert tools["screenshot"].input_schema["properties"] == {}
            assert tools["screenshot"].annotations.read_only_hint is True
            assert tools["computer"].annotations.destructive_hint is True
            assert set(tools["find"].input_schema["properties"]) == {"text", "exact", "role", "name"}
            assert tools["run_task"].input_schema["required"] == ["path"]
            assert set(tools["replay"].input_schema["properties"]) == {"recording", "from", "to"}
            assert tools["run_goal"].input_schema["required"] == ["goal"]
            assert all(len(t.description) > 80 for t in tools.values())
            resources = [str(r.uri) for r in (await client.list_resources()).resources]
            templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
            assert resources == ["deskpilot://recordings"]
            assert sorted(templates) == ["deskpilot://recordings/{name}/meta", "deskpilot://recordings/{name}/report"]

    anyio.run(main)


@pytest.mark.parametrize("size", SIZES, ids=str)
def test_screenshot_is_one_png_within_claudes_budget(desktop_factory, tmp_path: Path, size: Size) -> None:
    desktop = desktop_factory(size)
    expected = screen_map(size).model

    async def main() -> None:
        async with stdio_session(desktop.display, tmp_path / "rec") as client:
            result = await client.call_tool("screenshot", {})
            assert not result.is_error
            width, height = png_size(result)
            assert (width, height) == (expected.width, expected.height)
            assert max(width, height) <= 1568 and width * height <= 1_150_000
            assert f"{width}x{height}" in texts(result)
            assert abs(width / height - size.width / size.height) < 0.01

    anyio.run(main)
    assert (expected.width, expected.height) == ((1280, 800) if size.width == 1280 else (1430, 804))


@pytest.mark.parametrize("size", SIZES, ids=str)
def test_every_computer_action_lands_where_the_client_pointed(desktop_factory, tmp_path: Path, size: Size) -> None:
    desktop = desktop_factory(size)
    probe = start_probe(desktop, tmp_path / "events.jsonl")
    mapping = screen_map(size)
    model = mapping.model

    def at(x: int, y: int) -> tuple[int, int]:
        sx, sy = mapping.to_screen(x, y)  # independent check of the mapping: within one model pixel
        assert abs(sx - x * mapping.ratio_x) <= mapping.ratio_x and abs(sy - y * mapping.ratio_y) <= mapping.ratio_y
        return sx, sy

    async def act(client, expect_image: bool = True, **action) -> object:
        result = await client.call_tool("computer", action)
        assert not result.is_error, texts(result)
        if expect_image:
            assert png_size(result) == (model.width, model.height)
        return result

    async def main() -> None:
        async with stdio_session(desktop.display, tmp_path / "rec") as client:
            points = {"left_click": (101, 77), "right_click": (640, 400), "middle_click": (model.width - 1, 5),
                      "double_click": (333, 222), "triple_click": (400, model.height - 1)}
            buttons = {"left_click": [1], "right_click": [3], "middle_click": [2], "double_click": [1, 1],
                       "triple_click": [1, 1, 1]}
            for name, point in points.items():
                probe.mark()
                await act(client, action=name, coordinate=list(point))
                count = len(buttons[name])
                events = probe.wait_for(lambda ev, n=count: len(presses(ev)) >= n)
                assert presses(events) == [(*at(*point), b) for b in buttons[name]], name

            probe.mark()
            await act(client, action="left_click", coordinate=[500, 300], text="shift")
            events = probe.wait_for(lambda ev: len(presses(ev)) == 1)
            assert presses(events) == [(*at(500, 300), 1)] and events[[e["type"] for e in events].index("press")][
                "state"] & 0x1  # Shift held during the click

            probe.mark()
            await act(client, action="mouse_move", coordinate=[250, 260])
            events = probe.wait_for(lambda ev: any(e["type"] == "motion" for e in ev))
            assert (events[-1]["x"], events[-1]["y"]) == at(250, 260)
            result = await act(client, expect_image=False, action="cursor_position")
            assert texts(result) == "X=250,Y=260"

            probe.mark()
            await act(client, action="left_click_drag", start_coordinate=[200, 200], coordinate=[450, 380])
            events = probe.wait_for(lambda ev: presses(ev, "release"))
            assert presses(events) == [(*at(200, 200), 1)] and presses(events, "release") == [(*at(450, 380), 1)]

            probe.mark()
            await act(client, action="left_mouse_down", coordinate=[300, 310])
            await act(client, action="mouse_move", coordinate=[360, 330])
            await act(client, action="left_mouse_up", coordinate=[420, 350])
            events = probe.wait_for(lambda ev: presses(ev, "release"))
            assert presses(events) == [(*at(300, 310), 1)] and presses(events, "release") == [(*at(420, 350), 1)]

            for direction, button in (("up", 4), ("down", 5)):
                probe.mark()
                await act(client, action="scroll", coordinate=[600, 500], scroll_direction=direction, scroll_amount=3)
                events = probe.wait_for(lambda ev: len(presses(ev)) >= 3)
                assert presses(events) == [(*at(600, 500), button)] * 3
                assert {e["scroll"] for e in events if e["type"] == "press"} == {direction}

            probe.mark()
            await act(client, action="left_click", coordinate=[50, 40])
            await act(client, action="type", text="Grüße, MCP!")
            await act(client, action="key", text="Return")
            events = probe.wait_for(lambda ev: any(e["type"] == "text" and e["value"].endswith("Grüße, MCP!\n")
                                                   for e in ev))
            probe.mark()
            started = time.time()
            await act(client, action="hold_key", text="shift", duration=0.5)
            events = probe.wait_for(lambda ev: any(e["type"] == "keyrelease" and e["keysym"] == "Shift_L" for e in ev))
            down = next(e["t"] for e in events if e["type"] == "keypress" and e["keysym"] == "Shift_L")
            up = next(e["t"] for e in events if e["type"] == "keyrelease" and e["keysym"] == "Shift_L")
            assert 0.45 <= up - down < 1.5 and down >= started - 0.1

            before = time.monotonic()
            await act(client, action="wait", duration=0.3)
            assert time.monotonic() - before >= 0.3
            zoom = await client.call_tool("computer", {"action": "zoom", "region": [0, 0, model.width // 4,
                                                                                    model.height // 4]})
            assert not zoom.is_error and "Zoomed region" in texts(zoom)
            width, height = png_size(zoom)
            assert width > model.width // 4  # shown larger than its share of the screenshot
            shot = await act(client, action="screenshot")
            assert f"{model}" in texts(shot)

    anyio.run(main)
    steps = Recording.load(recording_of(tmp_path / "rec")).steps
    click = next(s for s in steps if s["action"].get("action") == "left_click")
    assert click["model_action"]["coordinate"] == [101, 77] and click["action"]["coordinate"] == list(at(101, 77))
    assert click["anchor"]["point"] == list(at(101, 77)) and click["frame"] and click["ok"]


def test_policy_refusal_is_an_error_and_nothing_runs(desktop, probe: Probe, tmp_path: Path) -> None:
    questions: list[str] = []
    answers = iter(["deny", "allow", "always"])

    async def elicit(context, params):
        from mcp_types import ElicitResult

        questions.append(params.message)
        return ElicitResult(action="accept", content={"decision": next(answers)})

    delete = {"action": "key", "text": "ctrl+alt+Delete"}

    def deletes() -> list[dict]:
        return [e for e in probe.new_events() if e["type"] == "keypress" and e["keysym"] == "Delete"]

    async def main() -> None:
        async with stdio_session(desktop.display, tmp_path / "deny", "--confirm", "deny") as client:
            result = await client.call_tool("computer", delete)
            assert result.is_error and "session-keys" in texts(result) and "Nothing was executed" in texts(result)
            assert not [c for c in result.content if c.type == "image"]
        async with stdio_session(desktop.display, tmp_path / "ask-unable") as client:  # --confirm ask, no elicitation
            result = await client.call_tool("computer", delete)
            assert result.is_error and "none is available" in texts(result)
        assert_nothing_happened(probe)
        assert deletes() == []
        async with stdio_session(desktop.display, tmp_path / "ask", elicitation_callback=elicit) as client:
            result = await client.call_tool("computer", delete)
            assert result.is_error and "refused by the user" in texts(result)
            assert_nothing_happened(probe)
            result = await client.call_tool("computer", delete)  # allowed once
            assert not result.is_error, texts(result)
            await anyio.sleep(0.3)
            assert len(deletes()) == 1
            for _ in range(2):  # "always": asked once more, then not again
                result = await client.call_tool("computer", delete)
                assert not result.is_error, texts(result)
            await anyio.sleep(0.3)
            assert len(deletes()) == 2
        async with stdio_session(desktop.display, tmp_path / "allow", "--confirm", "allow") as client:
            result = await client.call_tool("computer", delete)
            assert not result.is_error
        await anyio.sleep(0.3)
        assert len(deletes()) == 1

    anyio.run(main)
    assert len(questions) == 3 and all("session-keys" in q and "ctrl+alt+Delete" in q for q in questions)
    refused = Recording.load(recording_of(tmp_path / "deny")).steps
    assert len(refused) == 1 and refused[0]["ok"] is False and "session-keys" in refused[0]["error"]
    assert refused[0]["frame"] is None  # nothing ran


def test_invalid_and_out_of_bounds_actions_are_errors_that_run_nothing(desktop, probe: Probe, tmp_path: Path) -> None:
    cases = [
        ({"action": "left_click", "coordinate": [1280, 10]}, "(1280, 10) is outside the 1280x800 screenshot"),
        ({"action": "left_click", "coordinate": [10, 800]}, "y 0..799"),
        ({"action": "left_click", "coordinate": [-1, 5]}, "coordinate"),
        ({"action": "left_click_drag", "coordinate": [10, 10]}, "start_coordinate: Field required"),
        ({"action": "mouse_move"}, "coordinate: Field required"),
        ({"action": "scroll", "coordinate": [5, 5], "scroll_direction": "down", "scroll_amount": 0}, "scroll_amount"),
        ({"action": "key", "text": "ctrl+nosuchkey"}, "nosuchkey"),
        ({"action": "zoom", "region": [10, 10, 5, 5]}, "region"),
        ({"action": "teleport"}, "Input should be"),
        ({"coordinate": [5, 5]}, "action"),
    ]

    async def main() -> None:
        async with stdio_session(desktop.display, tmp_path / "rec") as client:
            for action, expected in cases:
                result = await client.call_tool("computer", action)
                assert result.is_error, action
                assert expected in texts(result), (action, texts(result))
            result = await client.call_tool("no_such_tool", {})
            assert result.is_error

    anyio.run(main)
    assert_nothing_happened(probe)
    steps = Recording.load(recording_of(tmp_path / "rec")).steps
    assert len(steps) == len(cases) + 1 and all(s["ok"] is False and s["frame"] is None for s in steps)


def test_find_returns_every_match_in_screenshot_pixels(desktop_factory, tmp_path: Path) -> None:
    size = Size(1920, 1080)
    desktop = desktop_factory(size)
    probe = start_probe(desktop, tmp_path / "events.jsonl")
    mapping = screen_map(size)

    async def main() -> None:
        async with stdio_session(desktop.display, tmp_path / "rec") as client:
            await client.call_tool("computer", {"action": "type", "text": "Quokka marmot\n\n\nmarmot"})
            result = await client.call_tool("find", {"text": "marmot"})
            assert not result.is_error, texts(result)
            data = json.loads(texts(result))
            assert data == result.structured_content
            matches = data["matches"]
            # (the text cursor blinking after the second word may be read as a letter stuck to it)
            assert len(matches) == 2 and all(m["text"].startswith("marmot") for m in matches), matches
            for match in matches:
                x0, y0, x1, y1 = match["box"]
                assert x0 <= match["center"][0] < x1 and y0 <= match["center"][1] < y1
                assert x1 <= mapping.model.width and y1 <= mapping.model.height
            assert matches[0]["center"][1] < matches[1]["center"][1]  # reading order
            first = (await client.call_tool("find", {"text": "Quokka"})).structured_content["matches"]
            assert len(first) == 1 and first[0]["center"][0] < matches[0]["center"][0]
            probe.mark()
            await client.call_tool("computer", {"action": "double_click", "coordinate": first[0]["center"]})
            events = probe.wait_for(lambda ev: len(presses(ev)) == 2)
            sx, sy = presses(events)[0][:2]  # the click on the found centre lands on the word on screen
            bx0, by0 = mapping.to_screen(*first[0]["box"][:2])
            bx1, by1 = mapping.to_screen(first[0]["box"][2] - 1, first[0]["box"][3] - 1)
            assert bx0 <= sx <= bx1 and by0 <= sy <= by1

            missing = await client.call_tool("find", {"text": "marmosets"})
            assert missing.is_error and "is not on the screen" in texts(missing) and "marmot" in texts(missing)
            assert missing.structured_content["closest"]
            role = await client.call_tool("find", {"role": "button", "name": "OK"})  # a Tk window: no tree
            assert role.is_error and "no application on this display exposes an accessibility tree" in texts(role)
            both = await client.call_tool("find", {"text": "OK", "role": "button"})
            assert both.is_error and "either text, or role and name" in texts(both)
            empty = await client.call_tool("find", {})
            assert empty.is_error and "empty" in texts(empty)

    anyio.run(main)
    steps = Recording.load(recording_of(tmp_path / "rec")).steps
    finds = [s for s in steps if s["tool"] == "find"]
    assert finds[0]["action"] == {"tool": "find", "text": "marmot"} and finds[0]["frame"] and finds[0]["ok"]


def test_stdout_carries_nothing_but_protocol(desktop, tmp_path: Path) -> None:
    task = tmp_path / "noisy.yaml"
    task.write_text("name: noisy\n"
                    "setup:\n"
                    "  - launch: echo STRAY-FROM-LAUNCH; python3 -c \"print('STRAY-FROM-PYTHON')\"\n"
                    "  - run: echo STRAY-FROM-RUN\n"
                    "steps:\n  - wait: 0.5\n"
                    "checks:\n  - command: echo STRAY-FROM-CHECK\n", encoding="utf-8")
    errors = tmp_path / "stderr.log"

    async def main() -> None:
        with open(errors, "w") as stderr:
            async with raw_stdio_session(desktop.display, tmp_path / "rec", stderr=stderr) as (client, raw):
                await client.list_tools()
                result = await client.call_tool("run_task", {"path": str(task)})
                assert not result.is_error and texts(result).startswith("succeeded"), texts(result)
                await client.call_tool("screenshot", {})
                await client.call_tool("computer", {"action": "left_click", "coordinate": [5, 5]})
        assert raw.stdout_lines, "the server wrote nothing at all"
        for line in raw.stdout_lines:
            message = json.loads(line)
            assert message.get("jsonrpc") == "2.0", line[:200]
        everything = b"\n".join(raw.stdout_lines)
        assert b"STRAY-FROM-LAUNCH" not in everything and b"STRAY-FROM-PYTHON" not in everything
        assert raw.process.returncode == 0

    anyio.run(main)
    assert "STRAY-FROM-LAUNCH" in errors.read_text() and "STRAY-FROM-PYTHON" in errors.read_text()
    assert errors.read_text().strip().splitlines()[-1].startswith("recording: ")


TERMINAL_LOOKALIKE = """
import sys, tkinter as tk
root = tk.Tk(className="xterm")  # WM_CLASS xterm/XTerm: a terminal to the policy
root.geometry("600x200+0+0")
entry = tk.Entry(root, font=("DejaVu Sans", 14))
entry.pack(fill="x")
out = open(sys.argv[1], "a")
entry.bind("<KeyRelease>", lambda e: (out.write(entry.get() + "\\n"), out.flush()))
root.after(300, entry.focus_force)
root.mainloop()
"""


def test_typing_a_risky_command_is_refused_in_a_terminal_only(desktop_factory, tmp_path: Path) -> None:
    import sys

    desktop, other = desktop_factory(), desktop_factory()
    probe = start_probe(other, tmp_path / "events.jsonl")
    typed = tmp_path / "typed.txt"
    desktop.launch([sys.executable, "-c", TERMINAL_LOOKALIKE, str(typed)])
    time.sleep(2)

    async def main() -> None:
        async with stdio_session(desktop.display, tmp_path / "rec", "--confirm", "deny") as client:
            await client.call_tool("computer", {"action": "left_click", "coordinate": [300, 15]})
            refused = await client.call_tool("computer", {"action": "type", "text": "sudo rm -rf /srv\n"})
            assert refused.is_error and "typed" in texts(refused), texts(refused)
            harmless = await client.call_tool("computer", {"action": "type", "text": "ls -l"})
            assert not harmless.is_error, texts(harmless)
        async with stdio_session(other.display, tmp_path / "rec2", "--confirm", "deny") as client:
            prose = await client.call_tool("computer", {"action": "type", "text": "sudo rm -rf /srv"})
            assert not prose.is_error, texts(prose)  # the probe is known not to be a terminal

    anyio.run(main)
    probe.wait_for(lambda ev: any(e["type"] == "text" and e["value"] == "sudo rm -rf /srv" for e in ev))
    lines = typed.read_text().splitlines() if typed.exists() else []
    assert lines and lines[-1] == "ls -l" and not any("sudo" in line for line in lines), lines


def test_a_client_on_the_2026_protocol_is_refused_not_asked(desktop, probe: Probe, tmp_path: Path) -> None:
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    from tests.mcp_harness import DESKPILOT, ROOT, mcp_args, server_env

    asked: list[str] = []

    async def elicit(context, params):
        asked.append(params.message)
        raise AssertionError("a 2026-07-28 call cannot ask mid-call")

    async def main() -> None:
        params = StdioServerParameters(command=DESKPILOT[0], args=[*DESKPILOT[1:], *mcp_args(desktop.display,
                                                                                              tmp_path / "rec")],
                                       env=server_env(), cwd=str(ROOT))
        async with stdio_client(params) as (read, write), \
                ClientSession(read, write, elicitation_callback=elicit) as client:
            assert (await client.discover()).supported_versions == ["2026-07-28"]
            result = await client.call_tool("computer", {"action": "key", "text": "ctrl+alt+Delete"})
            assert result.is_error and "none is available" in texts(result), texts(result)
            clicked = await client.call_tool("computer", {"action": "left_click", "coordinate": [20, 20]})
            assert not clicked.is_error and png_size(clicked) == (1280, 800)

    anyio.run(main)
    assert asked == []
    assert not any(e["type"] == "keypress" and e["keysym"] == "Delete" for e in probe.events())
