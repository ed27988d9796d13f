"""The `ui-tars` family: UI-TARS-1.5 over an OpenAI-compatible chat server (vLLM, ollama, ...).

The model gets its own desktop prompt and action space (`click`, `left_double`, `right_single`,
`drag`, `hotkey`, `type`, `scroll`, `wait`, `finished`, `call_user`) with the goal as the user
instruction, and its history as it was trained on it: its own `Thought:`/`Action:` texts and the
latest five screenshots as data URLs (older screenshots are left out, all texts stay). The loop's
system prompt and its bash and editor tools are not offered: the model knows none of them.

Coordinates are absolute pixels of the smart_resize image (factor 28, 100..16384 patches of 28x28):
the screenshot is sent at exactly that size, so the server does not resize it again, and the
computer tool maps it back to the screen through `vision.geometry`. A reply is read by
`ui_tars_actions`; one that cannot be read gets one correction turn, then becomes an error result
(nothing runs). `finished(...)` ends the run as succeeded, `call_user()` as failed (the task needs a
person). Local models have no price; `--price IN,OUT` gives one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent.models.base import Grounding
from agent.models.openai_client import (
    check_credentials,
    complete,
    data_url,
    make_client,
    price_of,
    request_record,
    sub_id,
)
from agent.models.ui_tars_actions import UnreadableReply, find_point, parse_reply
from agent.types import AssistantTurn, Reply, ToolCall, ToolTurn, Usage, UserTurn
from vision.geometry import Size, smart_resize

if TYPE_CHECKING:
    from agent.models.base import ModelConfig
    from agent.types import ToolSpec, Turn
    from vision.capture import Frame

FAMILY = "ui-tars"
FACTOR, MIN_PIXELS, MAX_PIXELS = 28, 100 * 28 * 28, 16384 * 28 * 28
HISTORY_IMAGES = 5  # the screenshots the model sees, as its authors run it
KNOWN_MODELS = ("ByteDance-Seed/UI-TARS-1.5-7B",)
ACTIONS = frozenset({"left_click", "double_click", "right_click", "mouse_move", "left_click_drag", "key", "type",
                     "scroll", "wait"})
OMITTED = "(an earlier screenshot, left out)"
PROMPT = """You are a GUI agent working on a Linux desktop. You are given a task, the history of your \
actions and screenshots; do the next action towards the task.

## Output Format
```
Thought: ...
Action: ...
```

## Action Space
click(start_box='<|box_start|>(x1,y1)<|box_end|>')
left_double(start_box='<|box_start|>(x1,y1)<|box_end|>')
right_single(start_box='<|box_start|>(x1,y1)<|box_end|>')
drag(start_box='<|box_start|>(x1,y1)<|box_end|>', end_box='<|box_start|>(x3,y3)<|box_end|>')
hotkey(key='ctrl c') # keys in lowercase, separated by spaces, at most three
type(content='xxx') # escape \\', \\" and \\n in the content; end it with \\n to submit what you typed
scroll(start_box='<|box_start|>(x1,y1)<|box_end|>', direction='down or up or right or left')
wait() # waits 5 seconds, then you get a new screenshot
finished(content='xxx') # the task is done; say what you did or found
call_user() # the task cannot be done, or it needs the user's help

## Note
- Use English in the `Thought` part.
- Write a short plan, and end the `Thought` part with one sentence saying your next action and its target.
- To type a secret, write its placeholder such as {{secret:NAME}}; never ask for the value.

