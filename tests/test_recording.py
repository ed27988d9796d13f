"""The recording writer and reader: files, secrets, crash safety, validation (no display needed)."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from agent.recording import files
from agent.recording import writer as rec
from agent.recording.format import Meta, Screen, Step
from agent.recording.writer import FORMAT, Recording, RecordingError, RecordingWriter
from vision.capture import Frame
from vision.encode import decode, encode

ROOT = Path(__file__).resolve().parent.parent
SECRET = "hunter2-Ünïcödé-$3cr3t"


def pixels(width: int = 320, height: int = 200, seed: int = 0) -> np.ndarray:
    """Random BGR pixels, so that any crop offset error changes the crop."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def all_bytes(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_writer_session_writes_every_file(tmp_path: Path) -> None:
    writer = RecordingWriter(
        tmp_path, "run", goal="open the form", model="claude-sonnet-4-5",
        screen={"width": 320, "height": 200, "scale": 1.0}, model_image={"width": 320, "height": 200},
        extra_meta={"display": ":7"},
    )
    assert re.fullmatch(r"\d{8}-\d{6}-run-[0-9a-f]{4}", writer.path.name)
    assert writer.path.parent == tmp_path
    assert (writer.path / "frames").is_dir() and (writer.path / "anchors").is_dir()
    meta = json.loads((writer.path / "meta.json").read_text(encoding="utf-8"))
    assert meta["format"] == FORMAT and meta["status"] == "running" and meta["ended"] is None
    assert meta["kind"] == "run" and meta["goal"] == "open the form" and meta["display"] == ":7"
    assert meta["screen"] == {"width": 320, "height": 200, "scale": 1.0}
    assert meta["model_image"] == {"width": 320, "height": 200}
    assert meta["version"] and meta["platform"] and meta["created"]
    assert Recording.load(writer.path).complete is False

    frame = Frame(pixels(), (0, 0))
    assert writer.save_frame(frame) == "frames/000000.png"
    anchor = writer.save_anchor(frame, (100, 80), 0)
    assert anchor == {"image": "anchors/000000.png", "box": [40, 40, 160, 120], "point": [100, 80]}
    click = {"action": "left_click", "coordinate": [100, 80]}
    step0 = writer.add_step(
        action=click, model_action={"action": "left_click", "coordinate": [50, 40]},
        frame="frames/000000.png", anchor=anchor, timing={"capture_ms": 12.5, "model_ms": 800},
        usage={"input_tokens": 1000, "output_tokens": 20}, thought="Click the field.",
    )
    writer.add_model_call({"stop_reason": "tool_use", "latency_ms": 800,
                           "content": [{"type": "tool_use", "input": click}]})
    writer.add_usage(input_tokens=1000, output_tokens=20, cache_read_tokens=5, cost_usd=0.0031)
    assert writer.save_frame(np.ascontiguousarray(frame.pixels)) == "frames/000001.png"
    step1 = writer.add_step(action={"action": "key", "text": "Return"}, frame="frames/000001.png",
                            error="key failed", target={"how": "text"})
    writer.add_step(action={"action": "wait", "duration": 0.1}, source="script")
    writer.add_usage(input_tokens=10, output_tokens=2, cache_write_tokens=7, cost_usd=0.001)
    meta = json.loads((writer.path / "meta.json").read_text(encoding="utf-8"))
    assert meta["status"] == "running" and meta["summary"]["input_tokens"] == 1010

    writer.finish("succeeded", checks=[{"check": "screen", "ok": True}], final_frame=frame)
    meta = json.loads((writer.path / "meta.json").read_text(encoding="utf-8"))
    assert meta["status"] == "succeeded" and meta["ended"] and meta["error"] is None
    assert meta["checks"] == [{"check": "screen", "ok": True}]
    summary = meta["summary"]
    assert summary["steps"] == 3 and summary["duration_s"] >= 0
    assert (summary["input_tokens"], summary["output_tokens"]) == (1010, 22)
    assert (summary["cache_read_tokens"], summary["cache_write_tokens"]) == (5, 7)
    assert summary["cost_usd"] == pytest.approx(0.0041)
    assert (writer.path / "frames/final.png").is_file() and meta["final_frame"] == "frames/final.png"
    assert not list(writer.path.glob("**/*.tmp")) and not list(writer.path.glob("**/.*"))

    lines = read_lines(writer.path / "steps.jsonl")
    assert lines[0] == step0 and lines[1] == step1
    for i, line in enumerate(lines):
        assert set(rec.STEP_KEYS) <= set(line)
        assert line["i"] == i and isinstance(line["t"], float) and round(line["t"], 3) == line["t"]
        assert set(line["timing"]) == set(rec.TIMING_KEYS)
    assert lines[0]["source"] == "model" and lines[2]["source"] == "script"
    assert lines[0]["ok"] is True and lines[0]["timing"]["capture_ms"] == 12.5
    assert lines[0]["timing"]["settle_ms"] is None and lines[0]["thought"] == "Click the field."
    assert lines[1]["ok"] is False and lines[1]["error"] == "key failed" and lines[1]["target"] == {"how": "text"}
    assert lines[2]["frame"] is None and lines[2]["anchor"] is None and lines[2]["usage"] is None
    calls = read_lines(writer.path / "model.jsonl")
    assert len(calls) == 1 and calls[0]["call"] == 0 and calls[0]["stop_reason"] == "tool_use"

    loaded = Recording.load(writer.path, partial_ok=False)
    assert loaded.complete and not loaded.truncated and loaded.meta == meta
    assert loaded.steps == lines and loaded.model_calls == calls
    assert loaded.frame_path(0) == writer.path / "frames/000000.png"
    assert loaded.anchor_path(loaded.steps[0]) == writer.path / "anchors/000000.png"
    assert loaded.frame_path(2) is None and loaded.anchor_path(1) is None
    assert np.array_equal(loaded.load_image("frames/000000.png"), frame.pixels)
    assert np.array_equal(loaded.load_image("frames/final.png"), frame.pixels)
    assert np.array_equal(loaded.load_image(anchor["image"]), frame.pixels[40:120, 40:160])


