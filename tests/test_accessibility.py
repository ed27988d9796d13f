"""Accessibility targets on real GTK applications: galculator's keys, a GTK form, a zenity dialog, `inspect`.

Every desktop here is a real Xvfb with its own D-Bus session and accessibility bus (started by
VirtualDesktop); the applications expose their trees through GTK's AT-SPI bridge.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.recording.writer import Recording
from agent.session import RunOptions
from agent.tasks.loader import load_task
from agent.tasks.runner import run_task
from tests.test_taskfile import VALID, _validate
from vision.locate.accessibility import NoTree, Snapshot, aria_role, roles_for
from vision.locate.atspi import AtspiTree
from vision.locate.find import AmbiguousMatch, NotFound

ROOT = Path(__file__).resolve().parent.parent
GTK_FORM = ROOT / "tests" / "gtk_form.py"
DEMO_APP = ROOT / "examples" / "demo_app.py"

pytest.importorskip("gi", reason="accessibility needs PyGObject (the a11y extra)")


def run(desktop, folder: Path, body: str) -> tuple[int, Recording]:
    """Run a task file written from `body` on `desktop`; (exit code, its recording)."""
    path = folder / "task.yaml"
    path.write_text(body, encoding="utf-8")
    outcome = run_task(load_task(path), RunOptions(display=desktop.display, out=folder / "rec", workdir=folder),
                       desktop=desktop, kill_switch=False)
    return outcome.result.exit_code, Recording.load(outcome.recording)


def wait_for_element(desktop, role: str, name: str, timeout: float = 30) -> None:
    tree = AtspiTree(desktop.env())
    deadline = time.monotonic() + timeout
    while True:
        try:
            Snapshot(tree).find(role, name)
            return
        except NotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        finally:
            tree.close()


def deskpilot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.ui.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


# ----------------------------------------------------------------------------- roles


def test_roles_are_aria_names_and_toolkit_names_still_work() -> None:
    assert roles_for("button") == {"push button", "toggle button", "push button menu"}
    assert roles_for("Push-Button") == {"push button"}  # the toolkit's own name, however spelled
    assert aria_role("toggle button") == "button" and aria_role("entry") == "textbox"
    assert aria_role("label") == "label"  # ARIA has no name for it
    with pytest.raises(ValueError, match="unknown role 'buton' \\(did you mean 'button'\\?\\)"):
        roles_for("buton")


def test_role_targets_in_every_place_validate_against_the_schema() -> None:
    from agent.tasks.loader import task_json_schema

    task = load_task(VALID / "roles.yaml")
    kinds = [s.kind for s in task.steps]
    assert kinds == ["click", "double_click", "triple_click", "right_click", "move", "drag", "scroll", "wait_for",
                     "expect"]
    assert task.steps[0].describe() == "click button 'Save'"
    assert task.steps[2].value.text == "OK"  # the fallback
    assert task.steps[5].value.to.role == "button" and task.steps[6].value.target.index == -1
    assert task.checks[0].value.role == "status"
    schema = task_json_schema()
    data = __import__("yaml").safe_load((VALID / "roles.yaml").read_text(encoding="utf-8"))
    assert _validate(data, schema, schema) == []
    assert "A11yTarget" in schema["$defs"] and "role" in schema["$defs"]["A11yQuery"]["required"]


# ----------------------------------------------------------------------------- galculator


def test_galculator_keys_by_role_and_name(desktop, tmp_path: Path) -> None:
    code, recording = run(desktop, tmp_path, """
setup:
  - launch: galculator
  - wait_for: {role: button, name: "7", timeout: 30}
steps:
  - click: {role: button, name: "7"}
  - click: {role: button, name: "*"}
  - click: {role: button, name: "9"}
  - click: {role: button, name: "="}
checks:
  - screen: {text: "63"}
