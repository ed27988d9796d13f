"""The MCP tools and resources of `deskpilot mcp`: names, JSON Schemas, descriptions, and their calls.

Each tool is an async function whose signature (types and `Field` descriptions) the SDK turns
into the tool's JSON Schema; the work runs on a worker thread through the `Desk` (or a delegated
runner), and the answer becomes a `CallToolResult`: text, a PNG where there is one, structured
data where there is some, and `isError` for anything refused or invalid. Descriptions carry the
screenshot size, so a model needs no other prompt.

This module does not use postponed annotations: the SDK reads the signatures at run time.
"""

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from actions.vocabulary import ACTION_NAMES, MAX_DURATION_S, MAX_REPEAT, MAX_SCROLL
from agent.mcp.delegate import Helpers
from agent.mcp.desk import Answer, Desk, Refused
from agent.mcp.recordings import Reporter

MID_CALL_REQUESTS_END = "2026-07-28"  # from this protocol version on, a call cannot send the client a request
ActionName = Literal[ACTION_NAMES]  # type: ignore[valid-type]  # the canonical vocabulary, as an enum
Point = Annotated[list[int] | None, Field(min_length=2, max_length=2,
                                          description="[x, y] in screenshot pixels")]

SCREENSHOT = ("Take a screenshot of the desktop ({display}): one PNG image, {size} pixels, and its size as text. "
              "Every coordinate of the computer and find tools is a pixel of this image: x 0..{xmax}, y 0..{ymax}. "
              "The computer tool already returns a fresh screenshot after each action.")
COMPUTER = (
    "Use the mouse and keyboard of the desktop ({display}), one action per call. Coordinates are [x, y] pixels of "
    "the {size} screenshot (x 0..{xmax}, y 0..{ymax}). After acting, the tool waits until the screen stops "
    "changing and returns the new screenshot. Actions and their fields:\n"
    "- left_click, right_click, middle_click, double_click, triple_click: coordinate (else where the pointer is), "
    "text = modifier keys to hold, e.g. \"shift\" or \"ctrl\"\n"
    "- mouse_move: coordinate; left_click_drag: start_coordinate and coordinate\n"
    "- left_mouse_down, left_mouse_up: coordinate (optional); the button stays down until left_mouse_up\n"
    "- scroll: scroll_direction (up, down, left, right), scroll_amount (wheel clicks, 1..{max_scroll}), "
    "coordinate (optional), text = modifier keys (optional)\n"
    "- type: text (any Unicode; a newline presses Return)\n"
    "- key: text = xdotool-style key names such as \"ctrl+s\", \"Return\", \"alt+Tab\", \"F5\", several separated by "
    "spaces; repeat (optional)\n"
    "- hold_key: text and duration (seconds); wait: duration (seconds, up to {max_wait:g})\n"
    "- zoom: region [x0, y0, x1, y1] (x1/y1 exclusive), returned at full screen resolution; coordinates stay those "
    "of the full screenshot\n"
    "- screenshot; cursor_position\n"
    "Every action passes deskpilot's safety policy: risky ones (session keys such as ctrl+alt+Delete, typing sudo "
    "or rm -rf into a terminal, ...) need a person's confirmation or are refused. An invalid, out-of-bounds or "
    "refused action is an error that says why, and nothing is done.")
FIND = ("Find text on the desktop's screen by OCR, or elements by accessibility role and name. Give `text` (a word "
        "or phrase; case and small OCR slips are tolerated unless `exact` is true), or `role` (ARIA names: button, "
        "textbox, checkbox, menuitem, link, ...) and/or `name` (a case-insensitive part of the element's name; the "
        "whole name, case included, with `exact`). Returns JSON {{\"matches\": [{{\"text\" (or \"role\" and "
        "\"name\"), \"box\": [x0, y0, x1, y1], \"center\": [x, y]}}]}} in pixels of the {size} screenshot, every "
        "equally good match in reading order; click a match's center with the computer tool. Not found: an error "
        "naming the closest texts seen, or for elements what exists but does not show and the name under other "
        "roles. Elements need an application with an accessibility tree (GTK, Qt; not Tk).")
RUN_TASK = ("Run a deskpilot task file (YAML: setup commands, scripted steps that find targets by text or image, "
            "checks) on this desktop. `path`: the file, absolute or relative to the server's working directory. "
            "Returns the outcome (succeeded or failed, with why), every check, and `recording: PATH`, the run's "
            "recording. A failed task is an outcome, not an error; an invalid task file is an error.")
REPLAY = ("Replay a deskpilot recording on this desktop, finding every recorded target again on the live screen "
          "(it stops rather than click a target it cannot find). `recording`: a recording folder, or a name listed "
          "by the resource deskpilot://recordings; `from`/`to`: first and last step index, inclusive. Returns the "
          "outcome and `recording: PATH`.")
