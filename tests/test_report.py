"""`deskpilot report`: real recordings rendered, then opened in headless Chromium (offline).

Recordings come from the real agent loop (fake model server, Xvfb) and from `RecordingWriter`
(secrets, replay targets, drags, rollouts, 500 steps, a crashed run). The pages are checked in
Chromium through Playwright with every non-file request aborted.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from agent.recording.writer import Recording, RecordingError, RecordingWriter
from agent.ui.report import write_report
from tests.fake_anthropic import FakeAnthropic, message, text, tool_use

playwright_sync = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():  # pragma: no cover
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)

ARTIFACTS = Path(__file__).parent / "artifacts"
SECRET = "hunter2-secret"
TYPED = 'héllo <b>&"x"</b>'
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_sync.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


class Opened:
    def __init__(self, browser: object, report: Path, viewport: dict | None = None) -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport=viewport or {"width": 1280, "height": 800})
        self.context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:"))
                           else r.abort())
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(report.as_uri(), wait_until="load")
        self.page.wait_for_timeout(300)

    def markers(self) -> list[dict]:
        return self.page.evaluate("""sel => [...document.querySelectorAll(sel)].map(m => {
            const img = m.closest('.shot').querySelector('img').getBoundingClientRect();
            const r = m.getBoundingClientRect();
            return {x: +m.dataset.x, y: +m.dataset.y, cx: r.left + r.width / 2 - img.left,
                    cy: r.top + r.height / 2 - img.top, w: img.width, h: img.height};
        })""", ".marker")

    def loaded_images(self) -> int:
        return self.page.evaluate("[...document.images].filter(i => i.complete && i.naturalWidth > 0).length")

    def close(self) -> None:
        assert not self.errors, self.errors
        bad = [u for u in self.requests if not u.startswith(("file:", "data:"))]
        assert not bad, f"network requests: {bad}"
        self.context.close()


@pytest.fixture
def opened(browser: object) -> Iterator[callable]:
    pages: list[Opened] = []

    def open_(report: Path, **kwargs: object) -> Opened:
        pages.append(Opened(browser, report, **kwargs))
        return pages[-1]

    yield open_
    for page in pages:
        page.close()


def assert_markers_placed(page: Opened, screen: dict, expected: int) -> None:
    markers = page.markers()
    assert len(markers) == expected
    for m in markers:
        assert m["w"] > 50 and m["h"] > 30
        assert abs(m["cx"] - m["x"] / screen["width"] * m["w"]) <= 2, m
        assert abs(m["cy"] - m["y"] / screen["height"] * m["h"]) <= 2, m


@pytest.fixture(scope="module")
def agent_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `deskpilot run` on a 1920x1080 Xvfb against the fake model server."""
    from actions.platform.x11.desktop import VirtualDesktop
    from agent.ui.cli import main
    from tests.conftest import start_probe
    from vision.geometry import Size

    tmp = tmp_path_factory.mktemp("agent")
    script = [
        message(text("I'll click the middle."),
                tool_use("computer", {"action": "left_click", "coordinate": [715, 402]})),
        message(tool_use("computer", {"action": "left_click_drag", "start_coordinate": [100, 100],
                                      "coordinate": [500, 300]})),
        message(text("Now <type>."), tool_use("computer", {"action": "type", "text": TYPED}),
                tool_use("bash", {"command": "echo hi"})),
        message(tool_use("computer", {"action": "key", "text": "ctrl+a"})),
        message(tool_use("computer", {"action": "left_click", "coordinate": [5000, 1]})),
        message(text("Done.")),
    ]
    with VirtualDesktop(Size(1920, 1080)) as desktop, FakeAnthropic(script) as fake, \
            pytest.MonkeyPatch.context() as mp:
        start_probe(desktop, tmp / "events.jsonl")
        mp.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        mp.setenv("ANTHROPIC_API_KEY", "test")
        rc = main(["run", "say hello", "--display", desktop.display, "--out", str(tmp / "rec")])
    assert rc == 0
    (folder,) = (tmp / "rec").iterdir()
    return folder


def frame(writer: RecordingWriter, value: int, size: tuple[int, int] = (320, 200)) -> str:
    pixels = np.full((size[1], size[0], 3), value % 256, dtype=np.uint8)
    pixels[::20, :, 2] = 255  # a few lines, so the picture is not blank
    return writer.save_frame(pixels)


SMALL = {"width": 320, "height": 200, "scale": 1.0}


