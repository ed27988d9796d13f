"""Scripted replies of every OpenAI-compatible family, written as each model family writes them.

`FamilyScript(family, screen)` turns intended screen points into the coordinates the family would
write (pixels of its smart_resize image, points on Qwen3-VL's 0..1000 grid, pixels of OpenAI's
display, pixels of the chat family's image) and builds the fake server's replies for one scenario:
a click, a double click, a right click, a drag, a scroll, typed text and a key combination, then the
family's own way of finishing. `landing(point)` is where the computer tool must put the pointer for
the model's coordinate, through the same geometry the run uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from agent.models import registry
from agent.models.base import ModelConfig
from tests.fake_openai import (
    Reply,
    chat,
    computer_call,
    function_call,
    message_item,
    reasoning_item,
    response,
)
from vision.geometry import GridSpace, ScreenMap, Size

FAMILIES = ("ui-tars", "qwen2.5-vl", "qwen3-vl", "openai", "chat")
MODEL_NAMES = {"ui-tars": "ByteDance-Seed/UI-TARS-1.5-7B", "qwen2.5-vl": "Qwen/Qwen2.5-VL-7B-Instruct",
               "qwen3-vl": "Qwen/Qwen3-VL-8B-Instruct", "openai": "computer-use-preview", "chat": "gpt-4.1"}
TEXT = "héllo wörld"


def image_size(family: str, screen: Size) -> Size:
    """The image the family's backend declares for `screen`."""
    return registry.create(replace(ModelConfig(), model=f"{family}/{MODEL_NAMES[family]}")).image_size(screen)


def tool_call_text(args: dict[str, Any]) -> str:
    """A Qwen `<tool_call>` block as the model writes it without a tool-call parser."""
    return "<tool_call>\n" + json.dumps({"name": "computer_use", "arguments": args}) + "\n</tool_call>"


@dataclass
class FamilyScript:
    """The scenario's replies for `family` on `screen`, and where each point must land."""

    family: str
    screen: Size

    def __post_init__(self) -> None:
        self.image = image_size(self.family, self.screen)
        self.map = ScreenMap(self.screen, self.image)

    def model_point(self, point: tuple[int, int]) -> list[int]:
        """What the family writes to point at screen `point`."""
        if self.family == "qwen3-vl":
            return [round((point[0] + 0.5) * 1000 / self.screen.width),
                    round((point[1] + 0.5) * 1000 / self.screen.height)]
        return list(self.map.to_model(*point))

    def landing(self, model: list[int]) -> tuple[int, int]:
        """The screen pixel the computer tool acts on for the model's coordinate."""
        if self.family == "qwen3-vl":
            model = list(GridSpace(1000).to_image(model[0], model[1], self.image, self.screen))
        return self.map.to_screen(*model)

    def replies(self, click: tuple[int, int], double: tuple[int, int], right: tuple[int, int],
                drag: tuple[tuple[int, int], tuple[int, int]], scroll: tuple[int, int]) -> list[Reply]:
        """The scenario as this family writes it."""
        c, d, r, s = (self.model_point(p) for p in (click, double, right, scroll))
        a, b = (self.model_point(p) for p in drag)
        return getattr(self, "_" + self.family.replace("-", "_").replace(".", ""))(c, d, r, a, b, s)

    def _ui_tars(self, c, d, r, a, b, s) -> list[Reply]:
        return [
            chat(f"Thought: I click the text area.\nAction: click(start_box='({c[0]},{c[1]})')"),
            chat(f"Thought: Select a word.\nAction: left_double(start_box='<|box_start|>({d[0]},{d[1]})<|box_end|>')"),
            chat(f"Thought: Open the menu.\nAction: right_single(point='<point>{r[0]} {r[1]}</point>')"),
            chat(f"Thought: Drag.\nAction: drag(start_box='({a[0]},{a[1]})', end_box='({b[0]},{b[1]})')"),
            chat(f"Thought: Scroll.\nAction: scroll(start_box='({s[0]},{s[1]})', direction='down')"),
            chat(f"Thought: Type.\nAction: type(content='{TEXT}')"),
            chat("Thought: Select all.\nAction: hotkey(key='ctrl a')"),
            chat("Thought: All done.\nAction: finished(content='The text is typed.')"),
        ]

    def _qwen(self, c, d, r, a, b, s) -> list[Reply]:
        call = tool_call_text
        return [
            chat("I click the text area.\n" + call({"action": "left_click", "coordinate": c})),
            chat(None, function_call("computer_use", {"action": "double_click", "coordinate": d})),
            chat(call({"action": "right_click", "coordinate": r})),
            chat(call({"action": "mouse_move", "coordinate": a}) + "\n" +
                 call({"action": "left_click_drag", "coordinate": b})),
            chat(None, function_call("computer_use", {"action": "scroll", "pixels": -5, "coordinate": s})),
            chat(call({"action": "type", "text": TEXT})),
            chat(call({"action": "key", "keys": ["ctrl", "a"]})),
            chat(call({"action": "terminate", "status": "success"})),
        ]

    _qwen25_vl = _qwen
    _qwen3_vl = _qwen

    def _openai(self, c, d, r, a, b, s) -> list[Reply]:
        def at(p: list[int]) -> dict[str, int]:
            return {"x": p[0], "y": p[1]}

        return [
            response(reasoning_item("I click the text area."),
                     computer_call({"type": "click", "button": "left", **at(c)})),
            response(computer_call({"type": "double_click", **at(d)})),
            response(computer_call({"type": "click", "button": "right", **at(r)})),
            response(computer_call({"type": "drag", "path": [at(a), at(b)]})),
            response(computer_call({"type": "scroll", **at(s), "scroll_x": 0, "scroll_y": 500})),
            response(computer_call({"type": "type", "text": TEXT})),
            response(computer_call({"type": "keypress", "keys": ["CTRL", "A"]})),
            response(message_item("The text is typed.")),
        ]

    def _chat(self, c, d, r, a, b, s) -> list[Reply]:
        def computer(**args: Any) -> dict:
            return function_call("computer", args)

        return [
            chat("I click the text area.", computer(action="left_click", coordinate=c)),
            chat(None, computer(action="double_click", coordinate=d)),
            chat(None, computer(action="right_click", coordinate=r)),
            chat(None, computer(action="left_click_drag", start_coordinate=a, coordinate=b)),
            chat(None, computer(action="scroll", coordinate=s, scroll_direction="down", scroll_amount=5)),
            chat(None, computer(action="type", text=TEXT)),
            chat(None, computer(action="key", text="ctrl+a")),
            chat("The text is typed."),
        ]