RUN_GOAL = ("Hand a whole goal to deskpilot's own agent loop, which works on this desktop with its own model until "
            "done. Works only where the server has that model configured (e.g. ANTHROPIC_API_KEY in the server's "
            "environment); otherwise an error says what to set. `goal`: what to do; `model`: FAMILY/NAME (default "
            "{model}). Returns the outcome and `recording: PATH`.")


def to_result(answer: Answer) -> Any:
    """An Answer as the SDK's CallToolResult."""
    from mcp_types import CallToolResult, ImageContent, TextContent

    content: list[Any] = [TextContent(type="text", text=answer.text)]
    if answer.image is not None:
        content.append(ImageContent(type="image", data=answer.image.base64(), mime_type=answer.image.media_type))
    return CallToolResult(content=content, structured_content=answer.data, is_error=answer.error)


def asker_for(context: Any, desk: Desk) -> Any:
    """The elicitation asker for this call's client, or None when it cannot ask (or --confirm is not ask)."""
    import anyio.from_thread

    from agent.mcp.guard import Confirmation, question
    from agent.safety.confirm import Denied

    capabilities = getattr(context, "client_capabilities", None)
    if desk.config.confirm != "ask" or capabilities is None or capabilities.elicitation is None:
        return None
    if (getattr(context, "protocol_version", None) or "") >= MID_CALL_REQUESTS_END:
        return None  # no server-to-client requests during a call on this protocol version

    def ask(verdict: Any, call: Any, action: Any) -> str:
        try:
            reply = anyio.from_thread.run(context.elicit, question(verdict, call, action), Confirmation)
        except Exception as exc:  # the client went away or cannot answer: refused, saying so
            rule = f"policy rule {verdict.rule!r}" if verdict.rule else "the safety policy"
            raise Denied(f"refused by {rule}: {verdict.reason} (it needs a person's confirmation and the client "
                         f"could not be asked: {type(exc).__name__})") from None
        return reply.data.decision if reply.action == "accept" else "deny"

    return ask


def progress_for(context: Any) -> Callable[[dict, Any], None]:
    """A per-step callback that reports a delegated run's progress to the client (best effort)."""
    import anyio.from_thread

    def on_step(step: dict, usage: Any) -> None:
        action = step.get("action") or {}
        what = step.get("describe") or action.get("action") or action.get("tool") or "step"
        with contextlib.suppress(Exception):  # progress is a courtesy; the run goes on
            anyio.from_thread.run(context.report_progress, step["i"] + 1, None, f"step {step['i']}: {what}")

    return on_step


def declare(fn: Callable[..., Any], **parameters: Any) -> None:
    """Give `fn(**arguments)` the keyword parameters the SDK reads: NAME=annotation or (annotation, default).
    An alias in a parameter's Field is the name the client uses, and the key `fn` receives."""
    import inspect

    signature, annotations = [], {}
    for name, spec in parameters.items():
        annotation, default = spec if isinstance(spec, tuple) else (spec, inspect.Parameter.empty)
        signature.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                           annotation=annotation))
        annotations[name] = annotation
    fn.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    fn.__annotations__ = {**annotations, "return": Any}