""")
    assert code == 0, recording.meta.get("error")
    clicks = [s for s in recording.steps if s["action"]["action"] == "left_click"]
    assert [s["target"]["method"] for s in clicks] == ["a11y"] * 4
    assert [s["element"]["name"] for s in clicks] == ["7", "*", "9", "="]
    assert all(s["element"]["role"] == "button" and s["element"]["atspi_role"] == "toggle button" for s in clicks)
    seven = clicks[0]
    x0, y0, x1, y1 = seven["element"]["box"]
    assert x0 <= seven["action"]["coordinate"][0] < x1 and y0 <= seven["action"]["coordinate"][1] < y1
    assert seven["element"]["path"][0][:2] == ["window", "galculator"]


def test_a_name_equal_to_the_query_wins_and_ties_are_errors(desktop) -> None:
    desktop.launch(["galculator"])
    wait_for_element(desktop, "button", "7")
    tree = AtspiTree(desktop.env())
    try:
        snapshot = Snapshot(tree, (0, 0, 1280, 800))
        plus = snapshot.find("button", "+")  # also in "M+" and "+/-": the whole name ranks first
        assert plus[0].name == "+"
        with pytest.raises(AmbiguousMatch) as tie:
            snapshot.find("button", "M")
        assert {"MS", "MR", "M+"} <= {c.name for c in tie.value.candidates}
        assert "add `index`" in str(tie.value)
        picked = snapshot.find("button", "M", index=0)
        assert len(picked) == 1 and picked[0].name in ("MS", "MR", "M+")
        assert snapshot.find("button", "ms")[0].name == "MS"  # case-insensitive
        with pytest.raises(NotFound):
            snapshot.find("button", "ms", exact=True)
        with pytest.raises(NotFound, match="element with role 'checkbox' and name '7' not found.*the name matches "
                                           "other roles: button '7'"):
            snapshot.find("checkbox", "7")
        region = snapshot.find("button", "7")[0].box
        with pytest.raises(NotFound):
            snapshot.find("button", "9", region=region)
    finally:
        tree.close()
    # as on a host: no display to read a published bus from, only the session bus of the environment
    session = AtspiTree({"DBUS_SESSION_BUS_ADDRESS": desktop.env()["DBUS_SESSION_BUS_ADDRESS"]})
    try:
        assert Snapshot(session).find("button", "7")[0].name == "7"
    finally:
        session.close()


def test_menus_by_role_and_name_and_the_item_under_a_point(desktop, tmp_path: Path) -> None:
    desktop.launch(["galculator"])
    wait_for_element(desktop, "button", "7")
    code, recording = run(desktop, tmp_path, """
steps:
  - click: {role: menu, name: View}
  - click: {role: menuitem, name: Scientific Mode}
  - expect: {role: button, name: sin}
  - click: {role: menu, name: View}
""")
    assert code == 0, recording.meta.get("error")
    assert recording.steps[1]["element"]["atspi_role"] == "radio menu item"
    tree = AtspiTree(desktop.env())
    try:
        snapshot = Snapshot(tree, (0, 0, 1280, 800))
        basic = snapshot.find("menuitem", "Basic Mode")[0]  # the open menu lies over the window's own widgets
        under = snapshot.at(basic.center)
        assert under is not None and (under.role, under.name) == ("menuitem", "Basic Mode")
        assert snapshot.find("menuitem", "Scientific Mode")[0].states.count("checked") == 1
    finally:
        tree.close()


# ----------------------------------------------------------------------------- a GTK form and a dialog


def test_gtk_form_fields_and_buttons_by_role_and_name(desktop, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    code, recording = run(desktop, tmp_path, f"""
setup:
  - launch: [{sys.executable}, {GTK_FORM}, {out}, --at, "300,200"]
  - wait_for: {{role: window, name: GTK form, timeout: 30}}
steps:
  - click: {{role: textbox, name: Name}}
  - type: Ada
  - click: {{role: textbox, index: 1}}
  - type: ada@example.org
  - click: {{role: checkbox, name: Subscribe}}
  - click: {{role: button, name: Save, exact: true}}
  - expect: {{role: label, name: Saved}}
checks:
  - file: {{path: {out}, contains: ada@example.org}}
  - screen: {{role: checkbox, name: Subscribe}}
