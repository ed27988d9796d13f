"""Malformed actions are refused with a message that names the field; valid ones parse."""

from __future__ import annotations

import pytest

from actions.keys import KeyNameError, parse_keys
from actions.vocabulary import ACTION_NAMES, MAX_TYPE_CHARS, ActionError, parse_action
from vision.geometry import Size

MODEL = Size(1430, 804)

REFUSED = [
    ({"action": "left_click", "coordinate": [10]}, "coordinate"),
    ({"action": "mouse_move"}, "coordinate: Field required"),
    ({"action": "left_click_drag", "coordinate": [1, 2]}, "start_coordinate: Field required"),
    ({"action": "left_click", "coordinate": ["10", 20]}, "coordinate"),
    ({"action": "left_click", "coordinate": [10.5, 20]}, "coordinate"),
    ({"action": "left_click", "coordinate": [True, 20]}, "coordinate"),
    ({"action": "left_click", "coordinate": [-1, 20]}, "coordinate"),
    ({"action": "left_click", "coordinate": [1430, 20]}, "coordinate: (1430, 20) is outside the 1430x804 model image"),
    ({"action": "left_click", "coordinate": [5, 804]}, "outside the 1430x804 model image"),
    ({"action": "fly"}, "action: unknown action 'fly'"),
    ({}, "action: unknown action None"),
    ({"action": "key", "text": ""}, "text: empty key text"),
    ({"action": "key"}, "text: Field required"),
    ({"action": "key", "text": "ctrl+nosuchkey"}, "unknown key 'nosuchkey'"),
    ({"action": "key", "text": "ctrl+"}, "text: "),
    ({"action": "key", "text": "s+ctrl"}, "only the last key may be a plain key"),
    ({"action": "key", "text": "Return", "repeat": 0}, "repeat"),
    ({"action": "hold_key", "text": "shift", "duration": -1}, "duration: Input should be greater than or equal to 0"),
    ({"action": "wait", "duration": -0.5}, "duration"),
    ({"action": "wait", "duration": 1e9}, "duration"),
    ({"action": "wait"}, "duration: Field required"),
    ({"action": "type", "text": "x" * (MAX_TYPE_CHARS + 1)}, f"text: String should have at most {MAX_TYPE_CHARS}"),
    ({"action": "type", "text": ""}, "text"),
    ({"action": "type", "text": 5}, "text: Input should be a valid string"),
    ({"action": "scroll", "scroll_direction": "sideways", "scroll_amount": 2}, "scroll_direction"),
    ({"action": "scroll", "scroll_direction": "up", "scroll_amount": 0}, "scroll_amount"),
    ({"action": "scroll", "scroll_direction": "up", "scroll_amount": 2, "text": "q"}, "not a modifier"),
    ({"action": "left_click", "coordinate": [1, 2], "text": "enter"}, "not a modifier"),
    ({"action": "left_click", "coordinate": [1, 2], "bogus": 1}, "bogus: unknown field"),
    ({"action": "zoom", "region": [10, 10, 5, 20]}, "region"),
    ({"action": "zoom", "region": [0, 0, 1431, 20]}, "zoom: region"),
    ({"action": "zoom"}, "region: Field required"),
]


@pytest.mark.parametrize("data,message", REFUSED, ids=[str(i) for i in range(len(REFUSED))])
def test_malformed_actions_name_the_field(data: dict, message: str) -> None:
    with pytest.raises(ActionError) as info:
        parse_action(data, MODEL, "model image")
    assert message in str(info.value)


def test_non_object_is_refused() -> None:
    with pytest.raises(ActionError, match="must be a JSON object"):
        parse_action(["left_click"])


VALID = [
    {"action": "screenshot"}, {"action": "cursor_position"},
    {"action": "mouse_move", "coordinate": [0, 0]},
    {"action": "left_click"}, {"action": "left_click", "coordinate": [1429, 803], "text": "ctrl+shift"},
    {"action": "right_click", "coordinate": [5, 5]}, {"action": "middle_click", "coordinate": [5, 5]},
    {"action": "double_click", "coordinate": [5, 5]}, {"action": "triple_click", "coordinate": [5, 5]},
    {"action": "left_click_drag", "start_coordinate": [1, 1], "coordinate": [9, 9]},
    {"action": "left_mouse_down"}, {"action": "left_mouse_up", "coordinate": [3, 3]},
    {"action": "scroll", "scroll_direction": "left", "scroll_amount": 3, "coordinate": [5, 5], "text": "shift"},
    {"action": "type", "text": "héllo 日本"}, {"action": "key", "text": "ctrl+s", "repeat": 2},
    {"action": "hold_key", "text": "shift", "duration": 1}, {"action": "wait", "duration": 0.5},
    {"action": "zoom", "region": [0, 0, 1430, 804]},
]


def test_every_action_of_the_vocabulary_parses() -> None:
    parsed = [parse_action(d, MODEL, "model image") for d in VALID]
    assert {p.action for p in parsed} == set(ACTION_NAMES)


def test_click_accepts_the_older_key_spelling_for_modifiers() -> None:
    assert parse_action({"action": "left_click", "coordinate": [1, 1], "key": "shift"}).text == "shift"


@pytest.mark.parametrize("text,expected", [
    ("ctrl+s", [["Control_L", "s"]]),
    ("Return", [["Return"]]), ("return", [["Return"]]), ("ENTER", [["Return"]]),
    ("alt+Tab", [["Alt_L", "Tab"]]), ("super", [["Super_L"]]), ("KP_Enter", [["KP_Enter"]]),
    ("kp_enter", [["KP_Enter"]]), ("F5", [["F5"]]), ("f12", [["F12"]]),
    ("shift+ctrl+t", [["Shift_L", "Control_L", "t"]]), ("ctrl++", [["Control_L", "+"]]),
    ("ctrl+a Delete", [["Control_L", "a"], ["Delete"]]), ("Page_Down", [["Page_Down"]]),
    ("XF86AudioMute", [["XF86AudioMute"]]), ("é", [["é"]]),
])
def test_key_names(text: str, expected: list[list[str]]) -> None:
    assert parse_keys(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "ctrl+", "+ctrl", "nosuch", "ctrl+shift+bogus"])
def test_bad_key_names(text: str) -> None:
    with pytest.raises(KeyNameError):
        parse_keys(text)