@pytest.mark.parametrize(
    ("origin", "point", "box"),
    [
        ((0, 0), (5, 195), [0, 155, 65, 200]),       # bottom-left corner of the screen
        ((0, 0), (319, 0), [259, 0, 320, 40]),       # top-right corner
        ((0, 0), (160, 100), [100, 60, 220, 140]),   # fully inside
        ((500, 300), (510, 495), [500, 455, 570, 500]),  # a region: clipped to the region
        ((500, 300), (819, 350), [759, 310, 820, 390]),
    ],
)
def test_anchor_crop_matches_frame_pixels(tmp_path: Path, origin, point, box) -> None:
    frame = Frame(pixels(320, 200, seed=3), origin)
    with RecordingWriter(tmp_path, "task") as writer:
        anchor = writer.save_anchor(frame, point, 7)
        writer.finish("succeeded")
    assert anchor == {"image": "anchors/000007.png", "box": box, "point": list(point)}
    x0, y0, x1, y1 = box
    ox, oy = origin
    expected = frame.pixels[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    saved = decode((writer.path / anchor["image"]).read_bytes())
    assert saved.shape == (y1 - y0, x1 - x0, 3)
    assert np.array_equal(saved, expected)


def test_anchor_outside_frame_and_bad_images_are_rejected(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path, "run") as writer:
        frame = Frame(pixels(100, 100), (50, 50))
        with pytest.raises(ValueError, match="outside the frame"):
            writer.save_anchor(frame, (10, 10), 0)
        with pytest.raises(ValueError, match="H x W x 3"):
            writer.save_frame(np.zeros((10, 10), dtype=np.uint8))
        with pytest.raises(ValueError, match="invalid frame name"):
            writer.save_frame(frame, "../escape")
        with pytest.raises(ValueError, match="does not exist"):
            writer.add_step(action={"action": "wait", "duration": 1}, frame="frames/000009.png")
        with pytest.raises(ValueError, match="needs an action"):
            writer.add_step(thought="nothing")
        with pytest.raises(ValueError, match="source"):
            writer.add_step(action={"action": "wait", "duration": 1}, source="robot")
        with pytest.raises(ValueError, match="set by the recording writer"):
            writer.add_step(action={"action": "wait", "duration": 1}, i=4)
        writer.finish("failed")
    assert Recording.load(writer.path).steps == []


def test_secrets_never_written_in_clear(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path, "task", task="login.yaml", goal=f"log in with {SECRET}",
                             secrets={"OTHER": "pa55-other"})
    writer.add_secret("FORM_PASSWORD", SECRET)
    writer.set_meta(note={"nested": [f"x{SECRET}y"]})
    frame = Frame(pixels(64, 48))
    writer.save_frame(frame)
    step = writer.add_step(
        action={"action": "type", "text": SECRET},
        model_action={"action": "type", "text": SECRET},
        frame="frames/000000.png",
        thought=f"I will type {SECRET} now",
        error=f"typing {SECRET!r} failed",
        ok=True,
        extra={"deep": [{"k": SECRET}, (SECRET, 1)], SECRET: "as a key"},
    )
    assert step["action"] == {"action": "type", "text": "•••", "secret": "FORM_PASSWORD"}
    assert step["model_action"]["secret"] == "FORM_PASSWORD"
    mixed = writer.add_step(action={"action": "type", "text": f"user pa55-other pass {SECRET}\n"})
    assert mixed["action"]["text"] == "user ••• pass •••\n"
    assert mixed["action"]["secret"] == "OTHER" and mixed["action"]["secrets"] == ["OTHER", "FORM_PASSWORD"]
    plain = writer.add_step(action={"action": "type", "text": "Ada"})
    assert plain["action"] == {"action": "type", "text": "Ada"}
    writer.add_model_call({
        "content": [{"type": "text", "text": f"The password is {SECRET}"},
                    {"type": "tool_use", "name": "computer", "input": {"action": "type", "text": SECRET}}],
        "usage": {"input_tokens": 5},
    })
    writer.finish("failed", error=f"check failed after typing {SECRET}", checks=[{"detail": SECRET}])

    needles = [SECRET.encode("utf-8"), b"pa55-other", json.dumps(SECRET).encode("ascii")]
    files = all_bytes(writer.path)
    assert {p.name for p in files} >= {"meta.json", "steps.jsonl", "model.jsonl", "000000.png"}
    for path, data in files.items():
        for needle in needles:
            assert needle not in data, f"secret written in clear in {path}"
    calls = read_lines(writer.path / "model.jsonl")
    assert calls[0]["content"][1]["input"] == {"action": "type", "text": "•••", "secret": "FORM_PASSWORD"}
    meta = Recording.load(writer.path).meta
    assert meta["goal"] == "log in with •••" and meta["error"] == "check failed after typing •••"
    assert meta["note"] == {"nested": ["x•••y"]}


def test_base64_images_never_land_in_model_log(tmp_path: Path) -> None:
    data = encode(pixels(40, 30), "png").base64()
    with RecordingWriter(tmp_path, "run") as writer:
        writer.add_model_call({
            "request": {"messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data,
                                             "frame": "frames/000000.png"}},
                {"type": "tool_result", "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
                ]},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
            ]}]},
            "raw": base64.b64decode(data),
            "stop_reason": "end_turn",
        })
        writer.finish("succeeded")
    text = (writer.path / "model.jsonl").read_text(encoding="utf-8")
    assert data not in text and data[:40] not in text
    call = read_lines(writer.path / "model.jsonl")[0]
    content = call["request"]["messages"][0]["content"]
    assert content[0]["source"] == {"type": "ref", "frame": "frames/000000.png"}
    assert content[1]["content"][0]["source"] == {"type": "ref", "frame": "omitted"}
    assert content[2]["image_url"]["url"] == "data:image/png;base64,<omitted>"
    assert call["raw"].endswith("bytes omitted>")


