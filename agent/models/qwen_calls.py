"""What the Qwen-VL families share: the `computer_use` function, reading its calls, the model itself.

The model calls `computer_use` (actions `key`, `type`, `mouse_move`, `left_click`, `left_click_drag`,
`right_click`, `middle_click`, `double_click`, `triple_click`, `scroll`, `hscroll`, `wait`,
`terminate`, `answer`). Its calls are read both as structured `tool_calls` (a server started with a
tool-call parser, e.g. vLLM's `--tool-call-parser hermes`) and as `<tool_call>{...}</tool_call>` text
(one without). The first request offers the function as a `tools` entry; a server that refuses
tools (400) is asked again, and from then on, with the function described in the system prompt
only. Qwen2.5-VL's chat template does not show tools to the model, so its system prompt always
describes the function.

Each family says how its coordinates reach the image: Qwen2.5-VL writes pixels of the smart_resize
image it is sent (factor 28), Qwen3-VL points on a 0..1000 grid (`vision.geometry.GridSpace`; its
images are smart_resized with factor 32). `left_click_drag` drags from wherever the pointer is: it
becomes `left_mouse_down` there and `left_mouse_up` at the coordinate. `scroll`/`hscroll` take
wheel clicks (`pixels`, positive up or right), as their executors scroll. `terminate` ends the run
(success or failure), `answer` ends it with the answer as its message. The history goes back as the
chat template renders it: the model's own text with its `<tool_call>` blocks, results as
`<tool_response>` user messages with the screenshot.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from agent.models.base import Grounding
from agent.models.chat_format import prune_images, result_text
from agent.models.openai_client import (
    RequestRefused,
    check_credentials,
    complete,
    data_url,
    make_client,
    origin_id,
    price_of,
    request_record,
    sub_id,
)
from agent.types import AssistantTurn, Reply, ToolCall, ToolTurn, UserTurn
from vision.geometry import CoordinateError, Size, smart_resize

if TYPE_CHECKING:
    from agent.models.base import ModelConfig
    from agent.models.openai_client import Completion
    from agent.types import ToolSpec, Turn
    from vision.capture import Frame

FUNCTION = "computer_use"
QWEN_ACTIONS = ("key", "type", "mouse_move", "left_click", "left_click_drag", "right_click", "middle_click",
                "double_click", "triple_click", "scroll", "hscroll", "wait", "terminate", "answer")
CANONICAL = frozenset({"key", "type", "mouse_move", "left_click", "right_click", "middle_click", "double_click",
                       "triple_click", "left_mouse_down", "left_mouse_up", "scroll", "wait"})
CLICKS = ("mouse_move", "left_click", "right_click", "middle_click", "double_click", "triple_click")
KEY_NAMES = {"arrowleft": "Left", "arrowright": "Right", "arrowup": "Up", "arrowdown": "Down"}
_TEXT_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.S)
SYSTEM = """You operate a Linux desktop with the computer_use function: after each action you get a new \
screenshot. Work step by step towards the user's task. When it is done, call computer_use with action \
"terminate" and status "success"; when it cannot be done, status "failure". To type a secret, type its \
placeholder such as {{secret:NAME}}; never ask for the value."""
TOOLS_TEXT = """

# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{tools}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> \
XML tags:
<tool_call>
{{"name": <function-name>, "arguments": <args-json-object>}}
</tool_call>"""
GROUND_TEXT = "Move the mouse onto this element (computer_use, action mouse_move): {target}"


def function(display: Size) -> dict[str, Any]:
    """The computer_use function; `display` is the coordinate space the model is told of."""
    actions = "\n".join(f"* `{name}`" for name in QWEN_ACTIONS)
    return {"type": "function", "function": {
        "name": FUNCTION,
        "description": ("Use a mouse and keyboard to interact with a computer, and take screenshots.\n"
                        "* This is a Linux desktop; after each action you receive a screenshot.\n"
                        f"* The screen's resolution is {display.width}x{display.height}.\n"
                        "* Click buttons, links and icons in their middle, never on their edges."),
        "parameters": {"type": "object", "required": ["action"], "properties": {
            "action": {"type": "string", "enum": list(QWEN_ACTIONS), "description": f"The action:\n{actions}"},
            "keys": {"type": "array", "description": "Required only by `action=key`: keys pressed together."},
            "text": {"type": "string", "description": "Required only by `action=type` and `action=answer`."},
            "coordinate": {"type": "array", "description": "(x, y): pixels from the left and top edges."},
            "pixels": {"type": "number", "description": "Wheel clicks of `scroll` (positive up) and `hscroll` "
                                                        "(positive right)."},
            "time": {"type": "number", "description": "Seconds, for `action=wait`."},
            "status": {"type": "string", "enum": ["success", "failure"],
                       "description": "Required only by `action=terminate`."}}}}}


