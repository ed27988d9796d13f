"""Capture, encoding and settling on a real X server."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from actions.platform import open_executor
from actions.platform.x11.desktop import VirtualDesktop
from actions.vocabulary import parse_action
from agent.models.anthropic import image_size as claude_image_size
from vision.capture import Frame, Screen
from vision.diff import changed_boxes, changed_pixels, changed_tiles
from vision.encode import decode, encode, encode_for_model, image_tokens
from vision.geometry import CoordinateError, Size
from vision.settle import SettleConfig, wait_until_settled

TESTS = Path(__file__).parent


def start_reactive(desktop: VirtualDesktop, delay_ms: int, animate_ms: int = 0) -> None:
    desktop.launch([sys.executable, str(TESTS / "reactive_window.py"), str(delay_ms), str(animate_ms)])
    time.sleep(0.8)  # the window maps; the tests settle once more before they act


def test_capture_size_scale_and_regions(desktop_factory) -> None:
    desktop = desktop_factory(Size(1024, 768))
    with Screen(desktop.display) as screen:
        assert screen.size == Size(1024, 768) and screen.scale == 1.0
        desktop.launch([sys.executable, str(TESTS / "reactive_window.py"), "0"])
        time.sleep(1.0)
        full = screen.grab()
        assert full.pixels.shape == (768, 1024, 3) and full.pixels.dtype == np.uint8
        part = screen.grab((100, 50, 300, 150))
        assert part.size == Size(200, 100) and part.origin == (100, 50)
        assert np.array_equal(part.pixels, full.pixels[50:150, 100:300])
        assert full.crop((100, 50, 300, 150)).same_as(part)
        with pytest.raises(CoordinateError):
            screen.grab((1000, 0, 1100, 10))


def test_screens_of_two_desktops_are_independent(desktop_factory) -> None:
    a, b = desktop_factory(Size(800, 600)), desktop_factory(Size(1024, 768))
    with Screen(a.display) as sa, Screen(b.display) as sb:
        assert sa.grab().size == Size(800, 600)
        assert sb.grab().size == Size(1024, 768)


def test_png_is_lossless_and_model_image_has_the_declared_size() -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 255, size=(1080, 1920, 3), dtype=np.uint8)
    assert np.array_equal(decode(encode(pixels).data), pixels)
    image = encode_for_model(pixels, claude_image_size(Size(1920, 1080)))
    assert image.size == Size(1430, 804) and decode(image.data).shape == (804, 1430, 3)
    assert image_tokens(image.size) == 1533
    for fmt in ("jpeg", "webp"):
        assert decode(encode(pixels, fmt).data).shape == pixels.shape


def test_changed_pixels_marks_any_channel_beyond_the_level_and_tiles_group_them() -> None:
    before = np.full((64, 96, 3), 200, np.uint8)
    after = before.copy()
    after[5, 7, 2] = 201  # one channel of one pixel, by one
    after[40:44, 60:70] = 0  # a small block
    mask = changed_pixels(before, after)
    assert mask.shape == (64, 96) and mask.dtype == np.uint8
    assert mask.sum() == 1 + 4 * 10 and mask[5, 7] == 1 and mask[40:44, 60:70].all()
    assert changed_pixels(before, after, level=32).sum() == 40  # the one-step change is below the level
    assert not changed_pixels(before, before).any()
    with pytest.raises(ValueError):
        changed_pixels(before, after[:32])
    # Tiles: each group of changed pixels gets its own padded box, clipped to the image.
    assert changed_tiles(mask, tile=16, pad=(4, 2)) == [(3, 3, 12, 8), (56, 38, 74, 46)]
    assert changed_tiles(mask, tile=64, pad=(0, 0)) == [(7, 5, 70, 44)]  # one tile apart: one group
    assert changed_tiles(changed_pixels(before, before)) == []
    # Noise-free areas ignore the single pixel, report the block.
    assert changed_boxes(before, after) == [(60, 40, 70, 44)]


def _click_and_settle(desktop: VirtualDesktop, config: SettleConfig) -> tuple[float, Frame, Frame]:
    with Screen(desktop.display) as screen:
        executor = open_executor(desktop.display)
        try:
            wait_until_settled(screen.grab, config)
            before = screen.grab()
            executor.perform(parse_action({"action": "left_click", "coordinate": [400, 300]}))
            started = time.monotonic()
            settled = wait_until_settled(screen.grab, config, before=before)
            elapsed = time.monotonic() - started
            time.sleep(0.5)
            return elapsed, settled.frame, screen.grab()
        finally:
            executor.close()


def test_settle_sees_a_change_that_comes_50ms_after_the_click(desktop) -> None:
    start_reactive(desktop, 50)
    elapsed, settled, later = _click_and_settle(desktop, SettleConfig())
    assert settled.same_as(later)  # the settled frame already shows the final state
    assert elapsed < 1.0


def test_settle_waits_for_an_animation_to_end(desktop) -> None:
    start_reactive(desktop, 10, animate_ms=400)
    elapsed, settled, later = _click_and_settle(desktop, SettleConfig())
    assert elapsed >= 0.35
    assert settled.same_as(later)


def test_settle_gives_up_at_its_timeout_on_a_screen_that_never_stops(desktop) -> None:
    start_reactive(desktop, 0, animate_ms=60_000)
    with Screen(desktop.display) as screen:
        executor = open_executor(desktop.display)
        executor.perform(parse_action({"action": "left_click", "coordinate": [400, 300]}))
        executor.close()
        time.sleep(0.1)
        # quiet_s 0.3: the window repaints every 20 ms, but a busy machine can stall it for 60 ms
        result = wait_until_settled(screen.grab, SettleConfig(timeout_s=0.5, quiet_s=0.3))
    assert not result.settled and 0.5 <= result.elapsed_s < 1.0


def test_settle_on_a_still_screen_returns_quickly(desktop) -> None:
    with Screen(desktop.display) as screen:
        result = wait_until_settled(screen.grab, SettleConfig())
    assert result.settled and not result.changed and result.elapsed_s < 0.5