## User Instruction
"""
CORRECTION = ("Your last reply could not be read: {problem}. Reply again in the output format, one `Thought:` "
              "and one `Action:` with an action of the action space, written exactly as shown there.")
GROUND_PROMPT = ("Point at one element of this screenshot. Reply with only its coordinate, as (x,y). "
                 "The element: {target}")


class UITars:
    """UI-TARS-1.5: one chat request per step (two when the reply needs a correction)."""

    computer_actions = ACTIONS
    plans_in_words = False  # it writes points itself; it can be a grounder, not a planner

    def __init__(self, name: str, config: ModelConfig) -> None:
        self.name, self.config = name, config
        self.price = price_of(config)
        self._client: Any = None
        self._ids = itertools.count(1)

    def image_size(self, screen: Size) -> Size:
        """The smart_resize size of the screen (factor 28): the image is sent at exactly this size."""
        return smart_resize(screen, FACTOR, MIN_PIXELS, MAX_PIXELS)

    def preflight(self) -> None:
        """ModelUnavailable without a server (--base-url or OPENAI_BASE_URL)."""
        check_credentials(self.config, FAMILY, needs_server=True)

    @property
    def client(self) -> Any:
        """The SDK client, made on first use."""
        if self._client is None:
            self._client = make_client(self.config, FAMILY, needs_server=True)
        return self._client

    def _send(self, messages: list[dict[str, Any]], purpose: str) -> tuple[str, dict[str, Any], Usage, float]:
        temperature = 0.0 if self.config.temperature is None else self.config.temperature
        answer = complete(self.client, self.config, self.name, messages, self.price, temperature=temperature)
        record = request_record(answer.model, purpose, answer.latency_s, answer.usage,
                                [{"type": "text", "text": answer.text}], answer.finish_reason)
        return answer.text, record, answer.usage, answer.latency_s

    def query(self, system: str, history: Sequence[Turn], tools: Sequence[ToolSpec]) -> Reply:
        """The next action; the loop's system prompt and tools are replaced by UI-TARS's own prompt."""
        messages = render_history(history)
        text, record, usage, latency = self._send(messages, "step")
        raw, records = [{"type": "text", "text": text}], [record]
        try:
            return self._reply(text, raw, records, usage, latency)
        except UnreadableReply as first:
            correction = CORRECTION.format(problem=first)
            messages += [{"role": "assistant", "content": text}, {"role": "user", "content": correction}]
            text, record, more, seconds = self._send(messages, "correction")
            raw += [{"type": "correction", "text": correction}, {"type": "text", "text": text}]
            records.append(record)
            usage, latency = usage + more, latency + seconds
            try:
                return self._reply(text, raw, records, usage, latency)
            except UnreadableReply as second:
                call = ToolCall(f"uitars_{next(self._ids)}", "computer", {}, raw=text,
                                error=f"the model's reply could not be read, even after a correction: {second}")
                return Reply("", [call], usage, latency, self.name, "unreadable", raw, records)

    def _reply(self, text: str, raw: list[dict[str, Any]], records: list[dict[str, Any]], usage: Usage,
               latency: float) -> Reply:
        parsed = parse_reply(text)
        requests = records if len(records) > 1 else []
        model = records[-1]["model"]
        if parsed.finished is not None:
            return Reply(parsed.finished or parsed.thought or "finished", [], usage, latency, model, "finished", raw,
                         requests)
        if parsed.call_user:
            why = f": {parsed.thought}" if parsed.thought else ""
            return Reply(f"IMPOSSIBLE: the model asked for the user's help (call_user){why}", [], usage, latency,
                         model, "call_user", raw, requests)
        call_id, count = f"uitars_{next(self._ids)}", len(parsed.actions)
        calls = [ToolCall(sub_id(call_id, n, count), "computer", action, raw=source)
                 for n, (action, source) in enumerate(parsed.actions)]
        return Reply(parsed.thought, calls, usage, latency, model, "action", raw, requests)

    def ground(self, image: Frame, target: str) -> Grounding:
        """Where `target` is on `image` (at image_size), in its pixels."""
        messages = [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": data_url(image)}},
            {"type": "text", "text": GROUND_PROMPT.format(target=target)}]}]
        text, record, usage, _ = self._send(messages, "ground")
        record["target"] = target
        try:
            x, y = find_point(text)
        except UnreadableReply as exc:
            return Grounding(None, f"the grounder gave no point for {target!r}: {exc}", usage, record)
        return Grounding((x, y), None, usage, record)


def render_history(history: Sequence[Turn]) -> list[dict[str, Any]]:
    """The history as UI-TARS was trained on it: its prompt with the goal, screenshots as user
    messages, its own texts as assistant messages; only the latest HISTORY_IMAGES screenshots."""
    messages: list[dict[str, Any]] = []
    for turn in history:
        if isinstance(turn, UserTurn):
            texts = [part for part in turn.parts if isinstance(part, str)]
            intro = PROMPT + "\n".join(texts) if not messages else "\n".join(texts)
            if intro:
                messages.append({"role": "user", "content": [{"type": "text", "text": intro}]})
            for image in turn.images:
                messages.append({"role": "user", "content": [_image(image)]})
        elif isinstance(turn, AssistantTurn):
            for part in turn.reply.raw or [{"type": "text", "text": turn.reply.text}]:
                role = "user" if part.get("type") == "correction" else "assistant"
                messages.append({"role": role, "content": part.get("text", "")})
        elif isinstance(turn, ToolTurn):
            content = _result_parts(turn)
            if content:
                messages.append({"role": "user", "content": content})
    return _keep_latest_images(messages, HISTORY_IMAGES)


def _image(frame: Frame) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": data_url(frame)}}


def _result_parts(turn: ToolTurn) -> list[dict[str, Any]]:
    """What the model should know of its actions' results: failures and notes in words, then the screen."""
    notes = []
    for call, result in turn.results:
        what = call.raw if isinstance(call.raw, str) else call.input.get("action", call.name)
        if result.error:
            notes.append(result.error if call.error else f"The action {what} failed: {result.error}")
        if result.system:
            notes.append(result.system)
    parts: list[dict[str, Any]] = [{"type": "text", "text": "\n".join(notes)}] if notes else []
    return parts + [_image(result.image) for _, result in turn.results if result.image is not None]


def _keep_latest_images(messages: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    slots = [(n, i) for n, m in enumerate(messages) if isinstance(m["content"], list)
             for i, part in enumerate(m["content"]) if part.get("type") == "image_url"]
    drop = set(slots[:max(0, len(slots) - keep)])
    if not drop:
        return messages
    kept = []
    for n, message in enumerate(messages):
        if not isinstance(message["content"], list):
            kept.append(message)
            continue
        content = [part for i, part in enumerate(message["content"]) if (n, i) not in drop]
        kept.append({**message, "content": content or [{"type": "text", "text": OMITTED}]})
    return kept


def create(name: str, config: ModelConfig) -> UITars:
    """The registry's entry point: `ui-tars/NAME`, NAME as the server serves it."""
    return UITars(name, config)
