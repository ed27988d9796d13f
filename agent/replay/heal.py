"""Self-healing: asking a model once where a lost target is.

The live screenshot (at the model's image size) and "click on <the step's thought, else its
target text, else its description>" go to the model; the first computer `left_click` coordinate
of its reply, mapped to the screen, is the target (method `healed`). When the recorded point lay
beside its target text (`click: {text: "Name:", offset: [180, 0]}`), the same offset is added to
the text the model found. The call is logged in the replay's model.jsonl, its cost in its usage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.replay.locate import Located, Lost
from agent.types import Usage

if TYPE_CHECKING:
    from agent.recording.writer import RecordingWriter
    from agent.replay.plan import Planned
    from agent.types import ToolSpec
    from vision.capture import Frame
    from vision.geometry import ScreenMap

HEAL_SYSTEM = ("You locate things on a screenshot of a {width}x{height} screen. Answer with exactly one computer "
               "tool call: a left_click at the centre of what the user names.")


class Healer:
    """Asks `model` (anything with `.query(system, history, tools)` returning a Reply) for lost targets.

    `mapping` maps the model's image to the screen; `spec` is the computer tool as the model is told
    of it; `ratio` is the live screen's HiDPI scale over the recorded one. `usage` is what it cost.
    """

    def __init__(self, model: Any, mapping: ScreenMap, spec: ToolSpec | None, recorder: RecordingWriter,
                 ratio: float = 1.0) -> None:
        self.model, self.mapping, self.spec, self.recorder, self.ratio = model, mapping, spec, recorder, ratio
        self.usage = Usage()

    def heal(self, item: Planned, frame: Frame, lost: Lost) -> Located | None:
        """Ask the model once where the lost target is; None when it gives no usable click (`lost` says why)."""
        from agent.types import UserTurn
        from vision.capture import Frame
        from vision.encode import resize

        assert item.anchor is not None
        step = item.step
        target = step.get("start_target") if item.primary == "start_coordinate" else step.get("target")
        text = (target or {}).get("text") if isinstance(target, dict) else None
        description = (step.get("thought") or "").strip() or (f'"{text}"' if text else "") or item.describe()
        mapping = self.mapping
        system = HEAL_SYSTEM.format(width=mapping.model.width, height=mapping.model.height)
        view = Frame(resize(frame.pixels, mapping.model), frame.origin, frame.scale, frame.time)
        request = [UserTurn((view, f"click on {description[:500]}"))]
        try:
            reply = self.model.query(system, request, [self.spec])
        except Exception as exc:  # the replay stops as lost; the reason is kept
            lost.message += f"; healing failed: {exc}"
            return None
        self.usage += reply.usage
        self.recorder.add_usage(**reply.usage.as_dict())
        self.recorder.add_model_call({"purpose": "heal", "replayed_step": item.i, "model": reply.model,
                                      "stop_reason": reply.stop_reason, "latency_ms": round(reply.latency_s * 1000),
                                      "usage": reply.usage.as_dict(), "response": reply.raw})
        for call in reply.tool_calls:
            coordinate = call.input.get("coordinate")
            if call.name == "computer" and call.input.get("action") == "left_click" and coordinate:
                try:
                    px, py = mapping.to_screen(int(coordinate[0]), int(coordinate[1]))
                except (ValueError, TypeError, IndexError) as exc:
                    lost.message += f"; the model's click {coordinate} is unusable: {exc}"
                    return None
                (ax, ay), hint = item.anchor.point, item.hint
                if not step.get("thought") and hint is not None:  # the model found the text: keep the offset
                    x0, y0, x1, y1 = hint[1]
                    if not (x0 <= ax < x1 and y0 <= ay < y1):
                        px = round(px + (ax - (x0 + x1 - 1) / 2) * self.ratio)
                        py = round(py + (ay - (y0 + y1 - 1) / 2) * self.ratio)
                return Located((px, py), "healed", text=description[:200], shift=(px - ax, py - ay),
                               scale=self.ratio)
        lost.message += f"; the model gave no left_click for {description[:80]!r}"
        return None
