"""Template matching on rendered UI-like images: scales, absence, duplicates, regions, flat input."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from vision.capture import Frame
from vision.locate.find import AmbiguousMatch, NotFound
from vision.locate.template import ImageMatch, find_image

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def icon() -> np.ndarray:
    """A 44x36 toolbar-like icon (BGR): a gear-ish disc, a tick and a label."""
    image = Image.new("RGB", (44, 36), (230, 232, 236))
    draw = ImageDraw.Draw(image)
    draw.ellipse((3, 3, 25, 25), fill=(40, 110, 200), outline=(20, 40, 80), width=2)
    for k in range(8):
        a = k * math.pi / 4
        draw.line((14 + 8 * math.cos(a), 14 + 8 * math.sin(a), 14 + 14 * math.cos(a), 14 + 14 * math.sin(a)),
                  fill=(20, 40, 80), width=2)
    draw.line((28, 18, 33, 24, 42, 6), fill=(30, 160, 60), width=3)
    draw.text((4, 24), "cfg", fill=(10, 10, 10), font=ImageFont.truetype(FONT, 10))
    return np.array(image)[:, :, ::-1].copy()


def screen(*places: tuple[int, int], size: tuple[int, int] = (1000, 700)) -> np.ndarray:
    """A UI-like BGR screen with the icon pasted at each place (x, y)."""
    image = Image.new("RGB", size, (246, 246, 246))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 14)
    draw.rectangle((0, 0, size[0], 28), fill=(220, 220, 224))
    for i, word in enumerate(["File", "Edit", "View", "Tools", "Help"]):
        draw.text((10 + 60 * i, 6), word, fill=(20, 20, 20), font=font)
    for row in range(8):
        draw.rectangle((40, 80 + row * 60, 420, 110 + row * 60), outline=(150, 150, 150))
        draw.text((50, 86 + row * 60), f"Field {row + 1}: some value", fill=(30, 30, 30), font=font)
    draw.ellipse((600, 500, 640, 540), fill=(40, 110, 200))  # a plain disc: similar colour, no detail
    pixels = np.array(image)[:, :, ::-1].copy()
    tile = icon()
    for x, y in places:
        pixels[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
    return pixels


def test_found_at_scale_one() -> None:
    frame = Frame(screen((700, 200)), origin=(100, 50))
    [match] = find_image(frame, icon())
    assert isinstance(match, ImageMatch)
    assert match.box == (800, 250, 844, 286) and match.scale == 1.0 and match.score > 0.99
    assert match.center == (821, 267)


def test_found_at_scale_1_25_when_the_screen_is_bigger() -> None:
    pixels = screen((700, 200))
    bigger = cv2.resize(pixels, None, fx=1.25, fy=1.25, interpolation=cv2.INTER_LINEAR)
    [match] = find_image(Frame(bigger), icon())
    assert match.scale == 1.25 and match.score > 0.9
    assert abs(match.box[0] - 875) <= 2 and abs(match.box[1] - 250) <= 2
    assert match.box[2] - match.box[0] == 55 and match.box[3] - match.box[1] == 45


def test_refused_when_absent_naming_the_best_score() -> None:
    with pytest.raises(NotFound) as caught:
        find_image(Frame(screen()), icon())
    message = str(caught.value)
    assert "not found" in message and "best" in message and "score" in message
    [best] = caught.value.candidates
    assert -1.0 <= best.score < 0.9


def test_ambiguous_when_twice_and_index_picks() -> None:
    frame = Frame(screen((700, 200), (500, 600)))
    with pytest.raises(AmbiguousMatch) as caught:
        find_image(frame, icon())
    assert len(caught.value.candidates) == 2
    message = str(caught.value)
    assert "[0]" in message and "[1]" in message and "[700, 200, 744, 236]" in message
    [first] = find_image(frame, icon(), index=0)
    [second] = find_image(frame, icon(), index=1)
    assert first.box[:2] == (700, 200) and second.box[:2] == (500, 600)


def test_region_restricts() -> None:
    frame = Frame(screen((700, 200), (500, 600)))
    [match] = find_image(frame, icon(), region=(450, 550, 1000, 700))
    assert match.box[:2] == (500, 600)
    with pytest.raises(NotFound):
        find_image(frame, icon(), region=(0, 0, 450, 500))


def test_template_bigger_than_the_search_area() -> None:
    with pytest.raises(NotFound, match="larger than"):
        find_image(Frame(screen((700, 200))), icon(), region=(700, 200, 730, 230))


def test_flat_template_and_flat_screen() -> None:
    flat = np.full((30, 30, 3), 246, np.uint8)
    with pytest.raises(ValueError, match="uniform"):
        find_image(Frame(screen()), flat)
    # A screen that is flat everywhere: OpenCV divides by zero, which must not become a match.
    with pytest.raises(NotFound) as caught:
        find_image(Frame(np.full((300, 400, 3), 200, np.uint8)), icon())
    assert caught.value.candidates[0].score == 0.0


def test_template_from_a_file_and_with_alpha(tmp_path) -> None:
    path = tmp_path / "icon.png"
    cv2.imwrite(str(path), cv2.cvtColor(icon(), cv2.COLOR_BGR2BGRA))
    [match] = find_image(Frame(screen((300, 400))), path)
    assert match.box[:2] == (300, 400)
    with pytest.raises(FileNotFoundError):
        find_image(Frame(screen()), tmp_path / "missing.png")