""")
    assert code == 0, recording.meta.get("error")
    assert json.loads(out.read_text()) == {"name": "Ada", "email": "ada@example.org", "subscribe": True}
    name_field = recording.steps[0]
    assert name_field["element"]["name"] == "Name:" and name_field["element"]["role"] == "textbox"
    expect = recording.steps[-1]
    assert expect["condition"]["method"] == "a11y" and expect["condition"]["name"] == "Saved"
    assert recording.meta["checks"][1]["ok"] is True


def test_an_element_that_does_not_show_is_named_never_clicked(desktop, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    desktop.launch([sys.executable, str(GTK_FORM), str(out)])
    wait_for_element(desktop, "button", "Save")
    for target, expected in (("{role: button, name: Secret, timeout: 0.5}", "exists but does not show: button "
                                                                             "'Secret'"),
                             ("{role: button, name: Item 25, timeout: 0.5}", "does not show: button 'Item 25'"),
                             ("{role: button, name: Nothing like it, timeout: 0.5}",
                              "not found among")):
        code, recording = run(desktop, tmp_path, f"steps:\n  - click: {target}\n")
        assert code == 1
        assert expected in recording.meta["error"], recording.meta["error"]
        assert recording.steps == []  # nothing was clicked


def test_zenity_dialog_entry_and_button(desktop, tmp_path: Path) -> None:
    out = tmp_path / "answer.txt"
    code, recording = run(desktop, tmp_path, f"""
setup:
  - launch: zenity --entry --title Ask --text "Your name:" > {out}
  - wait_for: {{role: button, name: OK, timeout: 30}}
steps:
  - click: {{role: textbox}}
  - type: Grace
  - click: {{role: button, name: OK, exact: true}}
checks:
  - file: {{path: {out}, contains: Grace}}