def register(server: Any, desk: Desk, mark: Callable[[], None], reporter: Reporter | None = None) -> None:
    """Add every tool and resource to `server`; `mark()` tells the recorder middleware a call is recorded."""
    from mcp.server.mcpserver import Context
    from mcp_types import ToolAnnotations

    from agent.mcp import delegate
    from agent.models.base import DEFAULT_MODEL

    size = desk.image_size
    fmt = {"display": desk.display, "size": str(size), "xmax": size.width - 1, "ymax": size.height - 1,
           "max_scroll": MAX_SCROLL, "max_wait": MAX_DURATION_S, "model": DEFAULT_MODEL}

    async def run(tool: str, args: dict[str, Any], work: Callable[[], Answer]) -> Any:
        import anyio
        import anyio.to_thread

        mark()
        try:
            answer = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            desk.interrupt()  # the client went away or cancelled: stop the action, let go of every key and button
            raise
        except Refused as exc:
            answer = Answer(str(exc), error=True)
            desk.journal.log_call(tool, args, answer)
        return to_result(answer)

    async def screenshot() -> Any:
        return await run("screenshot", {}, desk.screenshot)

    async def computer(
        ctx: Context,
        action: Annotated[ActionName, Field(description="the action to perform (see the tool description)")],
        coordinate: Point = None,
        start_coordinate: Annotated[list[int] | None, Field(min_length=2, max_length=2, description=(
            "left_click_drag: [x, y] where the drag starts, in screenshot pixels"))] = None,
        text: Annotated[str | None, Field(description=(
            "type: the text; key and hold_key: key names; clicks and scroll: modifier keys to hold"))] = None,
        scroll_direction: Literal["up", "down", "left", "right"] | None = None,
        scroll_amount: Annotated[int | None, Field(description=f"scroll: wheel clicks, 1..{MAX_SCROLL}")] = None,
        duration: Annotated[float | None, Field(description="wait and hold_key: seconds")] = None,
        repeat: Annotated[int | None, Field(description=f"key: how many times, 1..{MAX_REPEAT}")] = None,
        region: Annotated[list[int] | None, Field(min_length=4, max_length=4, description=(
            "zoom: [x0, y0, x1, y1] in screenshot pixels, x1/y1 exclusive"))] = None,
    ) -> Any:
        data = {"action": action, **{k: v for k, v in (
            ("coordinate", coordinate), ("start_coordinate", start_coordinate), ("text", text),
            ("scroll_direction", scroll_direction), ("scroll_amount", scroll_amount), ("duration", duration),
            ("repeat", repeat), ("region", region)) if v is not None}}
        return await run("computer", data, functools.partial(desk.computer, data, asker_for(ctx, desk)))

    async def find(
        text: Annotated[str | None, Field(description="the words to find on the screen")] = None,
        exact: Annotated[bool, Field(description="same words and case, no OCR tolerance")] = False,
        role: Annotated[str | None, Field(description="accessibility role, ARIA's name (button, textbox, ...)")] = None,
        name: Annotated[str | None, Field(description="accessibility name, or a part of it")] = None,
    ) -> Any:
        args = {k: v for k, v in (("text", text), ("role", role), ("name", name)) if v is not None}
        return await run("find", args, functools.partial(desk.find, text, role, name, exact))

    async def run_task(ctx: Context, path: Annotated[str, Field(description="the task file (YAML)")]) -> Any:
        helpers = Helpers(asker_for(ctx, desk), progress_for(ctx))
        return await run("run_task", {"path": path}, functools.partial(delegate.run_task, desk, path, helpers))

    async def replay(**arguments: Any) -> Any:  # its parameters `from` and `to` are Python keywords
        ctx, recording = arguments["ctx"], arguments["recording"]
        start, end = arguments.get("from"), arguments.get("to")
        args = {"recording": recording, **{k: v for k, v in (("from", start), ("to", end)) if v is not None}}
        helpers = Helpers(None, progress_for(ctx))
        return await run("replay", args, functools.partial(delegate.replay, desk, recording, start, end, helpers))

    declare(replay, ctx=Context,
            recording=Annotated[str, Field(description="a recording folder, or its name in the recordings folder")],
            start=(Annotated[int | None, Field(alias="from", description="first step index (default 0)")], None),
            end=(Annotated[int | None, Field(alias="to", description="last step index, inclusive (default the last)")],
                 None))

    async def run_goal(
        ctx: Context,
        goal: Annotated[str, Field(description="what deskpilot's agent should do")],
        model: Annotated[str | None, Field(description=f"FAMILY/NAME (default {DEFAULT_MODEL})")] = None,
    ) -> Any:
        helpers = Helpers(asker_for(ctx, desk), progress_for(ctx))
        args = {"goal": goal, **({"model": model} if model else {})}
        return await run("run_goal", args, functools.partial(delegate.run_goal, desk, goal, model, helpers))

    reading = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
    acting = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True)
    for fn, text, hints in ((screenshot, SCREENSHOT, reading), (computer, COMPUTER, acting), (find, FIND, reading),
                            (run_task, RUN_TASK, acting), (replay, REPLAY, acting), (run_goal, RUN_GOAL, acting)):
        server.add_tool(fn, name=fn.__name__, description=text.format(**fmt), annotations=hints)
    _resources(server, desk, reporter)


def _resources(server: Any, desk: Desk, reporter: Reporter | None) -> None:
    from mcp.server.mcpserver.exceptions import ResourceError

    from agent.mcp import recordings

    out = Path(desk.config.out)

    def guarded(read: Callable[[], str]) -> str:
        try:
            return read()
        except (recordings.UnknownRecording, OSError, ValueError) as exc:
            raise ResourceError(str(exc)) from None

    @server.resource("deskpilot://recordings", name="recordings", mime_type="application/json",
                     description="The recordings folder: every recording (this session's too), newest first.")
    def recordings_list() -> str:
        return guarded(lambda: recordings.list_recordings(out))

    @server.resource("deskpilot://recordings/{name}/meta", name="recording-meta", mime_type="application/json",
                     description="A recording's meta.json: what ran, on which screen, how it ended, its summary.")
    def recording_meta(name: str) -> str:
        return guarded(lambda: recordings.recording_meta(out, name))

    @server.resource("deskpilot://recordings/{name}/report", name="recording-report", mime_type="text/html",
                     description="A recording's HTML report (written into its folder as report.html).")
    def recording_report(name: str) -> str:
        return guarded(lambda: recordings.recording_report(out, name, reporter))

    del recordings_list, recording_meta, recording_report  # registered; nothing else refers to them


__all__ = ["asker_for", "progress_for", "register", "to_result"]
