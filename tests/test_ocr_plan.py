"""Query-led reading: which lines a look-up reads roughly, which accurately, and the cache's background reader."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vision.capture import Frame
from vision.locate import ocr
from vision.locate.ocr_engine import Line, TextBox
from vision.locate.ocr_plan import could_hold, needs_fine_detection, to_confirm

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def line(box: tuple[int, int, int, int], text: str | None, *, accurate: str | None = None) -> Line:
    """A detected line with a rough (fast) reading, and optionally an accurate one (one word box per word)."""
    made = Line(box)

    def words(value: str) -> tuple[TextBox, ...]:
        parts = value.split()
        step = (box[2] - box[0]) // max(1, len(parts))
        return tuple(TextBox(p, (box[0] + k * step, box[1], box[0] + (k + 1) * step, box[3]), 0.99, made.id)
                     for k, p in enumerate(parts))

    made.fast = None if text is None else words(text)
    made.accurate = None if accurate is None else words(accurate)
    return made


def test_rows_too_narrow_for_the_query_are_left_for_later() -> None:
    narrow = Line((10, 10, 40, 30))  # 30 px at 20 px high: too narrow for the ~20 glyphs the phrase needs
    wide = Line((10, 50, 600, 70))
    left, right = Line((10, 90, 50, 110)), Line((70, 90, 110, 110))  # two boxes of one row: a phrase may span them
    held = could_hold([narrow, wide, left, right], "archive the quarterly ledger", exact=False, min_score=0.8)
    assert narrow not in held and wide in held
    assert could_hold([left], "archive the quarterly ledger", exact=False, min_score=0.8) == []
    assert {id(x) for x in could_hold([left, right], "a b c d e f g h i j k l m n o p q r s t u", exact=False,
                                      min_score=0.8)} == {id(left), id(right)}
    assert could_hold([narrow], "OK", exact=True, min_score=0.8) == [narrow]


def test_only_lines_that_could_compete_are_read_accurately() -> None:
    perfect = line((0, 0, 300, 20), "Save changes")
    misread = line((0, 40, 300, 60), "Save chanqes")  # one slip: could be a tie once read accurately
    far = line((0, 80, 300, 100), "Changes to your email")  # loosely near, but cannot reach the best
    unrelated = line((0, 120, 300, 140), "Delete account")
    unread = Line((0, 160, 300, 180))
    done = line((0, 200, 300, 220), None, accurate="Save chances")
    illegible = line((0, 240, 300, 260), "")  # the fast model read nothing it trusts
    lines = [perfect, misread, far, unrelated, unread, done, illegible]
    assert to_confirm(lines, "Save changes", exact=False, min_score=0.8) == [misread, illegible]
    # An exact query trusts only accurate readings, even of a perfect rough match.
    assert to_confirm(lines, "Save changes", exact=True, min_score=0.8) == [perfect, misread, illegible]
    # Nothing reaches the threshold: everything near it is read again.
    assert to_confirm([misread, unrelated], "Save changes", exact=False, min_score=0.95) == [misread]
    # Symbols only: rough readings of symbols are not trusted at all.
    assert to_confirm([perfect, unrelated], "+/-", exact=True, min_score=0.8) == [perfect, unrelated]


def test_short_queries_get_a_fine_detection() -> None:
    assert needs_fine_detection("1", exact=True, min_score=0.8)
    assert needs_fine_detection("O K", exact=False, min_score=0.8)
    assert not needs_fine_detection("Save", exact=False, min_score=0.8)


def test_a_look_up_reads_only_what_it_needs_and_the_background_reads_the_rest() -> None:
    image = Image.new("RGB", (900, 400), (246, 246, 246))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 16)
    draw.text((40, 40), "Quarterly report for the board of directors", fill=(25, 25, 25), font=font)
    for i, label in enumerate(["OK", "No", "Yes", "Go", "Up"]):
        draw.text((40 + 160 * i, 200), label, fill=(25, 25, 25), font=font)
    frame = Frame(np.array(image)[:, :, ::-1].copy())
    finder = ocr.TextFinder()
    [match] = finder.find_text(frame, "Quarterly report for the board")
    assert finder.stats.lines_deferred == 5 and finder.stats.lines_fast == 1  # labels cannot hold the phrase
    assert finder.stats.lines_accurate == 0  # the rough reading matched perfectly
    assert finder.wait_background(30)
    assert finder.stats.lines_background == 5
    # The background's readings serve the next look-up: no new detection, nothing left to read.
    calls = finder.stats.ocr_calls
    assert finder.find_text(frame, "Yes", exact=True)[0].text == "Yes"
    assert finder.stats.fine_detections == 1 and finder.stats.ocr_calls == calls + 1


EXIT_EARLY = """
import sys, time
sys.path.insert(0, {root!r})
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from vision.locate import ocr

ocr.preload()  # still loading when the process ends (at some point of the load, after `pause` s)
time.sleep({pause})
if {look!r}:
    image = Image.new("RGB", (900, 300), "white")
    draw = ImageDraw.Draw(image)
    for i in range(8):
        draw.text((20 + 110 * i, 20 + 30 * i), f"Label {{i}}", fill="black", font=ImageFont.truetype({font!r}, 16))
    draw.text((20, 260), "A long line of text that the query is about", fill="black",
              font=ImageFont.truetype({font!r}, 16))
    ocr.TextFinder().find_text(np.array(image)[:, :, ::-1].copy(), "A long line of text that the query is about")
    # ... and the background reader is reading the labels as the process ends
"""


def test_a_process_may_end_while_the_engine_loads_or_the_background_reads() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    for look, pause in ((False, 0.0), (False, 0.1), (False, 0.2), (False, 0.3), (False, 0.5), (True, 0.0)):
        script = EXIT_EARLY.format(root=root, look=look, font=FONT, pause=pause)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "terminate" not in done.stderr, (look, pause, done.returncode, done.stderr)
