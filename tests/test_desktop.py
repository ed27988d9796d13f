"""Displays against a real Xvfb: sizes, launching, parallel desktops, and no orphans ever."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from actions.platform.x11.desktop import DesktopError, ExistingDisplay, VirtualDesktop, open_desktop
from tests.conftest import x_servers
from vision.geometry import Size

REPO = Path(__file__).resolve().parents[1]


def gone(pid: int) -> bool:
    """True once `pid` no longer runs (a zombie left to a non-reaping init counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: list[int], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not all(gone(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def free_display() -> str:
    n = next(n for n in range(900, 1000) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
    return f":{n}"


def test_virtual_size_and_launch(tmp_path: Path) -> None:
    with VirtualDesktop(Size(1024, 768)) as desk:
        assert desk.kind == "virtual" and desk.display.startswith(":")
        assert desk.size() == Size(1024, 768)
        proc = desk.launch(
            "xdotool getdisplaygeometry > geo; echo $DISPLAY $FOO > env", cwd=tmp_path, env={"FOO": "bar"}
        )
        assert proc.wait(timeout=10) == 0
        assert (tmp_path / "geo").read_text().split() == ["1024", "768"]
        assert (tmp_path / "env").read_text().split() == [desk.display, "bar"]
        assert desk.env()["DISPLAY"] == desk.display
    desk.stop()  # idempotent
    with pytest.raises(DesktopError):
        desk.launch(["true"])


def test_two_desktops_from_threads_and_full_cleanup() -> None:
    earlier = {p.pid for p in psutil.Process().children(recursive=True)}  # e.g. a session display of this worker
    desks: list[VirtualDesktop] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            desks.append(VirtualDesktop(Size(800, 600)).start())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors and len(desks) == 2
        assert desks[0].display != desks[1].display
        assert all(d.size() == Size(800, 600) for d in desks)
        sleeps = [d.launch(["sleep", "1000"]).pid for d in desks]
        sleeps += [d.launch("sleep 999 & sleep 998").pid for d in desks]  # grandchildren too
        servers = [d.server.pid for d in desks]
        assert not any(gone(p) for p in sleeps + servers)
    finally:
        start_stop = time.monotonic()
        for d in desks:
            d.stop()
        elapsed = time.monotonic() - start_stop
    assert elapsed < 2.0
    assert all(gone(p) for p in sleeps + servers)
    assert not [p for p in psutil.Process().children(recursive=True)
                if p.pid not in earlier and p.status() != psutil.STATUS_ZOMBIE]
    for d, server in zip(desks, servers, strict=True):
        assert server not in x_servers(d.display)
        with contextlib.suppress(DesktopError):  # raised when nothing answers on the number (it was freed)
            ExistingDisplay(d.display)  # answering: another test's server (two workers) took the number again
            assert server not in x_servers(d.display)


def test_window_manager() -> None:
    from Xlib import X
    from Xlib.display import Display

    earlier = {p.pid for p in psutil.Process().children(recursive=True)}
    with VirtualDesktop(window_manager=True) as desk:
        names = [p.name() for p in psutil.Process().children(recursive=True) if p.pid not in earlier]
        assert "openbox" in names
        conn = Display(desk.display)
        try:
            root = conn.screen().root
            check = root.get_full_property(conn.intern_atom("_NET_SUPPORTING_WM_CHECK"), X.AnyPropertyType)
            win = conn.create_resource_object("window", check.value[0])
            name = win.get_full_property(conn.intern_atom("_NET_WM_NAME"), X.AnyPropertyType)
            assert name.value == b"Openbox"
        finally:
            conn.close()
    assert "openbox" not in [p.name() for p in psutil.Process().children(recursive=True) if p.pid not in earlier]


@pytest.mark.parametrize("ending", ["sigkill", "exit-without-stop"])
def test_no_orphans_when_caller_dies(ending: str) -> None:
    code = textwrap.dedent(f"""
        import sys, time
        from actions.platform.x11.desktop import VirtualDesktop
        desk = VirtualDesktop().start()
        sleep = desk.launch(["sleep", "1000"])
        print(desk.server.pid, sleep.pid, flush=True)
        if {ending == "sigkill"}:
            time.sleep(1000)
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        pids = [int(p) for p in child.stdout.readline().split()]
        assert len(pids) == 2
        if ending == "sigkill":
            assert not any(gone(p) for p in pids)
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert wait_gone(pids, timeout=3.0)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_open_desktop_bad_input() -> None:
    with pytest.raises(ValueError, match=r"'bogus'.*auto, host, virtual"):
        open_desktop("bogus")
    with pytest.raises(ValueError, match="--size applies only to virtual displays"):
        open_desktop(":3", size=Size(800, 600))
    with pytest.raises(ValueError, match="--size"):
        open_desktop("host", size=Size(800, 600))
    display = free_display()
    with pytest.raises(DesktopError, match=display):
        open_desktop(display)


def test_open_desktop_auto_and_host_without_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(DesktopError, match="DISPLAY"):
        open_desktop("host")
    with open_desktop("auto", size=Size(640, 480)) as desk:
        assert desk.kind == "virtual" and desk.size() == Size(640, 480)


def test_existing_display_stops_only_what_it_launched(monkeypatch: pytest.MonkeyPatch) -> None:
    with VirtualDesktop() as virtual:
        existing = open_desktop(virtual.display)
        assert existing.kind == "existing" and existing.size() == Size(1280, 800)
        sleep = existing.launch("exec sleep 1000")
        existing.stop()
        assert gone(sleep.pid)
        assert ExistingDisplay(virtual.display).size() == Size(1280, 800)  # server untouched
        monkeypatch.setenv("DISPLAY", virtual.display)
        with open_desktop("auto") as host:
            assert (host.kind, host.display) == ("host", virtual.display)
        with pytest.raises(ValueError, match="auto chose the host display"):
            open_desktop("auto", size=Size(800, 600))


def test_gtk_scrollbars_hold_still_on_a_private_desktop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GTK 3's overlay scrollbars appear on every pointer move over a scrolled view and fade out for about 0.8 s:
    the screen would not settle until then after each click in an editor. A private desktop turns them off
    for its programs; an existing display, or the user's own setting, is left as it is."""
    import numpy as np

    from tests.real_apps import start_mousepad, wait_still
    from vision.capture import Screen

    monkeypatch.delenv("GTK_OVERLAY_SCROLLING", raising=False)
    with VirtualDesktop(Size(1280, 800), window_manager=True) as desk:
        assert desk.env()["GTK_OVERLAY_SCROLLING"] == "0"
        assert "GTK_OVERLAY_SCROLLING" not in ExistingDisplay(desk.display).env()
        monkeypatch.setenv("GTK_OVERLAY_SCROLLING", "1")
        assert desk.env()["GTK_OVERLAY_SCROLLING"] == "1"
        monkeypatch.delenv("GTK_OVERLAY_SCROLLING")

        start_mousepad(desk, tmp_path)
        with Screen(desk.display) as screen:
            before = wait_still(screen)
            subprocess.run(["xdotool", "mousemove", "300", "400", "click", "1"], env=desk.env(), check=True,
                           timeout=10)
            strip = (slice(60, 740), slice(1260, 1280))  # the text view's right edge, where the scrollbar is
            frames = [before.pixels[strip]]
            deadline = time.monotonic() + 1.2
            while time.monotonic() < deadline:
                frames.append(screen.grab().pixels[strip])
                time.sleep(0.02)
        changes = sum(not np.array_equal(a, b) for a, b in itertools.pairwise(frames))
        assert changes == 0, f"the scrollbar changed {changes} times after a click"
