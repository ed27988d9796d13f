"""What makes the first look-up fast must not make it wrong: monospaced lines read narrower (and
checked cell by cell), Latin-script look-ups scored over Latin characters only, and whole screens
detected by the tiny detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

import vision.locate.ocr_recognize as recognize
from vision.capture import Frame
from vision.locate import ocr
from vision.locate.ocr_head import WireError, latin_subset, restrict_classifier
from vision.locate.ocr_models import model_files, open_session
from vision.locate.ocr_pitch import monospace_cells

MONO = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
SANS = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
LINE = "quarterly travel supplies budget archive backup"
LIGHT, DARK = ((255, 255, 255), (30, 30, 30)), ((40, 44, 52), (220, 220, 220))


def rendered(lines: list[tuple[str, str, int]], size: tuple[int, int] = (900, 200), colors: tuple = LIGHT) -> Frame:
    """A BGR frame with one line of text per (text, font file, pixel size), 40 px apart."""
    image = Image.new("RGB", size, colors[0])
    draw = ImageDraw.Draw(image)
    for row, (text, font, px) in enumerate(lines):
        draw.text((12, 14 + 40 * row), text, fill=colors[1], font=ImageFont.truetype(font, px))
    return Frame(np.array(image)[:, :, ::-1].copy(), (0, 0))


def line_crops(frame: Frame) -> list[np.ndarray]:
    """The detected text lines of a frame, cropped as the engine crops them."""
    boxes = ocr.get_engine().detect(frame.pixels)
    return [frame.pixels[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes]


@pytest.mark.parametrize("colors", [LIGHT, DARK], ids=["light", "dark"])
@pytest.mark.parametrize("px", [13, 15, 18])
def test_a_monospaced_line_shows_its_cells_and_a_proportional_one_does_not(px: int, colors: tuple) -> None:
    mono, sans = line_crops(rendered([(LINE, MONO, px), (LINE, SANS, px)], colors=colors))
    cells = monospace_cells(mono)
    assert cells is not None and cells.count == len(LINE)
    assert abs(cells.pitch - ImageFont.truetype(MONO, px).getlength("m")) < 0.05
    assert monospace_cells(sans) is None
    assert monospace_cells(line_crops(rendered([("backup server", MONO, px)]))[0]) is None  # too short to gain
    # a run of spaces inside (aligned columns): a reading has one space for it, so the count could not check it
    [(x0, y0, x1, y1)] = ocr.get_engine().detect(rendered([(LINE, MONO, px)], colors=colors).pixels)
    spaced = rendered([(LINE.replace(" budget ", "  budget "), MONO, px)], colors=colors).pixels
    assert monospace_cells(spaced[y0:y1, x0:x1 + round(cells.pitch)]) is None


def test_a_narrow_reading_is_kept_only_when_it_has_a_character_per_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = ocr.get_engine()
    [crop] = line_crops(rendered([(LINE, MONO, 15)]))
    full = engine.fast.recognize([crop], latin=True)[0].text
    assert full == LINE
    kept, again = engine.fast.narrowed, engine.fast.read_again
    assert engine.fast.recognize([crop], narrow_monospace=True, latin=True)[0].text == LINE
    assert (engine.fast.narrowed, engine.fast.read_again) == (kept + 1, again)
    # Too few columns a cell: characters merge, the count is off, and the line is read again whole.
    monkeypatch.setattr(recognize, "CELL_COLUMNS", 5)
    assert engine.fast.recognize([crop], narrow_monospace=True, latin=True)[0].text == LINE
    assert (engine.fast.narrowed, engine.fast.read_again) == (kept + 1, again + 1)


def test_the_latin_classifier_is_the_whole_model_cut_down(tmp_path: Path) -> None:
    files = model_files()
    engine = ocr.get_engine()
    [crop] = line_crops(rendered([("Save changes to ledger.txt?", SANS, 15)]))
    ids = latin_subset(engine.fast._chars)
    assert 300 < len(ids) < 1000 and ids[0] == 0
    whole = open_session(files.fast_rec)
    cut = open_session(restrict_classifier(files.fast_rec, ids))
    batch = np.zeros((1, 3, 48, 320), np.float32)
    batch[0] = np.resize(crop, (48, 320, 3)).transpose(2, 0, 1) / 127.5 - 1
    probs = whole.run(None, {"x": batch})[0][..., ids]
    assert np.allclose(cut.run(None, {"x": batch})[0], probs / probs.sum(-1, keepdims=True), atol=1e-4)
    assert restrict_classifier(files.det, [0, 1]) is None  # a detector has no classifier to cut
    broken = tmp_path / "rec.onnx"
    broken.write_bytes(files.fast_rec.read_bytes()[:1000])
    with pytest.raises(WireError):
        restrict_classifier(broken, ids)


def test_a_cjk_look_up_reads_again_what_a_latin_look_up_read() -> None:
    frame = rendered([("Open the settings", SANS, 16), ("打开设置窗口", CJK, 16)])
    finder = ocr.TextFinder(background=False)
    assert finder.find_text(frame, "Open the settings")
    cjk_line = max(finder._lines, key=lambda ln: ln.box[1])
    assert cjk_line.fast_latin and "打开" not in " ".join(w.text for w in cjk_line.words)
    [match] = finder.find_text(frame, "打开设置窗口")
    assert match.box[1] >= 40 and not cjk_line.fast_latin


def test_whole_screens_go_to_the_tiny_detector_and_it_finds_every_line() -> None:
    engine = ocr.get_engine()
    assert engine.fast_detector is not None
    words = ["Account", "Billing", "Security", "Export", "Import", "Settings", "Help", "Notes"] * 2
    labels = [(f"Label {n}: {word}", SANS if n % 2 else MONO, 11 + n % 8) for n, word in enumerate(words)]
    frame = rendered(labels, size=(1280, 800))
    small = engine.detector.detect(frame.pixels)
    tiny = engine.detect(frame.pixels)
    assert len(small) == len(labels)

    def covered(box: tuple[int, int, int, int]) -> float:
        area = sum(max(0, min(box[2], t[2]) - max(box[0], t[0])) * max(0, min(box[3], t[3]) - max(box[1], t[1]))
                   for t in tiny)
        return area / ((box[2] - box[0]) * (box[3] - box[1]))

    assert all(covered(box) > 0.6 for box in small), [box for box in small if covered(box) <= 0.6]


def test_odd_crops_are_not_monospaced_text_and_long_lines_are_counted() -> None:
    blank = np.full((24, 900, 3), 255, np.uint8)
    assert monospace_cells(blank) is None and monospace_cells(np.zeros((24, 900, 3), np.uint8)) is None
    assert monospace_cells(blank[:, :40]) is None and monospace_cells(blank[:4]) is None
    [crop] = line_crops(rendered([("0123456789" * 30, MONO, 15)], size=(3000, 60)))
    cells = monospace_cells(crop)
    assert cells is not None and cells.count == 300
    # Wider than the FFT's usual size: padded further, never cut short (a count off by one would only
    # mean the line is read again at full width).
    image = Image.new("RGB", (9200, 30), "white")
    ImageDraw.Draw(image).text((20, 6), "0123456789" * 100, fill="black", font=ImageFont.truetype(MONO, 15))
    cells = monospace_cells(np.array(image)[:, :, ::-1].copy())
    assert cells is not None and abs(cells.pitch - ImageFont.truetype(MONO, 15).getlength("0")) < 0.01
    assert abs(cells.count - 1000) <= 1
