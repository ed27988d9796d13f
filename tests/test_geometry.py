"""The coordinate mapping: Claude's image size, round trips and refusals."""

from __future__ import annotations

import random

import pytest

from agent.models.anthropic import MAX_LONG_EDGE as CLAUDE_MAX_LONG_EDGE
from agent.models.anthropic import MAX_PIXELS as CLAUDE_MAX_PIXELS
from agent.models.anthropic import image_size as claude_image_size
from vision.geometry import (
    CoordinateError,
    ScreenMap,
    Size,
)

SCREENS = [(1024, 768), (1280, 800), (1366, 768), (1440, 900), (1920, 1080), (2560, 1440),
           (3840, 2160), (5120, 2880), (800, 600), (1080, 1920), (3440, 1440), (1568, 400)]


@pytest.mark.parametrize("w,h", SCREENS)
def test_model_image_fits_claude_limits_and_keeps_aspect(w: int, h: int) -> None:
    size = claude_image_size(Size(w, h))
    assert max(size.width, size.height) <= CLAUDE_MAX_LONG_EDGE
    assert size.width * size.height <= CLAUDE_MAX_PIXELS
    assert size.width <= w and size.height <= h
    assert abs(size.width / size.height - w / h) < 0.01
    # largest: one more pixel of width (same aspect) would break a limit or upscale
    bigger_w = size.width + 1
    bigger_h = round(bigger_w * h / w)
    assert (bigger_w > w or max(bigger_w, bigger_h) > CLAUDE_MAX_LONG_EDGE
            or bigger_w * bigger_h > CLAUDE_MAX_PIXELS)


def test_small_screens_are_never_upscaled() -> None:
    assert claude_image_size(Size(1024, 768)) == Size(1024, 768)
    assert claude_image_size(Size(1280, 800)) == Size(1280, 800)
    assert claude_image_size(Size(1920, 1080)) == Size(1430, 804)


@pytest.mark.parametrize("w,h", SCREENS)
def test_round_trip_within_one_model_pixel(w: int, h: int) -> None:
    mapping = ScreenMap(Size(w, h), claude_image_size(Size(w, h)))
    rng = random.Random(w * h)
    corners = [(0, 0), (w - 1, h - 1), (w - 1, 0), (0, h - 1)]
    for sx, sy in corners + [(rng.randrange(w), rng.randrange(h)) for _ in range(500)]:
        mx, my = mapping.to_model(sx, sy)
        bx, by = mapping.to_screen(mx, my)
        assert abs(bx - sx) <= mapping.ratio_x and abs(by - sy) <= mapping.ratio_y
        assert mapping.to_model(bx, by) == (mx, my)  # model -> screen -> model is exact


def test_out_of_range_model_coordinates_are_refused_not_clamped() -> None:
    mapping = ScreenMap(Size(1920, 1080), claude_image_size(Size(1920, 1080)))
    for x, y in [(1430, 10), (10, 804), (-1, 5), (5, -1), (5000, 5000)]:
        with pytest.raises(CoordinateError, match="outside the model image of 1430x804"):
            mapping.to_screen(x, y)
    with pytest.raises(CoordinateError, match="outside the screen"):
        mapping.to_model(1920, 0)


def test_zoom_region_maps_to_full_resolution_pixels() -> None:
    mapping = ScreenMap(Size(2560, 1440), claude_image_size(Size(2560, 1440)))
    x0, y0, x1, y1 = mapping.region_to_screen((0, 0, mapping.model.width, mapping.model.height))
    assert (x0, y0, x1, y1) == (0, 0, 2560, 1440)
    region = mapping.region_to_screen((100, 100, 200, 150))
    assert region[2] - region[0] >= 100 * mapping.ratio_x - 1  # more pixels than the model saw
    with pytest.raises(CoordinateError):
        mapping.region_to_screen((100, 100, 90, 150))
    with pytest.raises(CoordinateError):
        mapping.region_to_screen((0, 0, mapping.model.width + 1, 10))


def test_logical_points_on_hidpi() -> None:
    mapping = ScreenMap(Size(2880, 1800), claude_image_size(Size(2880, 1800)), 2.0)
    assert mapping.to_points(1000, 500) == (500.0, 250.0)
    assert mapping.from_points(500, 250) == (1000, 500)


@pytest.mark.parametrize("text", ["1280", "x800", "12a0x800", "0x0", "99999x10", ""])
def test_size_parse_refuses_bad_text(text: str) -> None:
    with pytest.raises(ValueError):
        Size.parse(text)


@pytest.mark.parametrize("screen,model", [((1920, 1080), (1430, 804)), ((1280, 800), (1288, 812)),
                                          ((2560, 1440), (2548, 1428)), ((1920, 1080), (1920, 1088))])
def test_a_model_pixel_lands_within_half_a_screen_pixel_of_its_centre(screen, model) -> None:
    """The image is a resized copy: model pixel m shows screen position (m + 0.5) * ratio; a click lands there."""
    mapping = ScreenMap(Size(*screen), Size(*model))
    for m in range(model[0]):
        x, _ = mapping.to_screen(m, 0)
        assert abs(x + 0.5 - (m + 0.5) * mapping.ratio_x) <= 0.5 + 1e-9
    for p in range(screen[0]):  # and back: exact in whichever direction goes to the larger space
        if model[0] <= screen[0]:
            assert mapping.to_model(*mapping.to_screen(mapping.to_model(p, 0)[0], 0))[0] == mapping.to_model(p, 0)[0]
        else:
            assert mapping.to_screen(*mapping.to_model(p, 0))[0] == p