""")
    assert code == 0, recording.meta.get("error")
    assert out.read_text().strip() == "Grace"


# ----------------------------------------------------------------------------- no tree


def test_without_a_tree_role_targets_fail_clearly_or_fall_back_to_text(desktop_factory, tmp_path: Path) -> None:
    bare = desktop_factory(accessibility=False)
    assert bare.env()["NO_AT_BRIDGE"] == "1"  # as when dbus-daemon or at-spi2-core is missing
    assert bare.accessibility_problem == "accessibility is switched off for this virtual desktop"
    setup = f"setup:\n  - launch: [{sys.executable}, {DEMO_APP}, {tmp_path / 'x.json'}]\n" \
            "  - wait_for: {text: Demo form, timeout: 30}\n"
    code, recording = run(bare, tmp_path, setup + "steps:\n  - click: {role: button, name: Submit}\n")
    assert code == 4 and recording.meta["status"] == "error"
    assert "no accessibility tree: accessibility is switched off for this virtual desktop" in recording.meta["error"]
    code, recording = run(bare, tmp_path, setup + "steps:\n  - click: {role: button, name: Submit, text: Submit}\n")
    assert code == 0, recording.meta.get("error")
    assert recording.steps[0]["target"]["method"] == "ocr"


def test_a_tk_window_has_no_tree_and_the_error_says_so(desktop, tmp_path: Path) -> None:
    desktop.launch([sys.executable, str(DEMO_APP), str(tmp_path / "x.json")])
    code, recording = run(desktop, tmp_path, "setup:\n  - wait_for: {text: Demo form, timeout: 30}\n"
                                             "steps:\n  - click: {role: button, name: Submit, timeout: 1}\n")
    assert code == 1
    assert "no application on this display exposes an accessibility tree" in recording.meta["error"]
    assert "Tk programs never do" in recording.meta["error"]


def test_no_session_bus_is_a_clear_error() -> None:
    tree = AtspiTree({"DISPLAY": ":999"})
    with pytest.raises(NoTree, match="there is no D-Bus session bus"):
        tree.nodes()
    with pytest.raises(NoTree, match="there is no D-Bus session bus"):  # remembered, not retried
        tree.nodes()


def test_desktop_buses_end_with_the_desktop(desktop_factory) -> None:
    desktop = desktop_factory()
    address = desktop.env()["DBUS_SESSION_BUS_ADDRESS"]
    assert address.startswith("unix:") and desktop.env()["QT_LINUX_ACCESSIBILITY_ALWAYS_ON"] == "1"
    assert "NO_AT_BRIDGE" not in desktop.env()
    pids = [p for p in os.listdir("/proc") if p.isdigit() and _environ_has(p, address)]
    assert pids  # dbus-daemon, at-spi-bus-launcher and its own bus
    desktop.stop()
    deadline = time.monotonic() + 5
    while any(os.path.exists(f"/proc/{p}") and _alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if os.path.exists(f"/proc/{p}") and _alive(p)]


def _environ_has(pid: str, text: str) -> bool:
    try:
        return text.encode() in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def _alive(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


# ----------------------------------------------------------------------------- inspect


def test_inspect_prints_the_tree_and_the_element_at_a_point(desktop) -> None:
    desktop.launch(["galculator"])
    wait_for_element(desktop, "button", "7")
    tree = deskpilot("inspect", "--display", desktop.display)
    assert tree.returncode == 0, tree.stderr
    lines = tree.stdout.splitlines()
    assert lines[0] == "application 'galculator'"
    assert any(line.strip().startswith("window 'galculator' [") for line in lines)
    keys = [line.strip() for line in lines if line.strip().startswith("button '")]
    assert len(keys) >= 27 and any(k.startswith("button '7' [") for k in keys)
    assert lines[-1] == f"{len(lines) - 2} elements showing on {desktop.display}"

    listing = json.loads(deskpilot("inspect", "--display", desktop.display, "--json").stdout)
    seven = next(e for e in listing if e["role"] == "button" and e["name"] == "7")
    x = (seven["box"][0] + seven["box"][2]) // 2
    y = (seven["box"][1] + seven["box"][3]) // 2
    at = deskpilot("inspect", "--display", desktop.display, "--at", f"{x},{y}")
    assert at.returncode == 0, at.stderr
    assert at.stdout.splitlines()[0].startswith(f"button '7' at {seven['box']}")
    assert "target: {role: button, name: \"7\"}" in at.stdout
    one = json.loads(deskpilot("inspect", "--display", desktop.display, "--at", f"{x},{y}", "--json").stdout)
    assert one["name"] == "7" and one["path"][0][:2] == ["window", "galculator"]
    empty = deskpilot("inspect", "--display", desktop.display, "--at", "1200,700")
    assert empty.returncode == 1 and "no accessible element at 1200,700" in empty.stderr
    outside = deskpilot("inspect", "--display", desktop.display, "--at", "5000,10")
    assert outside.returncode == 2 and "lies outside the 1280x800 screen" in outside.stderr


# ----------------------------------------------------------------------------- observations


def test_observe_screenshot_and_tree_lists_the_elements_in_model_pixels(desktop, tmp_path: Path) -> None:
    from dataclasses import replace

    from agent.loop import LoopConfig
    from agent.models.scripted import ScriptedModel, computer
    from agent.session import run_goal
    from agent.types import ToolTurn, UserTurn
    from vision.geometry import Size

    desktop.launch(["galculator"])
    wait_for_element(desktop, "button", "7")
    tree = AtspiTree(desktop.env())
    seven = Snapshot(tree).find("button", "7")[0]
    tree.close()
    half = (seven.center[0] * 640 // 1280, seven.center[1] * 400 // 800)
    options = RunOptions(out=tmp_path, loop=LoopConfig(observe="screenshot+tree"))
    model = ScriptedModel([[computer("left_click", coordinate=list(half))]], image_size=lambda s: Size(640, 400))
    assert run_goal("press 7", options, desktop=desktop, model=model, kill_switch=False).result.exit_code == 0
    first = model.requests[0]["history"][0]
    assert isinstance(first, UserTurn) and first.parts[0] == "press 7" and len(first.images) == 1
    listing = first.parts[2].splitlines()
    assert listing[0].startswith("Interactive elements on the screen")
    line = next(x for x in listing if x.startswith('button "7" at '))
    x, y = (int(v) for v in line.split(" at ")[1].split()[0].split(","))
    assert abs(x - half[0]) <= 1 and abs(y - half[1]) <= 1  # the model's pixels, not the screen's
    assert sum(1 for x in listing if x.startswith("button ")) >= 27
    assert not any(x.startswith(("group", "filler", "label")) for x in listing)  # interactive ones only
    after = model.requests[1]["history"][-1]
    assert isinstance(after, ToolTurn)
    result = after.results[0][1]
    assert result.image is not None and result.system.startswith("Interactive elements on the screen")

    plain = ScriptedModel([[computer("left_click", coordinate=list(half))]], image_size=lambda s: Size(640, 400))
    run_goal("press 7", replace(options, loop=LoopConfig()), desktop=desktop, model=plain, kill_switch=False)
    assert len(plain.requests[0]["history"][0].parts) == 2 and plain.requests[1]["history"][-1].results[0][1].system \
        is None


def test_old_element_lists_are_dropped_in_batches(desktop, tmp_path: Path) -> None:
    from agent.loop import LIST_BATCH, LIST_KEEP, LoopConfig
    from agent.models.scripted import ScriptedModel, computer
    from agent.session import run_goal
    from agent.types import ToolTurn, UserTurn

    desktop.launch(["galculator"])
    wait_for_element(desktop, "button", "7")
    steps = LIST_KEEP + LIST_BATCH + 2
    model = ScriptedModel([[computer("mouse_move", coordinate=[900 + n, 600])] for n in range(steps)])
    options = RunOptions(out=tmp_path, loop=LoopConfig(observe="screenshot+tree"))
    assert run_goal("move", options, desktop=desktop, model=model, kill_switch=False).result.exit_code == 0

    def listed(turn: object) -> bool:
        if isinstance(turn, UserTurn):
            return len(turn.parts) == 3
        return isinstance(turn, ToolTurn) and bool(turn.results[0][1].system)

    counts = [sum(map(listed, request["history"])) for request in model.requests]
    assert counts[:LIST_KEEP + LIST_BATCH] == list(range(1, LIST_KEEP + LIST_BATCH + 1))
    assert counts[LIST_KEEP + LIST_BATCH] == LIST_KEEP  # the batch dropped at once
    assert all(listed(request["history"][-1]) for request in model.requests)  # the newest always has its list


def test_observe_without_a_tree_says_so_once(desktop_factory, tmp_path: Path) -> None:
    from agent.loop import LoopConfig
    from agent.models.scripted import ScriptedModel, computer
    from agent.session import run_goal

    bare = desktop_factory(accessibility=False)
    model = ScriptedModel([[computer("left_click", coordinate=[5, 5])], [computer("left_click", coordinate=[6, 6])]])
    options = RunOptions(out=tmp_path, loop=LoopConfig(observe="screenshot+tree"))
    assert run_goal("click", options, desktop=bare, model=model, kill_switch=False).result.exit_code == 0
    assert model.requests[0]["history"][0].parts[2] == ("(No list of interactive elements: no accessibility tree: "
                                                        "accessibility is switched off for this virtual desktop.)")
    assert model.requests[2]["history"][-1].results[0][1].system is None


def test_run_refuses_an_unknown_observe_mode() -> None:
    result = deskpilot("run", "do it", "--observe", "tree")
    assert result.returncode == 2 and "argument --observe: invalid choice: 'tree'" in result.stderr


def test_mcp_find_by_role_and_name_on_galculator(desktop, tmp_path: Path) -> None:
    """An MCP client finds galculator's keys by role and name, in screenshot pixels, and clicks one."""
    import anyio

    from tests.mcp_harness import stdio_session, texts
    from tests.test_mcp import screen_map

    desktop.launch(["galculator"])
    wait_for_element(desktop, "button", "7")
    mapping = screen_map(desktop.size())

    async def main() -> None:
        async with stdio_session(desktop.display, tmp_path / "rec") as client:
            seven = await client.call_tool("find", {"role": "button", "name": "7"})
            assert not seven.is_error, texts(seven)
            [match] = seven.structured_content["matches"]
            assert (match["role"], match["name"]) == ("button", "7")
            element = Snapshot(AtspiTree(desktop.env())).find("button", "7")[0]
            assert match["box"][:2] == list(mapping.to_model(*element.box[:2]))
            for key in ("7", "*", "6", "="):
                [found] = (await client.call_tool("find", {"role": "button", "name": key, "exact": True})
                           ).structured_content["matches"]
                await client.call_tool("computer", {"action": "left_click", "coordinate": found["center"]})
            shown = await client.call_tool("find", {"text": "42"})
            assert not shown.is_error, texts(shown)  # the keys landed: 7 * 6 = 42 on the display
            ties = await client.call_tool("find", {"role": "button", "name": "M"})  # MS, MR, M+ ...: all listed
            assert not ties.is_error and len(ties.structured_content["matches"]) >= 2, texts(ties)
            missing = await client.call_tool("find", {"role": "checkbox", "name": "7"})
            assert missing.is_error and "not found" in texts(missing) and "'7'" in texts(missing)

    anyio.run(main)
