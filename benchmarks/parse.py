"""Reading model replies: replies per second per family, and crashes on malformed replies.

For each family, 1,000 generated well-formed replies (random actions of its action space, random
coordinates on a 1920x1080 screen's image) are read by the family's own reader and validated into
canonical screen actions by the computer tool, the path every reply takes before anything runs;
replies per second is the median of 5 rounds. Then 1,000 malformed replies per family (cut at a
random place, parentheses or quotes removed, random characters inserted, four-number boxes, points
off the image, unknown actions, wrong JSON types, empty) go the same way: each must end as a reply,
an error the backend names (UnreadableReply for UI-TARS, which triggers its correction turn) or a
validation error; any other exception is a crash. Target: 0 crashes. Prints one JSON object.
"""

from __future__ import annotations

import contextlib
import json
import random
import statistics
import string
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from actions.vocabulary import ActionError
from agent.models import registry
from agent.models.base import ModelConfig
from agent.models.chat_format import parse_arguments
from agent.models.openai_client import Completion
from agent.models.openai_responses import read_output
from agent.models.ui_tars_actions import UnreadableReply, parse_reply
from agent.tools.computer import ComputerTool
from agent.types import ToolCall, Usage
from vision.geometry import ScreenMap, Size

FAMILIES = ("ui-tars", "qwen2.5-vl", "qwen3-vl", "openai", "chat")
SCREEN = Size(1920, 1080)
REPLIES = 1000
ROUNDS = 5


def _model(family: str) -> Any:
    return registry.create(replace(ModelConfig(), model=f"{family}/bench", base_url="http://127.0.0.1:9/v1"))


# ----------------------------------------------------------------------------- generators of well-formed replies
def ui_tars_reply(rng: random.Random, image: Size) -> str:
    def pt() -> str:
        x, y = rng.randrange(image.width), rng.randrange(image.height)
        return rng.choice([f"'({x},{y})'", f"'<|box_start|>({x},{y})<|box_end|>'", f"'<point>{x} {y}</point>'"])

    action = rng.choice([f"click(start_box={pt()})", f"left_double(start_box={pt()})", f"right_single(point={pt()})",
                         f"drag(start_box={pt()}, end_box={pt()})", "hotkey(key='ctrl s')",
                         "type(content='Hello, it\\'s me\\n')", f"scroll(start_box={pt()}, direction='down')",
                         "wait()", "finished(content='done')"])
    return f"Thought: I will do the next step of the task.\nAction: {action}"


def qwen_args(rng: random.Random, space: Size) -> dict[str, Any]:
    def pt() -> list[int]:
        return [rng.randrange(space.width), rng.randrange(space.height)]

    return rng.choice([{"action": "left_click", "coordinate": pt()}, {"action": "double_click", "coordinate": pt()},
                       {"action": "mouse_move", "coordinate": pt()}, {"action": "left_click_drag", "coordinate": pt()},
                       {"action": "key", "keys": ["ctrl", "c"]}, {"action": "type", "text": "hello world"},
                       {"action": "scroll", "pixels": -3, "coordinate": pt()}, {"action": "wait", "time": 1},
                       {"action": "terminate", "status": "success"}])


def qwen_reply(rng: random.Random, space: Size) -> str:
    return "Next step.\n<tool_call>\n" + json.dumps({"name": "computer_use", "arguments": qwen_args(rng, space)}) + \
        "\n</tool_call>"