class UnreadableCall(ValueError):
    """A computer_use call that cannot become canonical actions; the message names the problem."""


def read_calls(completion: Completion) -> tuple[str, list[tuple[str, Any]]]:
    """(the reply's text without tool-call blocks, [(call id, arguments or the unreadable text)]).

    Structured tool_calls are used when the server sent any; else the `<tool_call>` blocks of the text.
    """
    text = _TEXT_CALL.sub("", completion.text).strip()
    if completion.tool_calls:
        calls = []
        for n, call in enumerate(completion.tool_calls):
            fn = call["function"]
            if fn.get("name") != FUNCTION:
                calls.append((call.get("id") or f"call_{n}", f"unknown function {fn.get('name')!r}"))
                continue
            calls.append((call.get("id") or f"call_{n}", _json_object(fn.get("arguments"))))
        return text, calls
    calls = []
    for block in _TEXT_CALL.findall(completion.text):
        data = _json_object(block)
        if isinstance(data, dict) and data.get("name") != FUNCTION:
            data = f"unknown function {data.get('name')!r}"
        elif isinstance(data, dict):
            data = data.get("arguments") if isinstance(data.get("arguments"), dict) else \
                _json_object(data.get("arguments"))
        calls.append(("", data))
    return text, calls


def _json_object(value: Any) -> Any:
    if isinstance(value, dict):
        return value
    try:
        data = json.loads(value)
    except (TypeError, ValueError) as exc:
        return f"not valid JSON ({exc}): {str(value)[:80]!r}"
    return data if isinstance(data, dict) else f"not a JSON object: {str(value)[:80]!r}"


