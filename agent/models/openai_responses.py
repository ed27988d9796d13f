"""The `openai` family: OpenAI's computer-use model through the Responses API (`computer_use_preview`).

The computer is the `computer_use_preview` tool with the declared display (environment linux); bash
and the editor are function tools. The model answers with `computer_call` items (`click`,
`double_click`, `drag` along a path, `keypress`, `move`, `screenshot`, `scroll`, `type`, `wait`; a
batched `actions` list too), each translated into canonical actions in the pixels of the display,
which is exactly the image sent. Every computer_call gets a `computer_call_output` with the
screenshot taken after it. Its `pending_safety_checks` ride on the call (`ToolCall.checks`), so the
safety policy asks a person (or refuses with `--confirm deny`; `--confirm allow` is the user's
standing yes); they are acknowledged in the next request only when the call was allowed and ran.

The display follows OpenAI's image handling: the screen scaled (never up) so its short side is at
most 768 px and its long side at most 2048 px, so the API does not scale it again. A scroll's pixels
become wheel clicks, one per 100 px (at least one). `wait` waits 2 s. The conversation is chained
with `previous_response_id` (only the new items are sent; `truncation: auto` lets the API drop the
oldest when the context is full); a history the model has not seen (a heal, a judge) is sent whole.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent.models.chat_format import parse_arguments, result_text
from agent.models.openai_client import (
    Price,
    check_credentials,
    data_url,
    make_client,
    origin_id,
    price_of,
    request,
    sub_id,
    usage_of,
)
from agent.types import AssistantTurn, Reply, ToolCall, ToolTurn, UserTurn
from vision.geometry import Size, fit_image_size

if TYPE_CHECKING:
    from agent.models.base import ModelConfig
    from agent.types import ToolSpec, Turn
    from vision.capture import Frame

FAMILY = "openai"
MAX_SHORT_SIDE, MAX_LONG_SIDE = 768, 2048
PIXELS_PER_CLICK = 100
WAIT_S = 2.0
KNOWN_MODELS = ("computer-use-preview",)
PRICES = {"computer-use-preview": Price(3.0, 12.0)}
ACTIONS = frozenset({"screenshot", "mouse_move", "left_click", "right_click", "middle_click", "double_click",
                     "left_click_drag", "left_mouse_down", "left_mouse_up", "scroll", "type", "key", "wait"})
BUTTONS = {"left": "left_click", "right": "right_click", "wheel": "middle_click"}
KEY_NAMES = {"arrowleft": "Left", "arrowright": "Right", "arrowup": "Up", "arrowdown": "Down", "option": "alt",
             "cmd": "super", "win": "super"}


class Untranslatable(ValueError):
    """An OpenAI action deskpilot cannot perform as it is; the message names the problem."""


def keys_text(keys: Any, what: str) -> str:
    """A list of OpenAI key names (`["CTRL", "A"]`) as one xdotool combination (`ctrl+a`)."""
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k.strip() for k in keys):
        raise Untranslatable(f"{what}: keys must be a non-empty list of key names, got {keys!r}")
    return "+".join(KEY_NAMES.get(k.strip().lower(), k.strip().lower()) for k in keys)


def _xy(action: dict[str, Any]) -> list[Any]:
    return [action.get("x"), action.get("y")]


def translate(action: dict[str, Any]) -> list[dict[str, Any]]:
    """One OpenAI computer action as canonical actions (display pixels); Untranslatable if impossible."""
    kind = action.get("type")
    held = keys_text(action["keys"], kind) if action.get("keys") else None
    if kind in ("click", "double_click"):
        name = "double_click" if kind == "double_click" else BUTTONS.get(action.get("button", "left"))
        if name is None:
            raise Untranslatable(f"click: button {action.get('button')!r} is not left, right or wheel")
        return [{"action": name, "coordinate": _xy(action), **({"text": held} if held else {})}]
    if kind == "drag":
        path = action.get("path")
        if not isinstance(path, list) or len(path) < 2 or not all(isinstance(p, dict) for p in path):
            raise Untranslatable("drag: path must hold at least two points {x, y}")
        points = [_xy(p) for p in path]
        if len(points) == 2:
            return [{"action": "left_click_drag", "start_coordinate": points[0], "coordinate": points[1],
                     **({"text": held} if held else {})}]
        if held:
            raise Untranslatable("drag: held keys are only possible on a straight drag (two points)")
        return ([{"action": "left_mouse_down", "coordinate": points[0]}]
                + [{"action": "mouse_move", "coordinate": p} for p in points[1:-1]]
                + [{"action": "left_mouse_up", "coordinate": points[-1]}])
    if kind == "move":
        if held:
            raise Untranslatable("move: the pointer cannot move with keys held")
        return [{"action": "mouse_move", "coordinate": _xy(action)}]
    if kind == "keypress":
        return [{"action": "key", "text": keys_text(action.get("keys"), "keypress")}]
    if kind == "type":
        return [{"action": "type", "text": action.get("text")}]
    if kind == "scroll":
        return _scroll(action, held)
    if kind == "screenshot":
        return [{"action": "screenshot"}]
    if kind == "wait":
        return [{"action": "wait", "duration": WAIT_S}]
    raise Untranslatable(f"unknown computer action {kind!r}")


def _scroll(action: dict[str, Any], held: str | None) -> list[dict[str, Any]]:
    out = []
    for axis, negative, positive in (("scroll_y", "up", "down"), ("scroll_x", "left", "right")):
        amount = action.get(axis) or 0
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise Untranslatable(f"scroll: {axis} must be whole pixels, got {amount!r}")
        if amount:
            out.append({"action": "scroll", "coordinate": _xy(action),
                        "scroll_direction": positive if amount > 0 else negative,
                        "scroll_amount": max(1, math.ceil(abs(amount) / PIXELS_PER_CLICK)),
                        **({"text": held} if held else {})})
    if not out:
        raise Untranslatable("scroll: scroll_x and scroll_y are both 0")
    return out


def render_tool(tool: ToolSpec) -> dict[str, Any]:
    """The computer as `computer_use_preview` with its display, every other tool as a function."""
    if tool.kind == "computer" and tool.display is not None:
        return {"type": "computer_use_preview", "display_width": tool.display.width,
                "display_height": tool.display.height, "environment": "linux"}
    return {"type": "function", "name": tool.name, "description": tool.description, "parameters": tool.parameters}


class OpenAIComputerUse:
    """OpenAI's computer-use model: one Responses request per step, chained by previous_response_id."""

    computer_actions = ACTIONS
    plans_in_words = True  # function tools work too, so it can plan for a grounder

    def __init__(self, name: str, config: ModelConfig) -> None:
        self.name, self.config = name, config
        self.price = price_of(config, PRICES, name)
        self._client: Any = None
        self._chain: tuple[str, list[int], Reply] | None = None  # last response id, the turns it saw, its reply

    def image_size(self, screen: Size) -> Size:
        """The declared display: short side <= 768, long side <= 2048, never upscaled."""
        scale = min(1.0, MAX_SHORT_SIDE / min(screen.width, screen.height),
                    MAX_LONG_SIDE / max(screen.width, screen.height))
        return fit_image_size(screen, math.floor(max(screen.width, screen.height) * scale),
                              screen.width * screen.height)

    def preflight(self) -> None:
        """ModelUnavailable without OPENAI_API_KEY (unless a base URL names another server)."""
        check_credentials(self.config, FAMILY, needs_server=False)

    @property
    def client(self) -> Any:
        """The SDK client, made on first use."""
        if self._client is None:
            self._client = make_client(self.config, FAMILY, needs_server=False)
        return self._client

    def query(self, system: str, history: Sequence[Turn], tools: Sequence[ToolSpec]) -> Reply:
        """One Responses request: the new turns after the last response, or the whole history."""
        ids = [id(turn) for turn in history]
        kwargs: dict[str, Any] = {"model": self.name, "instructions": system, "truncation": "auto",
                                  "tools": [render_tool(tool) for tool in tools],
                                  "max_output_tokens": self.config.max_tokens}
        start = self._continues(history, ids)
        if start:
            kwargs["previous_response_id"] = self._chain[0] if self._chain else None
        kwargs["input"] = render_items(history, start=start)
        if self.config.temperature is not None:
            kwargs["temperature"] = self.config.temperature
        client = self.client
        response, latency = request(lambda: client.responses.create(**kwargs), self.config, f"model {self.name!r}")
        items = [item.model_dump(mode="json", exclude_none=True) for item in response.output or []]
        text, calls = read_output(items)
        usage = response.usage
        details = getattr(usage, "input_tokens_details", None)
        counted = usage_of(getattr(usage, "input_tokens", 0) or 0, getattr(usage, "output_tokens", 0) or 0,
                           getattr(details, "cached_tokens", 0) or 0, self.price)
        reply = Reply(text, calls, counted, latency, response.model or self.name, response.status, items)
        self._chain = (response.id, ids, reply)
        return reply

    def _continues(self, history: Sequence[Turn], ids: list[int]) -> int:
        """Where the new turns start when `history` extends the last request and its reply (else 0)."""
        if self._chain is None:
            return 0
        _, seen, reply = self._chain
        k = len(seen)
        if len(ids) > k + 1 and ids[:k] == seen and isinstance(history[k], AssistantTurn) \
                and history[k].reply is reply:
            return k + 1
        return 0