def openai_items(rng: random.Random, image: Size) -> list[dict[str, Any]]:
    x, y = rng.randrange(image.width), rng.randrange(image.height)
    action = rng.choice([{"type": "click", "button": "left", "x": x, "y": y}, {"type": "double_click", "x": x, "y": y},
                         {"type": "drag", "path": [{"x": x, "y": y}, {"x": 1, "y": 1}]},
                         {"type": "keypress", "keys": ["CTRL", "S"]}, {"type": "move", "x": x, "y": y},
                         {"type": "scroll", "x": x, "y": y, "scroll_x": 0, "scroll_y": 300},
                         {"type": "type", "text": "hello"}, {"type": "wait"}, {"type": "screenshot"}])
    return [{"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "next"}]},
            {"type": "computer_call", "id": "cu", "call_id": "c", "action": action, "pending_safety_checks": []}]


def chat_arguments(rng: random.Random, image: Size) -> str:
    x, y = rng.randrange(image.width), rng.randrange(image.height)
    return json.dumps(rng.choice([{"action": "left_click", "coordinate": [x, y]},
                                  {"action": "left_click_drag", "start_coordinate": [x, y], "coordinate": [1, 2]},
                                  {"action": "scroll", "coordinate": [x, y], "scroll_direction": "down",
                                   "scroll_amount": 3}, {"action": "type", "text": "hi"},
                                  {"action": "key", "text": "ctrl+s"}, {"action": "wait", "duration": 1}]))


# ----------------------------------------------------------------------------- malformed replies
def mangle(rng: random.Random, text: str) -> str:
    """A malformed variant of a reply's text."""
    how = rng.randrange(9)
    if how == 0:
        return text[:rng.randrange(len(text) + 1)]
    if how == 1:
        return text.replace(")", "", 1) if rng.random() < 0.5 else text.replace("(", "", 1)
    if how == 2:
        return text.replace("'", "", 1).replace('"', "", 1)
    if how == 3:
        at = rng.randrange(len(text) + 1)
        return text[:at] + "".join(rng.choice(string.printable) for _ in range(rng.randrange(1, 8))) + text[at:]
    if how == 4:
        return text.replace(",", ",9999,", 1)  # a box of four numbers / a malformed list
    if how == 5:
        return "".join(c if not c.isdigit() else str(rng.randrange(10)) * 3 for c in text)  # far off the image
    if how == 6:
        return text.replace("click", "teleport").replace("type", "explode")
    if how == 7:
        return ""
    return text.replace("[", "{").replace("]", "}")  # wrong JSON types


# ----------------------------------------------------------------------------- reading, as the backends do
def reader(family: str) -> tuple[Callable[[random.Random], Any], Callable[[Any], list[ToolCall]],
                                 Callable[[random.Random, Any], Any]]:
    """(make a reply, read it into calls, mangle it) for `family`."""
    model = _model(family)
    image = model.image_size(SCREEN)
    if family == "ui-tars":
        def read(text: str) -> list[ToolCall]:
            try:
                parsed = parse_reply(text)
            except UnreadableReply as exc:
                return [ToolCall("c", "computer", {}, raw=text, error=str(exc))]
            return [ToolCall("c", "computer", action, raw=source) for action, source in parsed.actions]
        return (lambda rng: ui_tars_reply(rng, image)), read, mangle
    if family.startswith("qwen"):
        space = Size(1001, 1001) if family == "qwen3-vl" else image

        def read(text: str) -> list[ToolCall]:
            return model.reply(Completion(text, [], Usage(), "m", "stop", 0.0, {"content": text}), image).tool_calls
        return (lambda rng: qwen_reply(rng, space)), read, mangle
    if family == "openai":
        def read(items: Any) -> list[ToolCall]:
            return read_output(items)[1]

        def mangle_items(rng: random.Random, items: list[dict[str, Any]]) -> Any:
            try:
                return json.loads(mangle(rng, json.dumps(items)))
            except ValueError:
                return [{"type": "computer_call", "call_id": "c", "action": rng.choice([None, 5, "click", {}]),
                         "pending_safety_checks": rng.choice([[], None, [{"id": 1}]])}]
        return (lambda rng: openai_items(rng, image)), read, mangle_items

    def read(arguments: str) -> list[ToolCall]:
        return [parse_arguments("c", "computer", arguments)]
    return (lambda rng: chat_arguments(rng, image)), read, mangle


def validate(tool: ComputerTool, calls: list[ToolCall]) -> None:
    for call in calls:
        if call.error is None:
            with contextlib.suppress(ActionError):
                tool.parse(call.input)


def bench(family: str) -> dict[str, Any]:
    model = _model(family)
    image = model.image_size(SCREEN)
    tool = ComputerTool(None, ScreenMap(SCREEN, image), fit=model.image_size,  # type: ignore[arg-type]
                        actions=model.computer_actions)
    make, read, spoil = reader(family)
    rng = random.Random(7)
    replies = [make(rng) for _ in range(REPLIES)]
    rates = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for reply in replies:
            validate(tool, read(reply))
        rates.append(REPLIES / (time.perf_counter() - started))
    crashes, refused = [], 0
    for reply in replies:
        bad = spoil(rng, reply)
        try:
            calls = read(bad)
            refused += any(c.error for c in calls)
            validate(tool, calls)
        except Exception as exc:  # anything but a named refusal is a crash
            crashes.append(f"{type(exc).__name__}: {exc} <- {str(bad)[:80]!r}")
    return {"replies_per_s": round(statistics.median(rates)), "malformed": REPLIES, "crashes": len(crashes),
            "refused_by_reader": refused, "first_crashes": crashes[:3]}


def main() -> None:
    results = {family: bench(family) for family in FAMILIES}
    print(json.dumps({"benchmark": "parse", "replies": REPLIES, "rounds": ROUNDS, "screen": str(SCREEN),
                      "families": results, "total_crashes": sum(r["crashes"] for r in results.values()),
                      "python": sys.version.split()[0]}))


if __name__ == "__main__":
    main()