def small_replay(out: Path) -> Path:
    """A finished replay with a secret, replay targets, a drag, a key, a failure and checks."""
    w = RecordingWriter(out, "replay", task="login.yaml", model=None, screen=SMALL, secrets={"PW": SECRET})
    w.add_step(action={"action": "left_click", "coordinate": [40, 30]}, frame=frame(w, 10),
               target={"method": "anchor_near", "confidence": 0.97})
    w.add_step(action={"action": "type", "text": SECRET}, frame=frame(w, 40), thought=f"typing {SECRET}")
    w.add_step(action={"action": "left_click_drag", "start_coordinate": [10, 190], "coordinate": [310, 5]},
               frame=frame(w, 70), target={"method": "ocr", "confidence": 0.5})
    w.add_step(action={"action": "key", "text": "ctrl+s"}, frame=frame(w, 100))
    w.add_step(action={"action": "double_click", "coordinate": [319, 199]}, frame=frame(w, 130),
               error="target not found: Submit", target={"method": "healed", "confidence": 0.31})
    w.add_usage(input_tokens=1200, output_tokens=34, cache_read_tokens=5, cache_write_tokens=7, cost_usd=0.0123)
    w.finish("failed", checks=[{"name": "screen", "ok": True, "detail": "Hello"},
                               {"kind": "file", "ok": False, "detail": f"no {SECRET} in /tmp/out"}],
             error="the replay diverged at step 4", final_frame=np.zeros((200, 320, 3), np.uint8))
    return w.path


# ------------------------------------------------------------------------------------ tests


def test_agent_run_report(agent_run: Path, opened: callable) -> None:
    rec = Recording.load(agent_run)
    report = write_report(agent_run)
    assert report == agent_run / "report.html"
    html = report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<b>&" not in html and "&lt;type&gt;" in html  # escaped thought and typed text

    page = opened(report)
    cards = page.page.locator("li.step")
    assert cards.count() == len(rec.steps) == rec.meta["summary"]["steps"]
    assert page.page.locator(".status").inner_text() == "succeeded"
    assert page.page.locator("img[loading=lazy]").count() == page.page.locator("img").count()
    body = page.page.inner_text("body")
    assert "say hello" in body and rec.meta["model"] in body and "ctrl+a" in body
    assert json.dumps(TYPED, ensure_ascii=False) in body  # typed text is shown quoted, as JSON

    clicks = [s for s in rec.steps if s["action"].get("action") == "left_click" and s["ok"]]
    drags = [s for s in rec.steps if s["action"].get("action") == "left_click_drag"]
    assert clicks and drags and clicks[0]["action"]["coordinate"] == [960, 540]
    assert_markers_placed(page, rec.meta["screen"], len(clicks) + 2 * len(drags))
    drag = drags[0]["action"]
    end = page.page.locator(f'[data-step="{drags[0]["i"]}"] .marker.end')
    assert [float(end.get_attribute("data-x")), float(end.get_attribute("data-y"))] == drag["coordinate"]
    assert page.page.locator(f'[data-step="{drags[0]["i"]}"] svg line').count() == 1

    failed = [s for s in rec.steps if not s["ok"]]
    assert len(failed) == 1 and "outside" in failed[0]["error"]
    card = page.page.locator(f'[data-step="{failed[0]["i"]}"]')
    assert "failed" in card.get_attribute("class").split()
    assert failed[0]["error"] in card.inner_text()
    assert page.page.locator("li.step.failed").count() == 1

    page.page.evaluate("document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
    page.page.evaluate("Promise.all([...document.images].map(i => i.decode()))")  # painted in the full-page shot
    ARTIFACTS.mkdir(exist_ok=True)
    page.page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)


def test_keyboard_and_overlay(agent_run: Path, opened: callable) -> None:
    rec = Recording.load(agent_run)
    page = opened(write_report(agent_run)).page
    focused = "document.activeElement.dataset.step"
    page.keyboard.press("j")
    assert page.evaluate(focused) == "0"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("j")
    assert page.evaluate(focused) == "2"
    page.keyboard.press("k")
    assert page.evaluate(focused) == "1"
    page.keyboard.press("ArrowUp")
    assert page.evaluate(focused) == "0"
    assert page.locator("#overlay").is_hidden() and page.locator("#overlay img").count() == 0
    page.keyboard.press("Enter")
    assert page.locator("#overlay").is_visible()
    big = page.locator("#overlay img")
    assert big.get_attribute("src") == rec.steps[0]["frame"] and big.get_attribute("loading") == "eager"
    page.wait_for_function("document.querySelector('#overlay img').naturalWidth > 0")
    box = big.bounding_box()
    assert box["width"] > 900  # enlarged, and the marker follows the image
    marker = page.locator("#overlay .marker").bounding_box()
    assert abs(marker["x"] + marker["width"] / 2 - box["x"] - 960 / 1920 * box["width"]) <= 2
    page.keyboard.press("Escape")
    assert page.locator("#overlay").is_hidden()
    page.locator('[data-step="1"] .shot').click()
    assert page.locator("#overlay").is_visible()
    page.locator("#overlay").click()
    assert page.locator("#overlay").is_hidden()