def to_canonical(args: dict[str, Any], point: Callable[[Any], list[int]]) -> list[dict[str, Any]]:
    """One computer_use call as canonical actions; `point` turns the model's coordinate into image pixels."""
    action = args.get("action")
    if action not in QWEN_ACTIONS:
        raise UnreadableCall(f"unknown action {action!r}; the actions are {', '.join(QWEN_ACTIONS)}")
    if action in CLICKS:
        if "coordinate" not in args:
            if action == "mouse_move":
                raise UnreadableCall("mouse_move: coordinate is missing")
            return [{"action": action}]
        return [{"action": action, "coordinate": point(args["coordinate"])}]
    if action == "left_click_drag":
        if "coordinate" not in args:
            raise UnreadableCall("left_click_drag: coordinate is missing")
        return [{"action": "left_mouse_down"}, {"action": "left_mouse_up", "coordinate": point(args["coordinate"])}]
    if action == "key":
        keys = args.get("keys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k.strip() for k in keys):
            raise UnreadableCall("key: keys must be a non-empty list of key names")
        return [{"action": "key", "text": "+".join(KEY_NAMES.get(k.strip().lower(), k.strip()) for k in keys)}]
    if action == "type":
        return [{"action": "type", "text": args.get("text")}]
    if action in ("scroll", "hscroll"):
        pixels = args.get("pixels")
        if isinstance(pixels, bool) or not isinstance(pixels, (int, float)) or pixels != int(pixels) or not pixels:
            raise UnreadableCall(f"{action}: pixels must be a non-zero whole number of wheel clicks, got {pixels!r}")
        up, down = ("up", "down") if action == "scroll" else ("right", "left")
        scroll: dict[str, Any] = {"action": "scroll", "scroll_direction": up if pixels > 0 else down,
                                  "scroll_amount": abs(int(pixels))}
        if "coordinate" in args:
            scroll["coordinate"] = point(args["coordinate"])
        return [scroll]
    if action == "wait":
        return [{"action": "wait", "duration": args.get("time")}]
    raise UnreadableCall(f"{action} ends the run and cannot come with other calls")  # terminate/answer


def numbers(value: Any) -> tuple[Any, Any]:
    """The two numbers of a coordinate; UnreadableCall otherwise."""
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise UnreadableCall(f"coordinate must be two numbers [x, y], got {value!r}")
    return value[0], value[1]


class Qwen:
    """A Qwen-VL model behind an OpenAI-compatible chat server; a family module says how it points."""

    computer_actions = CANONICAL
    plans_in_words = False

    def __init__(self, name: str, config: ModelConfig, *, family: str, factor: int,
                 to_image: Callable[[Any, Size, Size | None], list[int]], display: Callable[[Size], Size],
                 template_shows_tools: bool) -> None:
        self.name, self.config, self.family = name, config, family
        self.factor, self._to_image, self._display = factor, to_image, display
        self.template_shows_tools = template_shows_tools
        self.price = price_of(config)
        self.structured = True  # offer the function as `tools` until the server refuses them
        self._client: Any = None
        self._ids = itertools.count(1)
        self._image: Size | None = None
        self._screen: Size | None = None  # the screen the images show (the last image_size asked for)

    def image_size(self, screen: Size) -> Size:
        """The smart_resize size of the screen (the image is sent at exactly this size)."""
        self._image = smart_resize(screen, self.factor, 4 * self.factor ** 2, 16384 * self.factor ** 2)
        self._screen = screen
        return self._image

    def preflight(self) -> None:
        """ModelUnavailable without a server (--base-url or OPENAI_BASE_URL)."""
        check_credentials(self.config, self.family, needs_server=True)

    @property
    def client(self) -> Any:
        """The SDK client, made on first use."""
        if self._client is None:
            self._client = make_client(self.config, self.family, needs_server=True)
        return self._client

    def system(self, image: Size) -> str:
        """The system prompt: the task rules, and the function when the server will not show it."""
        text = SYSTEM
        if not self.structured or not self.template_shows_tools:
            text += TOOLS_TEXT.format(tools=json.dumps(function(self._display(image))))
        return text

    def _send(self, messages: list[dict[str, Any]], image: Size, purpose: str) -> tuple[Completion, dict]:
        temperature = 0.0 if self.config.temperature is None else self.config.temperature
        while True:
            body = [{"role": "system", "content": self.system(image)}, *messages]
            extra: dict[str, Any] = {"temperature": temperature}
            if self.structured:
                extra["tools"] = [function(self._display(image))]
            try:
                answer = complete(self.client, self.config, self.name, body, self.price, **extra)
            except RequestRefused as exc:
                if not self.structured or "tool" not in str(exc).lower():
                    raise
                self.structured = False  # e.g. vLLM without --enable-auto-tool-choice: describe it in text
                continue
            record = request_record(answer.model, purpose, answer.latency_s, answer.usage, [answer.message],
                                    answer.finish_reason)
            return answer, record

    def query(self, system: str, history: Sequence[Turn], tools: Sequence[ToolSpec]) -> Reply:
        """The next actions; the loop's system prompt and tools give way to the computer_use function."""
        image = _first_image(history) or self._image or Size(1000, 1000)
        messages = prune_images(render_history(history), self.config.context)
        answer, _ = self._send(messages, image, "step")
        return self.reply(answer, image)

    def point(self, value: Any, image: Size) -> list[int]:
        """A coordinate as the model wrote it -> pixels of the image; UnreadableCall when off the space."""
        try:
            screen = self._screen if self._image == image else None
            return self._to_image(numbers(value), image, screen)
        except CoordinateError as exc:
            raise UnreadableCall(f"coordinate {list(value)}: {exc}") from None

    def reply(self, answer: Completion, image: Size) -> Reply:
        """The completion as a Reply of canonical computer calls (or the end of the run)."""
        text, found = read_calls(answer)
        calls: list[ToolCall] = []
        for call_id, args in found:
            call_id = call_id or f"qwen_{next(self._ids)}"
            if not isinstance(args, dict):
                calls.append(ToolCall(call_id, "computer", {}, raw=args, error=f"{FUNCTION}: {args}"))
                continue
            if args.get("action") in ("terminate", "answer") and len(found) == 1:
                return self._end(args, text, answer)
            try:
                actions = to_canonical(args, lambda v: self.point(v, image))
            except UnreadableCall as exc:
                calls.append(ToolCall(call_id, "computer", {}, raw=args, error=f"{FUNCTION}: {exc}"))
                continue
            calls += [ToolCall(sub_id(call_id, n, len(actions)), "computer", action, raw=args)
                      for n, action in enumerate(actions)]
        if not found:
            calls.append(ToolCall(f"qwen_{next(self._ids)}", "computer", {}, raw=answer.text,
                                  error=f"no {FUNCTION} call in the reply: call it, with action terminate when the "
                                        "task is done"))
        return Reply(text, calls, answer.usage, answer.latency_s, answer.model, answer.finish_reason,
                     [answer.message])

    def _end(self, args: dict[str, Any], text: str, answer: Completion) -> Reply:
        if args.get("action") == "answer":
            message = str(args.get("text") or text or "answered")
        elif args.get("status") == "failure":
            message = f"IMPOSSIBLE: the model ended the task as a failure{': ' + text if text else ''}"
        else:
            message = text or "terminated: success"
        return Reply(message, [], answer.usage, answer.latency_s, answer.model, "terminate", [answer.message])

    def ground(self, image: Frame, target: str) -> Grounding:
        """Where `target` is on `image` (at image_size), in its pixels: the first call's coordinate."""
        messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(image)}},
                                                 {"type": "text", "text": GROUND_TEXT.format(target=target)}]}]
        answer, record = self._send(messages, image.size, "ground")
        record["target"] = target
        _, found = read_calls(answer)
        for _, args in found:
            if isinstance(args, dict) and "coordinate" in args:
                try:
                    x, y = self.point(args["coordinate"], image.size)
                except UnreadableCall as exc:
                    return Grounding(None, f"the grounder's point for {target!r} is unusable: {exc}", answer.usage,
                                     record)
                return Grounding((x, y), None, answer.usage, record)
        return Grounding(None, f"the grounder gave no coordinate for {target!r}", answer.usage, record)


