"""Grounding error: how far from where a model pointed does the click land, per family and screen size.

For each family (ui-tars, qwen2.5-vl, qwen3-vl, openai, chat) and screen (1280x800, 1920x1080,
2560x1440), 40 random screen positions (seeded) are written as the family writes a click at them
(a UI-TARS action text, a Qwen tool call on its image or 0..1000 grid, an OpenAI computer_call,
a chat function call), read by the family's own reader and validated and mapped by the computer
tool: exactly the code path of a run up to the executor. The error is the distance, in screen
pixels, between the click's pixel and the position the model's coordinate names (a model pixel
names its centre; a grid value names its fraction of the screen). One click per family and size
is also performed on a real Xvfb of that size and read back from the probe window, which must
report the very pixel the mapping chose. Target: at most 1 px everywhere. Prints one JSON object.
"""

from __future__ import annotations

import json
import math
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent.models import registry
from agent.models.base import ModelConfig
from agent.models.chat_format import parse_arguments
from agent.models.openai_client import Completion
from agent.models.openai_responses import read_output
from agent.models.ui_tars_actions import parse_reply
from agent.tools.computer import ComputerTool
from agent.types import ToolCall, Usage
from vision.geometry import ScreenMap, Size

FAMILIES = ("ui-tars", "qwen2.5-vl", "qwen3-vl", "openai", "chat")
SCREENS = (Size(1280, 800), Size(1920, 1080), Size(2560, 1440))
POSITIONS = 40
TARGET_PX = 1.0


def model_for(family: str) -> Any:
    return registry.create(replace(ModelConfig(), model=f"{family}/bench", base_url="http://127.0.0.1:9/v1"))


def written(family: str, screen: Size, image: Size, point: tuple[int, int]) -> tuple[list[int], tuple[float, float]]:
    """(what the family writes to click at screen `point`, the screen position that names, pixel-index units)."""
    if family == "qwen3-vl":
        g = [round((point[0] + 0.5) * 1000 / screen.width), round((point[1] + 0.5) * 1000 / screen.height)]
        return g, (g[0] / 1000 * screen.width - 0.5, g[1] / 1000 * screen.height - 0.5)
    m = list(ScreenMap(screen, image).to_model(*point))
    return m, ((m[0] + 0.5) * screen.width / image.width - 0.5, (m[1] + 0.5) * screen.height / image.height - 0.5)


def read_click(family: str, model: Any, image: Size, xy: list[int]) -> ToolCall:
    """The family's reply clicking at `xy`, read by the family's own reader."""
    x, y = xy
    if family == "ui-tars":
        [(action, source)] = parse_reply(f"Thought: click\nAction: click(start_box='({x},{y})')").actions
        return ToolCall("c", "computer", action, raw=source)
    if family.startswith("qwen"):
        args = {"action": "left_click", "coordinate": [x, y]}
        text = "<tool_call>\n" + json.dumps({"name": "computer_use", "arguments": args}) + "\n</tool_call>"
        reply = model.reply(Completion(text, [], Usage(), "m", "stop", 0.0, {"content": text}), image)
        return reply.tool_calls[0]
    if family == "openai":
        click = {"type": "click", "button": "left", "x": x, "y": y}
        items = [{"type": "computer_call", "call_id": "c", "action": click, "pending_safety_checks": []}]
        return read_output(items)[1][0]
    return parse_arguments("c", "computer", json.dumps({"action": "left_click", "coordinate": [x, y]}))


def measure(family: str, screen: Size, rng: random.Random) -> tuple[float, list[tuple[list[int], tuple[int, int]]]]:
    """(max error in screen px over the positions, [(model coordinate, landing)] for the real check)."""
    model = model_for(family)
    image = model.image_size(screen)
    tool = ComputerTool(None, ScreenMap(screen, image), fit=model.image_size,  # type: ignore[arg-type]
                        actions=model.computer_actions)
    worst, seen = 0.0, []
    for _ in range(POSITIONS):
        point = (rng.randrange(screen.width), rng.randrange(screen.height))
        xy, named = written(family, screen, image, point)
        call = read_click(family, model, image, xy)
        assert call.error is None, call.error
        action, _ = tool.parse(call.input)
        landing = tuple(action.coordinate)
        worst = max(worst, math.dist(landing, named))
        seen.append((xy, landing))
    return worst, seen


def real_landings(screen: Size, clicks: dict[str, tuple[list[int], tuple[int, int]]]) -> dict[str, bool]:
    """Perform one click per family on an Xvfb of `screen` with the probe window; True where it landed as mapped."""
    from actions.platform import open_executor
    from actions.platform.x11.desktop import VirtualDesktop
    from actions.vocabulary import parse_action
    from tests.conftest import start_probe

    ok = {}
    with tempfile.TemporaryDirectory() as tmp, VirtualDesktop(screen).start() as desktop:
        probe = start_probe(desktop, Path(tmp) / "events.jsonl")
        executor = open_executor(desktop.display)
        try:
            for family, (_, landing) in clicks.items():
                probe.mark()
                executor.perform(parse_action({"action": "left_click", "coordinate": list(landing)}))
                events = probe.wait_for(lambda ev: any(e["type"] == "press" for e in ev))
                press = next(e for e in events if e["type"] == "press")
                ok[family] = (press["x"], press["y"]) == tuple(landing)
                time.sleep(0.05)
        finally:
            executor.close()
    return ok


def main() -> None:
    rng = random.Random(13)
    errors: dict[str, dict[str, float]] = {}
    real: dict[str, dict[str, bool]] = {}
    for screen in SCREENS:
        picks = {}
        for family in FAMILIES:
            worst, seen = measure(family, screen, rng)
            errors.setdefault(family, {})[str(screen)] = round(worst, 3)
            picks[family] = seen[0]
        real[str(screen)] = real_landings(screen, picks)
    overall = max(v for sizes in errors.values() for v in sizes.values())
    print(json.dumps({"benchmark": "grounding_error", "positions_per_size": POSITIONS,
                      "max_error_px": errors, "overall_max_error_px": overall, "target_px": TARGET_PX,
                      "within_target": overall <= TARGET_PX, "real_landing_matches_mapping": real,
                      "python": sys.version.split()[0]}))


if __name__ == "__main__":
    main()