_KILLED_WRITER = """
import sys, time
import numpy as np
from agent.recording.writer import RecordingWriter
w = RecordingWriter(sys.argv[1], "run", goal="crash test")
print(w.path, flush=True)
frame = np.zeros((20, 30, 3), dtype=np.uint8)
i = 0
while True:
    f = w.save_frame(frame) if i % 5 == 0 else None
    w.add_step(action={"action": "left_click", "coordinate": [i % 30, 1]}, frame=f, thought="x" * 3000)
    w.add_model_call({"stop_reason": "tool_use", "content": [{"type": "text", "text": "y" * 2000}]})
    i += 1
"""


def test_sigkill_mid_run_leaves_a_loadable_recording(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(tmp_path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        folder = Path(proc.stdout.readline().strip())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            steps = folder / "steps.jsonl"
            if steps.exists() and steps.read_bytes().count(b"\n") >= 25:
                break
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.01)
        else:
            pytest.fail("the writer never wrote 25 steps")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    data = (folder / "steps.jsonl").read_bytes()
    complete = data.count(b"\n")
    loaded = Recording.load(folder)
    assert loaded.meta["status"] == "running" and loaded.complete is False
    assert len(loaded.steps) == complete >= 25
    assert [s["i"] for s in loaded.steps] == list(range(complete))
    assert loaded.truncated == (not data.endswith(b"\n"))
    with pytest.raises(RecordingError, match="running"):
        Recording.load(folder, partial_ok=False)


def _small_recording(tmp_path: Path, steps: int = 3, finish: bool = True) -> Path:
    writer = RecordingWriter(tmp_path, "replay")
    for i in range(steps):
        frame = writer.save_frame(pixels(16, 16, seed=i))
        writer.add_step(action={"action": "left_click", "coordinate": [i, i]}, frame=frame)
    if finish:
        writer.finish("succeeded")
    return writer.path


def test_truncated_last_line_is_tolerated(tmp_path: Path) -> None:
    folder = _small_recording(tmp_path)
    with open(folder / "steps.jsonl", "ab") as fh:
        fh.write('{"i": 3, "t": 0.5, "source": "replay", "action": {"action": "type", "text": "é'.encode()[:-1])
    loaded = Recording.load(folder)
    assert loaded.truncated and len(loaded.steps) == 3 and loaded.complete
    with pytest.raises(RecordingError, match=r"steps\.jsonl: the last line is truncated"):
        Recording.load(folder, partial_ok=False)


def test_bad_middle_line_names_the_line(tmp_path: Path) -> None:
    folder = _small_recording(tmp_path)
    lines = (folder / "steps.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = lines[1][:20] + "\n"
    (folder / "steps.jsonl").write_text("".join(lines), encoding="utf-8")
    with pytest.raises(RecordingError, match=r"steps\.jsonl: line 2: not valid JSON"):
        Recording.load(folder)


def test_broken_last_line_with_newline_is_corruption(tmp_path: Path) -> None:
    folder = _small_recording(tmp_path)
    with open(folder / "steps.jsonl", "ab") as fh:
        fh.write(b'{"i": 3, "act\n')
    with pytest.raises(RecordingError, match=r"line 4: not valid JSON"):
        Recording.load(folder)


def test_out_of_order_step_names_the_line(tmp_path: Path) -> None:
    folder = _small_recording(tmp_path)
    lines = read_lines(folder / "steps.jsonl")
    lines[2]["i"] = 7
    (folder / "steps.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    with pytest.raises(RecordingError, match=r"line 3: step index i is 7, expected 2"):
        Recording.load(folder)


def test_missing_frame_or_anchor_is_named(tmp_path: Path) -> None:
    folder = _small_recording(tmp_path)
    (folder / "frames/000001.png").unlink()
    with pytest.raises(RecordingError, match=r"line 2: frame: frames/000001\.png is missing"):
        Recording.load(folder)


def test_path_escaping_the_folder_is_rejected(tmp_path: Path) -> None:
    folder = _small_recording(tmp_path)
    lines = read_lines(folder / "steps.jsonl")
    lines[0]["anchor"] = {"image": "../../etc/passwd", "box": [0, 0, 1, 1], "point": [0, 0]}
    (folder / "steps.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    with pytest.raises(RecordingError, match=r"line 1: anchor image: '\.\./\.\./etc/passwd' is not a path"):
        Recording.load(folder)


def test_wrong_format_version_is_named(tmp_path: Path) -> None:
    folder = _small_recording(tmp_path)
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    meta["format"] = "deskpilot.recording/2"
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(RecordingError, match=r"meta\.json: has format 'deskpilot\.recording/2'"):
        Recording.load(folder)


def test_missing_or_invalid_meta_and_missing_folder(tmp_path: Path) -> None:
    folder = _small_recording(tmp_path)
    (folder / "meta.json").write_text('{"format": "deskpilot.recording/1",\n  "status": ', encoding="utf-8")
    with pytest.raises(RecordingError, match=r"meta\.json: line 2 column \d+: not valid JSON"):
        Recording.load(folder)
    (folder / "meta.json").unlink()
    with pytest.raises(RecordingError, match=r"meta\.json: missing"):
        Recording.load(folder)
    with pytest.raises(RecordingError, match="no such recording folder"):
        Recording.load(tmp_path / "nope")
    with pytest.raises(RecordingError, match="not a folder"):
        Recording.load(folder / "steps.jsonl")


def test_writers_started_together_get_different_folders(tmp_path: Path, monkeypatch) -> None:
    paths: list[Path] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        writer = RecordingWriter(tmp_path, "rollouts")
        paths.append(writer.path)
        writer.finish("succeeded")

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(paths)) == 8

    # even when the random part collides, the folder is created exclusively and retried
    suffixes = iter(["beef", "beef", "beef", "cafe"])
    real = files.secrets.token_hex
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: next(suffixes) if n == 2 else real(n))
    first, second = RecordingWriter(tmp_path, "run"), RecordingWriter(tmp_path, "run")
    assert first.path != second.path and first.path.name.endswith("-run-beef")
    same_second = second.path.name[:15] == first.path.name[:15]
    assert second.path.name.endswith("-run-cafe" if same_second else "-run-beef")


def test_context_manager_and_finish_semantics(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), RecordingWriter(tmp_path / "a", "run") as writer:
        writer.add_step(action={"action": "wait", "duration": 1})
        raise RuntimeError("boom")
    meta = Recording.load(writer.path).meta
    assert meta["status"] == "error" and meta["error"] == "boom" and meta["summary"]["steps"] == 1
    with pytest.raises(RuntimeError, match="finished"):
        writer.add_step(action={"action": "wait", "duration": 1})

    with RecordingWriter(tmp_path / "b", "human") as writer:
        writer.finish("stopped")
        writer.finish("succeeded")  # the first call decides
    assert Recording.load(writer.path).meta["status"] == "stopped"

    with pytest.raises(ValueError, match="status must be one of"):
        RecordingWriter(tmp_path / "c", "run").finish("running")
    with pytest.raises(ValueError, match="kind"):
        RecordingWriter(tmp_path / "c", "movie")
    with pytest.raises(ValueError, match="may not set status"):
        RecordingWriter(tmp_path / "c", "run").set_meta(status="succeeded")


def test_concurrent_writes_and_json_safety(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path, "rollouts")

    def work(n: int) -> None:
        for k in range(20):
            writer.add_step(action={"action": "mouse_move", "coordinate": [n, k]},
                            timing={"exec_ms": np.float32(1.5)}, usage={"input_tokens": np.int64(k)})
            writer.add_model_call({"thread": n, "latency": float("nan")})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.finish("succeeded")
    loaded = Recording.load(writer.path)
    assert [s["i"] for s in loaded.steps] == list(range(80))
    assert len(loaded.model_calls) == 80 and sorted(c["call"] for c in loaded.model_calls) == list(range(80))
    assert all(c["latency"] is None for c in loaded.model_calls)
    assert loaded.steps[0]["timing"]["exec_ms"] == 1.5
    assert "NaN" not in (writer.path / "model.jsonl").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# the typed models of the format


def test_round_trip_keeps_unknown_keys(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path, "task", goal="g", screen={"width": 64, "height": 48, "scale": 2.0},
                             extra_meta={"display": ":5", "custom": {"nested": [1, 2]}})
    frame = writer.save_frame(pixels(64, 48))
    writer.add_step(action={"action": "left_click", "coordinate": [3, 4], "new_field": True}, frame=frame,
                    timing={"exec_ms": 2, "find_ms": 1.5, "gpu_ms": 7}, usage={"input_tokens": 3, "cost_usd": 0.1},
                    describe="click", line=7, step=1, target={"how": "ocr"}, future_key={"a": [None, 1.5]})
    writer.finish("succeeded")
    # a later writer may add keys anywhere, also inside the known objects
    on_disk = json.loads((writer.path / "meta.json").read_text(encoding="utf-8"))
    on_disk["screen"]["dpi"] = 96
    on_disk["summary"]["gpu_s"] = 0.5
    (writer.path / "meta.json").write_text(json.dumps(on_disk), encoding="utf-8")
    line = read_lines(writer.path / "steps.jsonl")[0]

    loaded = Recording.load(writer.path)
    meta, step = loaded.meta, loaded.typed_steps[0]
    assert isinstance(meta, Meta) and isinstance(step, Step) and loaded.steps[0] == line
    assert meta.screen == Screen(width=64, height=48, scale=2.0, dpi=96) and meta.summary.steps == 1
    assert meta.model_extra == {"display": ":5", "custom": {"nested": [1, 2]}} and meta["custom"] == {"nested": [1, 2]}
    assert meta == on_disk and dict(meta) == on_disk and list(meta) == list(on_disk) and "display" in meta
    assert meta.get("nope") is None and meta["screen"] == on_disk["screen"] and meta.complete
    assert step.i == 0 and step.frame == frame and step.timing.find_ms == 1.5
    assert step.timing.model_extra == {"gpu_ms": 7} and step.usage.input_tokens == 3
    assert step.describe == "click" and step.line == 7 and step.step == 1 and step.target == {"how": "ocr"}
    assert step.model_extra == {"future_key": {"a": [None, 1.5]}} and step["future_key"] == {"a": [None, 1.5]}
    # through the models and back to JSON: every key, known or not, survives
    assert Meta.model_validate(on_disk).model_dump(mode="json", exclude_unset=True) == on_disk
    assert Step.model_validate(line).model_dump(mode="json", exclude_unset=True) == line


def _rewrite_step(folder: Path, index: int, **changes) -> None:
    lines = read_lines(folder / "steps.jsonl")
    lines[index].update(changes)
    (folder / "steps.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"ok": "yes"}, r"line 2: step 1: ok: Input should be a valid boolean \(got 'yes'\)"),
        ({"timing": {"exec_ms": "fast"}}, r"line 2: step 1: timing\.exec_ms: Input should be a valid number"),
        ({"source": "robot"}, r"line 2: step 1: source: Input should be 'model', 'script', 'human' or 'replay'"),
        ({"thought": ["a", "list"]}, r"line 2: step 1: thought: Input should be a valid string"),
        ({"anchor": {"image": "frames/000001.png", "box": [0, 0, 1], "point": [0, 0]}}, r"line 2: step 1: anchor\.box"),
    ],
)
def test_a_step_line_of_the_wrong_type_is_refused_naming_the_field(tmp_path: Path, changes, expected) -> None:
    folder = _small_recording(tmp_path)
    _rewrite_step(folder, 1, **changes)
    with pytest.raises(RecordingError, match=expected):
        Recording.load(folder)


def test_a_meta_of_the_wrong_type_is_refused_naming_the_field(tmp_path: Path) -> None:
    folder = _small_recording(tmp_path)
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    (folder / "meta.json").write_text(json.dumps({**meta, "screen": {"width": "320", "height": 200}}), encoding="utf-8")
    with pytest.raises(RecordingError, match=r"meta\.json: screen\.width: Input should be a valid integer"):
        Recording.load(folder)
    (folder / "meta.json").write_text(json.dumps({**meta, "summary": {"duration_s": 1.0}}), encoding="utf-8")
    with pytest.raises(RecordingError, match=r"meta\.json: summary\.steps: missing"):
        Recording.load(folder)


def test_the_writer_refuses_what_it_could_not_read_back(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path, "run", goal="g") as writer:
        with pytest.raises(ValueError, match=r"step 0: thought: Input should be a valid string"):
            writer.add_step(action={"action": "wait", "duration": 1}, thought={"not": "text"})
        with pytest.raises(ValueError, match=r"meta\.json: goal: Input should be a valid string"):
            writer.set_meta(goal=5)
        with pytest.raises(ValueError, match=r"meta\.json: checks\.0: Input should be a valid dictionary"):
            writer.finish("succeeded", checks=["passed"])
        assert writer.steps == 0 and writer.meta["goal"] == "g" and not writer.finished
        writer.add_step(action={"action": "wait", "duration": 1})
        writer.finish("succeeded")
    loaded = Recording.load(writer.path, partial_ok=False)
    assert len(loaded.steps) == 1 and loaded.meta.goal == "g" and loaded.meta.checks is None


def test_mark_crashed_ends_a_running_recording_only(tmp_path: Path) -> None:
    folder = _small_recording(tmp_path, finish=False)
    before = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    assert rec.mark_crashed(folder, "the attempt's process died") is True
    meta = Recording.load(folder).meta
    assert meta.status == "error" and meta.error == "the attempt's process died" and meta.ended
    assert {k: v for k, v in meta.items() if k not in ("status", "error", "ended")} == \
        {k: v for k, v in before.items() if k not in ("status", "error", "ended")}
    assert list(meta) == list(before) and not list(folder.glob(".*"))
    ended = (folder / "meta.json").read_bytes()
    assert rec.mark_crashed(folder, "again") is False and (folder / "meta.json").read_bytes() == ended
    with pytest.raises(RecordingError, match=r"meta\.json: missing"):
        rec.mark_crashed(tmp_path / "nothing-here", "x")