def _first_image(history: Sequence[Turn]) -> Size | None:
    for turn in history:
        if isinstance(turn, UserTurn) and turn.images:
            return turn.images[0].size
    return None


def render_history(history: Sequence[Turn]) -> list[dict[str, Any]]:
    """The history as Qwen's chat template renders it: text tool calls and `<tool_response>` user messages."""
    messages: list[dict[str, Any]] = []
    for turn in history:
        if isinstance(turn, UserTurn):
            messages.append({"role": "user", "content": [
                {"type": "text", "text": p} if isinstance(p, str) else {"type": "image_url",
                                                                          "image_url": {"url": data_url(p)}}
                for p in turn.parts]})
        elif isinstance(turn, AssistantTurn):
            messages.append({"role": "assistant", "content": _assistant_text(turn)})
        elif isinstance(turn, ToolTurn):
            responses: dict[str, list[str]] = {}
            for call, result in turn.results:
                responses.setdefault(origin_id(call.id), []).append(result_text(result))
            content: list[dict[str, Any]] = [{"type": "text", "text": "\n".join(
                f"<tool_response>\n{chr(10).join(parts)}\n</tool_response>" for parts in responses.values())}]
            content += [{"type": "image_url", "image_url": {"url": data_url(r.image)}}
                        for _, r in turn.results if r.image is not None]
            messages.append({"role": "user", "content": content})
    return messages


def _assistant_text(turn: AssistantTurn) -> str:
    message = turn.reply.raw[0] if turn.reply.raw else {}
    text = message.get("content") or ""
    for call in message.get("tool_calls") or []:  # structured calls, written as the model wrote them
        fn = call.get("function") or {}
        args = fn.get("arguments")
        with contextlib.suppress(ValueError):
            args = json.loads(args) if isinstance(args, str) else args
        text += "\n<tool_call>\n" + json.dumps({"name": fn.get("name"), "arguments": args}, ensure_ascii=False) \
            + "\n</tool_call>"
    return text.strip()

