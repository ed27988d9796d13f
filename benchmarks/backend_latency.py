"""Per-action time of the two platform backends, x11 (XTest) and portable (pyautogui, pynput), same run.

Both act through the executor (`perform`, which validates, acts and releases), each on its own
virtual display of the same size showing the same full-screen text window (two displays, so that
neither re-maps the spare keycodes the other lent for typing): a click, typing 20 ASCII
characters, typing 20 characters of which 10 the keyboard map lacks, a key combination, and a
drag (whose time is mostly the executor's pacing: 12 steps of 10 ms). The backends take turns
action by action, so load on the machine falls on both alike. Median of RUNS after WARMUP rounds. Target: portable
within 2x of x11 for every action except typing. Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import time

from actions.platform import open_executor
from actions.vocabulary import parse_action
from benchmarks._screens import median_ms, text_desktop
from vision.geometry import Size

RUNS = 30
WARMUP = 3
TARGET = 2.0
ACTIONS: dict[str, dict] = {
    "click": {"action": "left_click", "coordinate": [640, 300]},
    "type_20_ascii": {"action": "type", "text": "deskpilot benchmark!"},
    "type_20_unicode": {"action": "type", "text": "αβγδεζηθικ deskpilot"},
    "key_combination": {"action": "key", "text": "ctrl+shift+Home"},
    "drag": {"action": "left_click_drag", "start_coordinate": [300, 200], "coordinate": [700, 500]},
}
TYPING = ("type_20_ascii", "type_20_unicode")
BACKENDS = ("x11", "portable")


def main() -> None:
    """Measure every action through both backends on one display and print the figures."""
    desktops = {name: text_desktop(Size(1280, 800)) for name in BACKENDS}
    executors: dict = {}
    try:
        executors = {name: open_executor(desktops[name].display, name) for name in BACKENDS}
        actions = {name: parse_action(data) for name, data in ACTIONS.items()}
        samples: dict[str, dict[str, list[float]]] = {b: {a: [] for a in ACTIONS} for b in BACKENDS}
        for round_ in range(WARMUP + RUNS):
            for action, parsed in actions.items():
                for backend in (BACKENDS if round_ % 2 else BACKENDS[::-1]):  # alternate who goes first
                    started = time.perf_counter()
                    result = executors[backend].perform(parsed)
                    elapsed = time.perf_counter() - started
                    if result.error:
                        raise SystemExit(f"{backend} {action} failed: {result.error}")
                    if round_ >= WARMUP:
                        samples[backend][action].append(elapsed)
    finally:
        for executor in executors.values():
            executor.close()
        for desktop in desktops.values():
            desktop.stop()
    medians = {b: {a: median_ms(s) for a, s in samples[b].items()} for b in BACKENDS}
    ratio = {a: round(medians["portable"][a] / max(medians["x11"][a], 0.001), 2) for a in ACTIONS}
    print(json.dumps({
        "benchmark": "backend_latency", "screen": "1280x800", "runs": RUNS, "warmup": WARMUP,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "x11_median_ms": medians["x11"], "portable_median_ms": medians["portable"],
        "portable_to_x11": ratio,
        "target": f"portable within {TARGET:g}x of x11 for every action except typing",
        "target_met": all(ratio[a] <= TARGET for a in ACTIONS if a not in TYPING),
    }))


if __name__ == "__main__":
    main()
