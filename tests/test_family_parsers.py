"""Reading what each family writes, well-formed and malformed: malformed output is an error result,
named, and nothing executes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.budget import Limits
from agent.loop import LoopConfig
from agent.models.base import ModelConfig
from agent.models.chat_format import parse_arguments
from agent.models.openai_client import Completion
from agent.models.openai_responses import Untranslatable, computer_calls, translate
from agent.models.qwen_calls import UnreadableCall, read_calls, to_canonical
from agent.models.ui_tars_actions import UnreadableReply, find_point, parse_reply
from agent.recording.writer import Recording
from agent.session import Callbacks, RunOptions, run_goal
from agent.types import Usage
from tests.fake_openai import FakeOpenAI, chat, computer_call, function_call, message_item, response
from vision.geometry import CoordinateError, GridSpace, ScreenMap, Size, smart_resize


# ----------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("screen,factor,expected", [
    (Size(1920, 1080), 28, Size(1932, 1092)), (Size(1280, 800), 28, Size(1288, 812)),
    (Size(2560, 1440), 28, Size(2548, 1428)), (Size(1920, 1080), 32, Size(1920, 1088)),
    (Size(1280, 800), 32, Size(1280, 800)), (Size(7680, 4320), 28, Size(4760, 2688)),
    (Size(100, 60), 28, Size(364, 224)),
])
def test_smart_resize_sizes_and_a_second_resize_changes_nothing(screen: Size, factor: int, expected: Size) -> None:
    lo, hi = (100 if factor == 28 else 4) * factor ** 2, 16384 * factor ** 2
    size = smart_resize(screen, factor, lo, hi)
    assert size == expected
    assert size.width % factor == 0 and size.height % factor == 0 and lo <= size.width * size.height <= hi
    assert smart_resize(size, factor, lo, hi) == size  # the server leaves the image as it is


def test_grid_points_land_in_the_pixel_that_contains_them_and_never_off_the_grid() -> None:
    grid, image = GridSpace(1000), Size(1920, 1088)
    assert grid.to_image(0, 0, image) == (0, 0)
    assert grid.to_image(1000, 1000, image) == (1919, 1087)
    assert grid.to_image(500, 500, image) == (960, 544)
    screen = Size(1920, 1080)  # with the screen: one rounding, onto the screen pixel containing the point
    mapping = ScreenMap(screen, image)
    for g in range(0, 1001, 7):
        x, y = mapping.to_screen(*grid.to_image(g, g, image, screen))
        assert (x, y) == (min(1919, g * 1920 // 1000), min(1079, g * 1080 // 1000))
    for bad in ((1001, 5), (-1, 5), (5, float("nan"))):
        with pytest.raises(CoordinateError, match="0..1000 grid"):
            grid.to_image(*bad, image)


# ----------------------------------------------------------------------------- UI-TARS
@pytest.mark.parametrize("text,action", [
    ("Thought: Click OK.\nAction: click(start_box='(120,340)')", {"action": "left_click", "coordinate": [120, 340]}),
    ("Thought: x\nAction: click(start_box='<|box_start|>(5,6)<|box_end|>')", {"action": "left_click",
                                                                            "coordinate": [5, 6]}),
    ("Action: right_single(point='<point>7 8</point>')", {"action": "right_click", "coordinate": [7, 8]}),
    ("Action: left_double(start_box='( 1 , 2 )')", {"action": "double_click", "coordinate": [1, 2]}),
    ("Action: drag(start_point='<point>1 2</point>', end_point='<point>3 4</point>')",
     {"action": "left_click_drag", "start_coordinate": [1, 2], "coordinate": [3, 4]}),
    ("Action: hotkey(key='ctrl shift arrowleft')", {"action": "key", "text": "ctrl+shift+Left"}),
    ("Action: type(content='It\\'s \\\"fine\\\"\\nnext')", {"action": "type", "text": "It's \"fine\"\nnext"}),
    ("Action: type(content='don't stop')", {"action": "type", "text": "don't stop"}),
    ("Action: scroll(start_box='(9,9)', direction='up')",
     {"action": "scroll", "scroll_direction": "up", "scroll_amount": 5, "coordinate": [9, 9]}),
    ("Reflection: it failed\nAction_Summary: retry\nAction: wait()", {"action": "wait", "duration": 5.0}),
])
def test_ui_tars_real_shapes(text: str, action: dict) -> None:
    parsed = parse_reply(text)
    assert [a for a, _ in parsed.actions] == [action]


def test_ui_tars_endings_and_several_actions() -> None:
    assert parse_reply("Thought: done\nAction: finished(content='It\\'s saved')").finished == "It's saved"
    assert parse_reply("Action: call_user()").call_user
    two = parse_reply("Thought: t\nAction: click(start_box='(1,1)')\n\ntype(content='a')")
    assert [a["action"] for a, _ in two.actions] == ["left_click", "type"]
    assert find_point("The element is at <|box_start|>(12,34)<|box_end|>.") == [12, 34]
    assert find_point("<point>5 6</point>") == [5, 6] and find_point("(7, 8)") == [7, 8]


UI_TARS_MALFORMED = [
    ("", "empty"),
    ("Thought: I think I am done", "no `Action:`"),
    ("Action: click(start_box='(100,200)'", "missing ')'"),
    ("Action: click start_box='(100,200)')", "missing '('"),
    ("Action: click(start_box='(10,20,30,40)')", "box of four numbers"),
    ("Action: launch_rocket(target='moon')", "unknown action 'launch_rocket'"),
    ("Action: click(start_box='here')", "is not a point"),
    ("Action: click()", "start_box is missing"),
    ("Action: scroll(start_box='(1,1)', direction='sideways')", "direction 'sideways'"),
    ("Action: type(content='unterminated)", "no closing quote"),
    ("Action: click(start_box=(1,2))", "must be quoted"),
    ("Action: finished()\n\nclick(start_box='(1,1)')", "must be the only action"),
    ("Action: click(start_box='(1,1)')\nAction: click(start_box='(2,2)')", "2 `Action:` lines"),
    ("Action: hotkey(key='')", "key is empty"),
]


@pytest.mark.parametrize("text,problem", UI_TARS_MALFORMED)
def test_ui_tars_malformed_replies_are_refused_with_the_problem_named(text: str, problem: str) -> None:
    with pytest.raises(UnreadableReply, match=None) as error:
        parse_reply(text)
    assert problem in str(error.value)


# ----------------------------------------------------------------------------- Qwen
def _completion(text: str = "", *calls: dict) -> Completion:
    return Completion(text, list(calls), Usage(), "m", "stop", 0.0, {"role": "assistant", "content": text})


def test_qwen_reads_structured_and_text_calls() -> None:
    structured = _completion("", {"id": "c1", "type": "function", "function": {
        "name": "computer_use", "arguments": json.dumps({"action": "left_click", "coordinate": [3, 4]})}})
    assert read_calls(structured) == ("", [("c1", {"action": "left_click", "coordinate": [3, 4]})])
    text = _completion('Go.\n<tool_call>\n{"name": "computer_use", "arguments": {"action": "key", "keys": ["enter"]}}'
                       '\n</tool_call>')
    assert read_calls(text) == ("Go.", [("", {"action": "key", "keys": ["enter"]})])
    assert to_canonical({"action": "key", "keys": ["ctrl", "arrowup"]}, list) == [{"action": "key", "text": "ctrl+Up"}]
    assert to_canonical({"action": "hscroll", "pixels": -2}, list) == [
        {"action": "scroll", "scroll_direction": "left", "scroll_amount": 2}]
    assert to_canonical({"action": "left_click_drag", "coordinate": [5, 6]}, list) == [
        {"action": "left_mouse_down"}, {"action": "left_mouse_up", "coordinate": [5, 6]}]


@pytest.mark.parametrize("args,problem", [
    ({"action": "fly"}, "unknown action 'fly'"),
    ({"action": "mouse_move"}, "coordinate is missing"),
    ({"action": "key", "keys": "ctrl+c"}, "keys must be a non-empty list"),
    ({"action": "scroll", "pixels": 0}, "non-zero whole number"),
    ({"action": "scroll", "pixels": 2.5}, "non-zero whole number"),
    ({"action": "left_click", "coordinate": [1, 2, 3, 4]}, "two numbers"),
    ({"action": "left_click", "coordinate": "(1,2)"}, "two numbers"),
])
def test_qwen_malformed_calls_are_refused(args: dict, problem: str) -> None:
    from agent.models.qwen_calls import numbers

    with pytest.raises(UnreadableCall) as error:
        to_canonical(args, lambda value: list(numbers(value)))
    assert problem in str(error.value)


def test_qwen_unreadable_text_blocks_are_kept_as_problems() -> None:
    found = read_calls(_completion("<tool_call>{not json}</tool_call><tool_call>"
                                   '{"name": "browser", "arguments": {}}</tool_call>'))[1]
    assert "not valid JSON" in found[0][1] and "unknown function 'browser'" in found[1][1]


# ----------------------------------------------------------------------------- OpenAI and chat
def test_openai_actions_and_their_refusals() -> None:
    assert translate({"type": "click", "button": "wheel", "x": 1, "y": 2, "keys": ["SHIFT"]}) == [
        {"action": "middle_click", "coordinate": [1, 2], "text": "shift"}]
    assert translate({"type": "scroll", "x": 1, "y": 1, "scroll_x": -150, "scroll_y": 0}) == [
        {"action": "scroll", "coordinate": [1, 1], "scroll_direction": "left", "scroll_amount": 2}]
    for bad, problem in (({"type": "click", "button": "back", "x": 1, "y": 1}, "button 'back'"),
                         ({"type": "drag", "path": [{"x": 1, "y": 1}]}, "at least two points"),
                         ({"type": "keypress", "keys": "CTRL"}, "non-empty list"),
                         ({"type": "scroll", "x": 1, "y": 1, "scroll_x": 0, "scroll_y": 0}, "both 0"),
                         ({"type": "teleport"}, "unknown computer action 'teleport'")):
        with pytest.raises(Untranslatable, match=problem):
            translate(bad)
    [call] = computer_calls({"type": "computer_call", "call_id": "c", "action": {"type": "teleport"},
                             "pending_safety_checks": []})
    assert call.error and "teleport" in call.error
    assert "not valid JSON" in parse_arguments("c", "computer", "{oops").error


# ----------------------------------------------------------------------------- through the loop: nothing executes
@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    yield fake
    fake.stop()


def _run(tmp_path: Path, model: str, fake: FakeOpenAI, desktop) -> object:
    options = RunOptions(model=ModelConfig(model=model, base_url=fake.base_url, max_retries=1, timeout_s=10),
                         loop=LoopConfig(limits=Limits(max_steps=20, max_seconds=60)), out=tmp_path / "rec",
                         workdir=tmp_path)
    return run_goal("do it", options, desktop=desktop, callbacks=Callbacks(confirm_mode="deny"), kill_switch=False)


def _nothing_happened(probe) -> None:
    time.sleep(0.3)
    assert [e for e in probe.events() if e["type"] in ("press", "keypress", "motion")] == []


def test_ui_tars_unreadable_twice_is_an_error_result_and_nothing_runs(server, desktop, probe, tmp_path) -> None:
    server.add(chat("Action: click(start_box='(10,20,30,40)')"), chat(""),  # a box, then an empty reply
               chat("Thought: off the image\nAction: click(start_box='(5000,20)')"),
               chat("Action: finished(content='gave up clicking')"))
    outcome = _run(tmp_path, "ui-tars/ui", server, desktop)
    assert outcome.result.status == "succeeded" and outcome.result.message == "gave up clicking"
    _nothing_happened(probe)
    correction = server.api_requests()[1].body["messages"][-1]["content"]
    assert "could not be read" in correction and "box of four numbers" in correction
    steps = Recording.load(outcome.recording).steps
    assert [s["ok"] for s in steps] == [False, False]
    assert "even after a correction: the reply is empty" in steps[0]["error"]
    assert "outside the 1288x812 model image" in steps[1]["error"]
    assert steps[1]["model_action"] == "click(start_box='(5000,20)')"
    told = json.dumps(server.api_requests()[3].body["messages"][-1])
    assert "outside the 1288x812 model image" in told
    calls = Recording.load(outcome.recording).model_calls
    assert [c["purpose"] for c in calls[:2]] == ["step", "correction"]


@pytest.mark.parametrize("family", ["qwen2.5-vl", "qwen3-vl"])
def test_qwen_malformed_calls_are_error_results_and_nothing_runs(family, server, desktop, probe, tmp_path) -> None:
    far = [5000, 10] if family == "qwen2.5-vl" else [1001, 10]
    server.add(chat('<tool_call>{"name": "computer_use", "arguments": {"action": "fly"}}</tool_call>'
                    '<tool_call>{broken</tool_call>'),
               chat(None, function_call("computer_use", {"action": "left_click", "coordinate": far})),
               chat("I have no idea what to do."),
               chat(None, function_call("computer_use", {"action": "terminate", "status": "failure"})))
    outcome = _run(tmp_path, f"{family}/q", server, desktop)
    assert outcome.result.status == "failed" and outcome.result.exit_code == 1
    _nothing_happened(probe)
    errors = [s["error"] for s in Recording.load(outcome.recording).steps]
    assert "unknown action 'fly'" in errors[0] and "not valid JSON" in errors[1]
    assert ("outside the 0..1000 grid" if family == "qwen3-vl" else "outside the 1288x812 model image") in errors[2]
    assert "no computer_use call" in errors[3]


def test_openai_and_chat_malformed_calls_are_error_results(server, desktop, probe, tmp_path) -> None:
    server.add(response(computer_call({"type": "click", "button": "forward", "x": 5, "y": 5}),
                        computer_call({"type": "click", "button": "left", "x": 99999, "y": 5})),
               response(message_item("stopping")))
    outcome = _run(tmp_path, "openai/computer-use-preview", server, desktop)
    assert outcome.result.status == "succeeded"
    errors = [s["error"] for s in Recording.load(outcome.recording).steps]
    assert "button 'forward'" in errors[0] and "outside the" in errors[1]
    server.add(chat(None, function_call("computer", "{not json"), function_call("computer", {"action": "warp"}),
                    function_call("computer", {"action": "left_click", "coordinate": [-1, 3]})), chat("ok"))
    outcome = _run(tmp_path, "chat/gpt-4.1", server, desktop)
    errors = [s["error"] for s in Recording.load(outcome.recording).steps]
    assert "not valid JSON" in errors[0] and "unknown action 'warp'" in errors[1] and "coordinate" in errors[2]
    _nothing_happened(probe)