def read_output(items: list[dict[str, Any]]) -> tuple[str, list[ToolCall]]:
    """(the reply's text, its calls): computer_calls as canonical computer calls, function_calls as they are."""
    items = [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
    texts = [part.get("text") for item in items if item.get("type") == "message"
             for part in _dicts(item.get("content")) if part.get("type") == "output_text"]
    if not texts:
        texts = [summary.get("text") for item in items if item.get("type") == "reasoning"
                 for summary in _dicts(item.get("summary"))]
    calls: list[ToolCall] = []
    for item in items:
        if item.get("type") == "function_call":
            calls.append(parse_arguments(item.get("call_id", ""), item.get("name", ""), item.get("arguments")))
        elif item.get("type") == "computer_call":
            calls += computer_calls(item)
    return "\n".join(t for t in texts if isinstance(t, str) and t).strip(), calls


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def computer_calls(item: dict[str, Any]) -> list[ToolCall]:
    """A computer_call item as canonical computer calls (several for a batch or a drag along a path)."""
    call_id = str(item.get("call_id") or item.get("id") or "computer_call")
    checks = tuple(f"{c.get('code') or 'safety check'}: {c.get('message') or ''}".strip()
                   for c in _dicts(item.get("pending_safety_checks")))
    batch = item.get("actions") if isinstance(item.get("actions"), list) and item["actions"] else [item.get("action")]
    actions: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for action in batch:
        if not isinstance(action, dict):
            return [ToolCall(call_id, "computer", {}, raw=action, error="the computer_call has no action")]
        try:
            actions += [(canonical, action) for canonical in translate(action)]
        except Untranslatable as exc:
            return [ToolCall(call_id, "computer", {}, raw=action, error=str(exc), checks=checks)]
    return [ToolCall(sub_id(call_id, n, len(actions)), "computer", canonical, raw=action, checks=checks)
            for n, (canonical, action) in enumerate(actions)]


def render_items(history: Sequence[Turn], start: int = 0) -> list[dict[str, Any]]:
    """Input items for the turns from `start` on (earlier turns only lend their latest screenshot)."""
    items: list[dict[str, Any]] = []
    latest: Frame | None = None
    pending: dict[str, dict[str, Any]] = {}
    for n, turn in enumerate(history):
        if isinstance(turn, UserTurn):
            latest = turn.images[-1] if turn.images else latest
            if n >= start:
                items.append({"role": "user", "content": [
                    {"type": "input_text", "text": p} if isinstance(p, str)
                    else {"type": "input_image", "image_url": data_url(p)} for p in turn.parts]})
        elif isinstance(turn, AssistantTurn):
            if n >= start:
                items += [i for i in turn.reply.raw if i.get("type") in ("message", "reasoning", "computer_call",
                                                                          "function_call")]
            pending = {i.get("call_id"): i for i in turn.reply.raw if i.get("type") == "computer_call"}
        elif isinstance(turn, ToolTurn):
            latest = next((r.image for _, r in reversed(turn.results) if r.image is not None), latest)
            if n >= start:
                items += _outputs(turn, pending, latest)
    return items


def _outputs(turn: ToolTurn, pending: dict[str, dict[str, Any]], screen: Frame | None) -> list[dict[str, Any]]:
    """One output per model call: computer_call_output with the screen (acknowledging its safety checks
    only when every canonical call it became ran), function_call_output with the text; failures in words."""
    grouped: dict[str, list[tuple[ToolCall, Any]]] = {}
    for call, result in turn.results:
        grouped.setdefault(origin_id(call.id), []).append((call, result))
    items, notes = [], []
    for call_id, pairs in grouped.items():
        failed = [result.error for _, result in pairs if result.error]
        if call_id in pending:
            output: dict[str, Any] = {"type": "computer_call_output", "call_id": call_id}
            if screen is not None:
                output["output"] = {"type": "computer_screenshot", "image_url": data_url(screen)}
            checks = pending[call_id].get("pending_safety_checks") or []
            if checks and not failed:
                output["acknowledged_safety_checks"] = checks
            items.append(output)
            notes += [f"The action was not performed as asked: {error}" for error in failed]
        else:
            items.append({"type": "function_call_output", "call_id": call_id,
                          "output": "\n".join(result_text(result) for _, result in pairs)})
    if notes:
        items.append({"role": "user", "content": [{"type": "input_text", "text": "\n".join(notes)}]})
    return items


def create(name: str, config: ModelConfig) -> OpenAIComputerUse:
    """The registry's entry point: `openai/NAME` (computer-use-preview)."""
    return OpenAIComputerUse(name, config)
