"""Settle: time from a click until the screen is settled, on a window that changes 50 ms later.

Each trial clicks a window that changes colour and text 50 ms after the click; deskpilot's
settle must return a frame that already shows the change (compared with a frame taken 0.5 s
later). The reference agents sleep a fixed time (Anthropic's demo 2.0 s, Cua 0.5 s); those are
measured the same way in the same run, with fewer trials since they are slow by design.
Prints one JSON object.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict

from actions.platform import open_executor
from actions.platform.x11.desktop import VirtualDesktop
from actions.vocabulary import parse_action
from benchmarks._screens import ROOT, median_ms
from vision.capture import Screen
from vision.geometry import Size
from vision.settle import SettleConfig, wait_until_settled

TRIALS = 30
REFERENCE_TRIALS = 5


def trial(screen: Screen, executor, wait) -> tuple[float, bool]:
    """Click, wait with `wait(before)`, and say whether the returned frame shows the final screen."""
    wait_until_settled(screen.grab)
    before = screen.grab()
    executor.perform(parse_action({"action": "left_click", "coordinate": [640, 400]}))
    started = time.perf_counter()
    frame = wait(before)
    elapsed = time.perf_counter() - started
    time.sleep(0.5)
    return elapsed, frame.same_as(screen.grab()) and not frame.same_as(before)


def fixed_sleep(screen: Screen, seconds: float):
    """The reference: sleep a fixed time, then take the screenshot."""
    def wait(_before):
        time.sleep(seconds)
        return screen.grab()
    return wait


def main() -> None:
    """Run the trials and print the figures."""
    desktop = VirtualDesktop(Size(1280, 800)).start()
    desktop.launch([sys.executable, str(ROOT / "tests" / "reactive_window.py"), "50"])
    time.sleep(1.0)
    results = {}
    try:
        with Screen(desktop.display) as screen:
            executor = open_executor(desktop.display)
            config = SettleConfig()
            waits = {
                "deskpilot": (TRIALS, lambda before: wait_until_settled(screen.grab, config, before).frame),
                "fixed_0.5s_cua": (REFERENCE_TRIALS, fixed_sleep(screen, 0.5)),
                "fixed_2.0s_anthropic_demo": (REFERENCE_TRIALS, fixed_sleep(screen, 2.0)),
            }
            for name, (count, wait) in waits.items():
                runs = [trial(screen, executor, wait) for _ in range(count)]
                results[name] = {"trials": count, "median_ms": median_ms([r[0] for r in runs]),
                                 "max_ms": round(max(r[0] for r in runs) * 1000, 1),
                                 "correct_screenshots": sum(r[1] for r in runs)}
            executor.close()
    finally:
        desktop.stop()
    ours = results["deskpilot"]["median_ms"]
    print(json.dumps({
        "benchmark": "settle", "change_after_ms": 50, "settle_config": asdict(SettleConfig()),
        **results,
        "speedup_vs_cua": round(results["fixed_0.5s_cua"]["median_ms"] / ours, 1),
        "speedup_vs_anthropic_demo": round(results["fixed_2.0s_anthropic_demo"]["median_ms"] / ours, 1),
    }))


if __name__ == "__main__":
    main()
