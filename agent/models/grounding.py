"""`--grounder`: a planner names targets in words, a grounding model turns each into a point.

The planner (a family that calls the functions it is given: anthropic, openai, chat) gets the
computer tool as a function whose pointer actions take a `target` description ("the Save button")
instead of coordinates, and `start_target` for a drag. For each such call the grounder (ui-tars,
qwen2.5-vl, qwen3-vl) is asked once, on the screenshot the planner just saw, where the target is;
the call then runs with that point, in the grounder's image pixels (the run's screenshots are the
grounder's size, so its points reach the screen through the one mapping). A target the grounder
cannot point at becomes an error result; nothing is guessed. Both kinds of request are recorded in
model.jsonl (purpose `plan`, `ground`), and the step's `model_action` is the planner's call.

The planner sees its own history: its own calls (with targets, not points) and the screenshots
resized to its own image budget.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from agent.errors import BadInput
from agent.types import AssistantTurn, Reply, ToolCall, ToolSpec, ToolTurn, UserTurn

if TYPE_CHECKING:
    from agent.models.base import Grounder, Model
    from agent.types import Turn
    from vision.capture import Frame
    from vision.geometry import Size

POINTER_ACTIONS = ("mouse_move", "left_click", "right_click", "middle_click", "double_click", "triple_click",
                   "left_click_drag", "left_mouse_down", "left_mouse_up", "scroll")
NOT_FOR_PLANNERS = frozenset({"zoom", "cursor_position"})  # they speak in coordinates
PLANNER_NOTE = ("\n\nIn this run you never give coordinates. Name the element to act on in words in the computer "
                "tool's `target` (for a drag, `start_target` too), e.g. \"the Save button of the dialog\"; another "
                "model finds it on the current screenshot.")


def targeted_tool(tool: ToolSpec, actions: Sequence[str]) -> ToolSpec:
    """The computer tool as a function whose pointer actions take targets in words."""
    words = {"type": "string", "description": "the element to act on, in words precise enough to find it on the "
                                              "current screenshot (its text, kind and place)"}
    parameters = {"type": "object", "required": ["action"], "properties": {
        "action": {"type": "string", "enum": list(actions)},
        "target": words,
        "start_target": {**words, "description": "left_click_drag: where the drag starts, in words"},
        "text": {"type": "string", "description": "type: the text; key: xdotool keys such as ctrl+s; clicks: "
                                                  "modifier keys held"},
        "scroll_direction": {"type": "string", "enum": ["up", "down", "left", "right"]},
        "scroll_amount": {"type": "integer", "minimum": 1, "maximum": 50},
        "duration": {"type": "number", "minimum": 0, "maximum": 100},
        "repeat": {"type": "integer", "minimum": 1, "maximum": 100}}}
    return ToolSpec(tool.name, "Use the mouse and keyboard on the screen. Pointer actions take the `target` in "
                               "words, never coordinates; without a target they act where the pointer is.",
                    parameters, kind="function")


def check_pair(planner: Any, grounder: Any) -> None:
    """BadInput unless `planner` can plan in words and `grounder` can point."""
    if not getattr(planner, "plans_in_words", False):
        raise BadInput(f"--grounder: the model {planner.name!r} cannot be a planner (it writes its own points); "
                       "use an anthropic, openai or chat model with --grounder")
    if not callable(getattr(grounder, "ground", None)):
        raise BadInput(f"--grounder: {grounder.name!r} cannot ground targets; use a ui-tars, qwen2.5-vl or "
                       "qwen3-vl model")


class GroundedModel:
    """A planner and a grounder behind the Model protocol."""

    plans_in_words = False

    def __init__(self, planner: Model, grounder: Grounder) -> None:
        check_pair(planner, grounder)
        self.planner, self.grounder = planner, grounder
        self.name = planner.name
        self.computer_actions = frozenset(planner.computer_actions) - NOT_FOR_PLANNERS
        self._plans: dict[int, tuple[Reply, Reply]] = {}  # id(reply given to the loop) -> (it, planner's)
        self._views: weakref.WeakKeyDictionary[Any, Frame] = weakref.WeakKeyDictionary()

    def image_size(self, screen: Size) -> Size:
        """The grounder's image: its points are what reach the screen."""
        return self.grounder.image_size(screen)

    def preflight(self) -> None:
        """Both models must be usable."""
        self.planner.preflight()
        self.grounder.preflight()

    def query(self, system: str, history: Sequence[Turn], tools: Sequence[ToolSpec]) -> Reply:
        """The planner's reply, its targets grounded on the current screenshot."""
        actions = [a for a in _actions(tools) if a not in NOT_FOR_PLANNERS]
        planner_tools = [targeted_tool(t, actions) if t.kind == "computer" else t for t in tools]
        plan = self.planner.query(system + PLANNER_NOTE, self._planner_history(history), planner_tools)
        records = plan.requests or [{"purpose": "plan", "model": plan.model, "stop_reason": plan.stop_reason,
                                     "latency_ms": round(plan.latency_s * 1000), "usage": plan.usage.as_dict(),
                                     "response": plan.raw}]
        for record in records:
            record.setdefault("purpose", "plan")
        screen = _latest_image(history)
        usage, latency, calls = plan.usage, plan.latency_s, []
        for call in plan.tool_calls:
            if call.name != "computer" or call.error:
                calls.append(call)
                continue
            grounded, spent = self._ground(call, screen)
            for grounding in spent:
                usage += grounding.usage
                latency += grounding.record.get("latency_ms", 0) / 1000
                records.append(grounding.record)
            calls.append(grounded)
        reply = Reply(plan.text, calls, usage, latency, plan.model, plan.stop_reason, plan.raw, records)
        self._plans[id(reply)] = (reply, plan)
        return reply

    def _ground(self, call: ToolCall, screen: Frame | None) -> tuple[ToolCall, list[Any]]:
        """The call with its targets as points; a call that is an error result when one cannot be had."""
        data = dict(call.input)
        if "coordinate" in data or "start_coordinate" in data:
            return ToolCall(call.id, call.name, {}, raw=call.input, error="give the target in words (`target`), "
                                                                          "not coordinates"), []
        spent = []
        for words_key, point_key in (("start_target", "start_coordinate"), ("target", "coordinate")):
            words = data.pop(words_key, None)
            if words is None:
                continue
            if data.get("action") not in POINTER_ACTIONS:
                return ToolCall(call.id, call.name, {}, raw=call.input,
                                error=f"{data.get('action')}: takes no {words_key}"), spent
            if not isinstance(words, str) or not words.strip() or screen is None:
                return ToolCall(call.id, call.name, {}, raw=call.input,
                                error=f"{words_key} must describe an element in words"), spent
            grounding = self.grounder.ground(screen, words.strip())
            spent.append(grounding)
            if grounding.point is None:
                return ToolCall(call.id, call.name, {}, raw=call.input, error=grounding.error), spent
            data[point_key] = list(grounding.point)
        return ToolCall(call.id, call.name, data, raw=call.input, checks=call.checks), spent

    def _planner_history(self, history: Sequence[Turn]) -> list[Turn]:
        """The history as the planner made it: its own replies and calls, images at its own size."""
        out: list[Turn] = []
        calls: dict[str, ToolCall] = {}
        for turn in history:
            if isinstance(turn, UserTurn):
                out.append(UserTurn(tuple(p if isinstance(p, str) else self._view(p) for p in turn.parts)))
            elif isinstance(turn, AssistantTurn):
                given, plan = self._plans.get(id(turn.reply), (turn.reply, turn.reply))
                plan = plan if given is turn.reply else turn.reply
                calls.update({c.id: c for c in plan.tool_calls})
                out.append(AssistantTurn(plan))
            elif isinstance(turn, ToolTurn):
                out.append(ToolTurn(tuple(
                    (calls.get(call.id, call), replace(result, image=self._view(result.image))
                     if result.image is not None else result) for call, result in turn.results)))
        return out

    def _view(self, frame: Frame) -> Frame:
        view = self._views.get(frame)
        if view is None:
            from vision.capture import Frame
            from vision.encode import resize

            size = self.planner.image_size(frame.size)
            view = self._views[frame] = Frame(resize(frame.pixels, size), frame.origin, frame.scale, frame.time)
        return view


def _actions(tools: Sequence[ToolSpec]) -> list[str]:
    for tool in tools:
        if tool.kind == "computer":
            return list(tool.parameters.get("properties", {}).get("action", {}).get("enum") or [])
    return []


def _latest_image(history: Sequence[Turn]) -> Frame | None:
    for turn in reversed(history):
        if isinstance(turn, ToolTurn):
            for _, result in reversed(turn.results):
                if result.image is not None:
                    return result.image
        elif isinstance(turn, UserTurn) and turn.images:
            return turn.images[-1]
    return None

