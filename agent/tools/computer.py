"""The computer tool: a model's actions in model space, validated, mapped onto the screen and executed."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from actions.executor import Executor
from actions.result import ToolError, ToolResult
from actions.vocabulary import ACTION_NAMES, Action, ActionError, CursorPosition, Screenshot, Type, Zoom, parse_action
from agent.tools.base import Invocation
from agent.types import ToolCall, ToolSpec
from vision.capture import Frame
from vision.encode import resize
from vision.geometry import CoordinateError, ScreenMap, Size

SECRET_PLACEHOLDER = re.compile(r"\{\{secret:([A-Za-z_][A-Za-z0-9_]*)\}\}")
POINTER_ACTIONS = frozenset({"mouse_move", "left_click", "right_click", "middle_click", "double_click",
                             "triple_click", "left_click_drag", "left_mouse_down", "left_mouse_up", "scroll"})
DESCRIPTION = ("Use the mouse and keyboard on the screen, and take screenshots. Coordinates are pixels of the "
               "screenshot image.")


class ComputerTool:
    """Validates a model's computer action, maps it to screen pixels and performs it.

    The model sees the screen at `mapping.model` size; its coordinates refer to that image. `fit`
    is the model's image budget (for zoom crops); `actions` the actions its API can express.
    Secrets are typed from `{{secret:NAME}}` placeholders, for the names in `secrets` only, so their
    values never reach the model.
    """

    name = "computer"

    def __init__(self, executor: Executor, mapping: ScreenMap, *, fit: Callable[[Size], Size],
                 actions: frozenset[str] = frozenset(ACTION_NAMES), secrets: dict[str, str] | None = None) -> None:
        self.executor = executor
        self.mapping = mapping
        self.fit = fit
        self.actions = actions
        self.secrets = dict(secrets or {})

    @property
    def spec(self) -> ToolSpec:
        """The computer tool: the canonical actions, coordinates in the model's image."""
        parameters = {"type": "object", "required": ["action"],
                      "properties": {"action": {"type": "string", "enum": sorted(self.actions)}}}
        return ToolSpec(self.name, DESCRIPTION, parameters, kind="computer", display=self.mapping.model)

    def validate(self, call: ToolCall) -> Invocation:
        """The call as a screen-space action; ActionError naming the problem when it is invalid."""
        action, model_action = self.parse(call.input)
        return Invocation(call, action, model_action)

    def parse(self, data: dict[str, Any]) -> tuple[Action, Action]:
        """(action in screen pixels, action as the model sent it); ActionError if invalid."""
        model_action = parse_action(data, self.mapping.model, "model image")
        if model_action.action not in self.actions:
            raise ActionError(f"{model_action.action}: not available with this model's computer tool")
        screen_data = model_action.model_dump(exclude_none=True)
        try:
            for key in ("coordinate", "start_coordinate"):
                if key in screen_data:
                    screen_data[key] = list(self.mapping.to_screen(*screen_data[key]))
            if isinstance(model_action, Zoom):
                screen_data["region"] = list(self.mapping.region_to_screen(model_action.region))
        except CoordinateError as exc:
            raise ActionError(f"{model_action.action}: {exc}") from None
        if isinstance(model_action, Type):
            self._check_placeholders(model_action.text)
        return parse_action(screen_data, self.mapping.screen, "screen"), model_action

    def _check_placeholders(self, text: str) -> None:
        for name in SECRET_PLACEHOLDER.findall(text):
            if name not in self.secrets:
                raise ActionError(f"type: text: {{{{secret:{name}}}}} is not a secret of this task")

    def __call__(self, invocation: Invocation) -> ToolResult:
        """Perform a validated call."""
        if invocation.action is None:
            raise ToolError("the computer tool was given a call it did not validate")
        return self.run(invocation.action)

    def run(self, action: Action) -> ToolResult:
        """Perform a screen-space action; screenshots and zooms come back as the model should see them."""
        if isinstance(action, Type) and SECRET_PLACEHOLDER.search(action.text):
            text = SECRET_PLACEHOLDER.sub(lambda m: self.secrets[m.group(1)], action.text)
            action = action.model_copy(update={"text": text})
        result = self.executor.perform(action)
        if not result.ok:
            return result
        if isinstance(action, CursorPosition):
            x, y = self.executor.backend.position()
            screen = self.mapping.screen
            mx, my = self.mapping.to_model(min(x, screen.width - 1), min(y, screen.height - 1))
            return ToolResult(output=f"X={mx},Y={my}")
        if isinstance(action, Screenshot) and result.image is not None:
            return replace(result, image=self.model_view(result.image))
        if isinstance(action, Zoom) and result.image is not None:
            return replace(result, image=self.zoom_view(result.image))
        return result

    def model_view(self, frame: Frame) -> Frame:
        """A full-screen frame resized to exactly the image the model receives."""
        if frame.size != self.mapping.screen:
            raise ToolError(f"frame of {frame.size} is not the {self.mapping.screen} screen")
        return Frame(resize(frame.pixels, self.mapping.model), frame.origin, frame.scale, frame.time)

    def zoom_view(self, crop: Frame) -> Frame:
        """A zoom crop scaled to fill the model's image budget (upscaled when small), aspect kept."""
        limit = self.fit(Size(crop.size.width * 64, crop.size.height * 64))
        return Frame(resize(crop.pixels, limit), crop.origin, crop.scale, crop.time)