def test_secrets_targets_checks_and_embed(tmp_path: Path, opened: callable) -> None:
    folder = small_replay(tmp_path)
    rec = Recording.load(folder)
    report = write_report(folder)
    html = report.read_text(encoding="utf-8")
    assert SECRET not in html and "secret PW" in html
    page = opened(report)
    body = page.page.inner_text("body")
    assert SECRET not in body and "•••" in body
    assert page.page.locator("li.step").count() == 5
    assert "anchor_near" in body and "confidence 0.97" in body and "healed" in body
    assert "✓ screen: Hello" in body and "✗ file" in body and "the replay diverged" in body
    assert page.page.locator(".status").inner_text() == "failed" and "incomplete" not in body
    assert "failed" in page.page.locator('[data-step="4"]').get_attribute("class")
    assert "target not found: Submit" in page.page.locator('[data-step="4"]').inner_text()
    assert_markers_placed(page, rec.meta["screen"], 4)  # click, drag start + end, double click

    embedded = write_report(folder, embed=True)
    alone = tmp_path / "elsewhere" / "report.html"
    alone.parent.mkdir()
    shutil.copy(embedded, alone)  # no frames next to it: everything must be inside
    html = alone.read_text(encoding="utf-8")
    assert SECRET not in html and 'src="frames/' not in html and html.count("data:image/png;base64,") == 6
    page = opened(alone)
    page.page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert_markers_placed(page, rec.meta["screen"], 4)


def test_rollouts_attempts_side_by_side(tmp_path: Path, opened: callable) -> None:
    parent = RecordingWriter(tmp_path, "rollouts", goal="fill the form", screen=SMALL)
    attempts = []
    for n, status in enumerate(["failed", "succeeded"]):
        child = RecordingWriter(parent.path, "run", goal="fill the form", screen=SMALL)
        child.add_step(action={"action": "left_click", "coordinate": [5 + n, 5]}, frame=frame(child, n))
        child.finish(status, final_frame=np.full((200, 320, 3), 90 * n, np.uint8))
        attempts.append({"path": child.path.name, "status": status, "passed": status == "succeeded",
                         "steps": 1, "cost_usd": 0.01})
    parent.set_meta(attempts=attempts, chosen=1)
    parent.finish("succeeded")
    page = opened(write_report(parent.path))
    cards = page.page.locator(".attempt")
    assert cards.count() == 2
    assert "chosen" not in cards.nth(0).get_attribute("class")
    assert "chosen" in cards.nth(1).get_attribute("class") and "chosen" in cards.nth(1).inner_text()
    tops = [cards.nth(i).bounding_box()["y"] for i in range(2)]
    assert tops[0] == tops[1]  # side by side
    page.page.wait_for_function("[...document.querySelectorAll('.attempt img')].every(i => i.naturalWidth > 0)")


def test_500_steps_load_lazily(tmp_path: Path, opened: callable) -> None:
    w = RecordingWriter(tmp_path, "run", goal="many steps", screen=SMALL)
    for i in range(500):
        w.add_step(action={"action": "left_click", "coordinate": [i % 320, i % 200]}, frame=frame(w, i),
                   thought=f"step {i}", usage={"input_tokens": 10, "output_tokens": 1})
    w.finish("succeeded")
    page = opened(write_report(tmp_path / w.path.name))
    assert page.page.locator("li.step").count() == 500
    assert page.page.locator("img:not([loading=lazy])").count() == 0
    page.page.wait_for_timeout(500)
    pngs = page.page.evaluate("performance.getEntriesByType('resource').filter(e => e.name.endsWith('.png')).length")
    assert 0 < page.loaded_images() < 50 and pngs < 50
    last = page.page.locator('[data-step="499"]')
    last.scroll_into_view_if_needed()
    page.page.wait_for_function("document.querySelector('[data-step=\"499\"] img').naturalWidth > 0")
    assert page.loaded_images() < 100


def test_incomplete_recording(tmp_path: Path, opened: callable) -> None:
    w = RecordingWriter(tmp_path, "run", goal="crashes", screen=SMALL)
    for i in range(3):
        w.add_step(action={"action": "left_click", "coordinate": [10 * i, 10]}, frame=frame(w, i))
    with (w.path / "steps.jsonl").open("a", encoding="utf-8") as f:
        f.write('{"i":3,"t":1.5,"source":"model","act')  # a write cut short by a crash
    rec = Recording.load(w.path)
    assert rec.truncated and not rec.complete
    page = opened(write_report(w.path))
    assert page.page.locator("li.step").count() == 3
    banner = page.page.locator(".incomplete")
    assert banner.is_visible() and "incomplete" in banner.inner_text() and "cut short" in banner.inner_text()
    assert page.page.locator(".status").inner_text() == "running"


def test_bad_recordings_raise(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="no such recording"):
        write_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordingError, match="missing"):
        write_report(tmp_path / "empty")
    w = RecordingWriter(tmp_path, "run", goal="x", screen=SMALL)
    w.finish("succeeded")
    meta = json.loads((w.path / "meta.json").read_text(encoding="utf-8"))
    (w.path / "meta.json").write_text(json.dumps({**meta, "format": "other/9"}), encoding="utf-8")
    with pytest.raises(RecordingError, match="format"):
        write_report(w.path)
    assert not (w.path / "report.html").exists()
