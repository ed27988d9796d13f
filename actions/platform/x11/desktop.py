"""Where the agent acts: the host display, an existing X display, or a private Xvfb.

Every program a desktop starts (Xvfb, the window manager, launched apps) runs in its own process
group, guarded by the desktop's reaper (see reaper.py), so no orphans survive its owner.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actions.platform.base import DEFAULT_SIZE, DesktopError
from actions.platform.x11.reaper import Reaper, end_groups, live_groups
from vision.geometry import Size

if TYPE_CHECKING:
    from actions.platform.x11.accessibility_bus import Buses

__all__ = ["DEFAULT_SIZE", "Desktop", "DesktopError", "ExistingDisplay", "VirtualDesktop", "open_desktop"]
_DISPLAY_RE = re.compile(r"^:\d+(\.\d+)?$")

_live: set[Desktop] = set()
_live_lock = threading.Lock()
_atexit_registered = False


def _stop_all() -> None:
    with _live_lock:
        desktops = list(_live)
    for desktop in desktops:
        desktop.stop()


def _connect(display: str) -> Any:
    """Open a python-xlib connection to `display`, or raise DesktopError naming it."""
    from Xlib.display import Display

    try:
        return Display(display)
    except Exception as exc:
        raise DesktopError(
            f"cannot connect to X display {display!r} ({exc}); check that it is running, "
            "or use --display virtual"
        ) from exc


class Desktop:
    """An X display the agent can act on, plus the programs started on it."""

    def __init__(self, display: str, kind: str) -> None:
        self.display = display
        self.kind = kind
        self._procs: list[subprocess.Popen] = []
        self._reaper: Reaper | None = None
        self._lock = threading.RLock()
        self._stopped = False
        self.buses: Buses | None = None  # a virtual desktop's own session and accessibility buses

    def __repr__(self) -> str:
        return f"{type(self).__name__}(display={self.display!r}, kind={self.kind!r})"

    def env(self) -> dict[str, str]:
        """A copy of os.environ with DISPLAY set to this display (and, on a virtual one, its own D-Bus session and
        GTK's overlay scrollbars off, unless the environment sets them)."""
        env = dict(os.environ, DISPLAY=self.display)
        if self.kind != "host":
            env.pop("WAYLAND_DISPLAY", None)  # or toolkits would open windows on the user's screen
        if self.kind == "virtual":
            # GTK 3's overlay scrollbars show on every pointer move over a scrolled view and fade out for ~0.8 s, so
            # the screen does not settle before (measured: a click in mousepad settled in 0.9 s, 0.16 s without)
            env.setdefault("GTK_OVERLAY_SCROLLING", "0")
        return self.buses.program_env(env) if self.buses is not None else env

    @property
    def accessibility_problem(self) -> str | None:
        """Why programs on this display expose no accessibility tree, when deskpilot knows (None: no known problem)."""
        return self.buses.problem if self.buses is not None else None

    def size(self) -> Size:
        """The screen size in pixels, queried from the X server."""
        conn = _connect(self.display)
        try:
            screen = conn.screen()
            return Size(screen.width_in_pixels, screen.height_in_pixels)
        finally:
            conn.close()

    def launch(
        self, command: str | list[str], cwd: str | Path | None = None, env: dict | None = None, *,
        environ: dict | None = None, stdout: Any = None, stderr: Any = None
    ) -> subprocess.Popen:
        """Start a program in the background on this display; `stop()` ends its process group.

        A string runs via /bin/sh, a list directly; `env` adds variables to `self.env()`, or
        `environ` is the whole environment (DISPLAY is set either way). `stdout`/`stderr` are
        passed to subprocess.Popen. A program that cannot be started raises OSError
        (FileNotFoundError for a missing one).
        """
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        base = dict(environ) if environ is not None else self.env()
        return self._spawn(argv, cwd=cwd, env={**base, **(env or {}), "DISPLAY": self.display}, stdout=stdout,
                           stderr=stderr)

    def _spawn(self, argv: list[str], **kwargs: Any) -> subprocess.Popen:
        with self._lock:
            if self._stopped:
                raise DesktopError(f"desktop {self.display} is stopped; open a new one")
            if self._reaper is None:
                self._start_reaper()
            self._forget_finished()
            kwargs.setdefault("stdin", subprocess.DEVNULL)
            _check_program(argv[0], (kwargs.get("env") or os.environ).get("PATH"), kwargs.get("cwd"))
            # The program waits at a gate (its stdin, before it becomes /dev/null) until its group is
            # registered with the reaper: if we die in between, the gate closes and it never runs.
            gated = kwargs["stdin"] == subprocess.DEVNULL
            if gated:
                argv = ["/bin/sh", "-c", 'read -r _ || exit 125; exec "$@" </dev/null', "deskpilot-gate", *argv]
                kwargs["stdin"] = subprocess.PIPE
            proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
            try:
                self._procs.append(proc)
                self._guard(proc.pid)
                if gated:
                    assert proc.stdin is not None
                    proc.stdin.write(b"go\n")
            finally:
                if gated and proc.stdin is not None:
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
            return proc

    def _start_reaper(self) -> None:
        global _atexit_registered
        self._reaper = Reaper()
        with _live_lock:
            _live.add(self)
            if not _atexit_registered:
                atexit.register(_stop_all)
                _atexit_registered = True

    def _guard(self, pgid: int, forget: bool = False) -> None:
        assert self._reaper is not None
        try:
            if forget:
                self._reaper.forget(pgid)
            else:
                self._reaper.register(pgid)
        except OSError as exc:
            raise DesktopError(f"the orphan guard of display {self.display} died: {exc}") from exc

    def _forget_finished(self) -> None:
        """Drop programs whose whole group has ended, so a reused pid is never killed."""
        done = {p.pid: p for p in self._procs if p.poll() is not None}
        if done:
            for pgid in set(done) - live_groups(set(done)):
                self._procs.remove(done[pgid])
                self._guard(pgid, forget=True)

    def stop(self) -> None:
        """Terminate every started program's process group (TERM, ~1 s grace, KILL); idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            procs, self._procs = self._procs, []
            clean = False
            try:
                end_groups(procs)
                clean = True
            finally:
                if self._reaper is not None:
                    self._reaper.close(clean)  # unless clean, the reaper kills whatever is left
                with _live_lock:
                    _live.discard(self)

    def __enter__(self) -> Desktop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ExistingDisplay(Desktop):
    """A display that already exists (":N", or the host's $DISPLAY); stop() never stops its server."""

    def __init__(self, display: str | None = None) -> None:
        kind = "existing" if display else "host"
        display = display or os.environ.get("DISPLAY", "")
        if not display:
            raise DesktopError("no host display: $DISPLAY is not set; use --display virtual")
        super().__init__(display, kind)
        _connect(display).close()


class VirtualDesktop(Desktop):
    """A private Xvfb server (optionally with openbox) that lives until stop()."""

    def __init__(self, size: Size = DEFAULT_SIZE, depth: int = 24, window_manager: bool = False,
                 accessibility: bool = True) -> None:
        super().__init__("", "virtual")
        self.requested_size = size
        self.depth = depth
        self.window_manager = window_manager
        self.accessibility = accessibility  # start a D-Bus session and the accessibility bus (see accessibility_bus)
        self.server: subprocess.Popen | None = None  # the Xvfb process, once started

    def start(self, timeout: float = 10.0) -> VirtualDesktop:
        """Start Xvfb on a free display number it picks itself (and the WM); returns self."""
        with self._lock:
            if self._stopped:
                raise DesktopError("this virtual desktop was stopped; create a new one")
            if self.display:
                return self
            xvfb = shutil.which("Xvfb")
            if xvfb is None:
                raise DesktopError("Xvfb not found: install it with `apt-get install xvfb`")
            if self.window_manager and shutil.which("openbox") is None:
                raise DesktopError("openbox not found: install it with `apt-get install openbox`")
            try:
                self._start_xvfb(xvfb, timeout)
                if self.window_manager:
                    self._start_wm()
                from actions.platform.x11.accessibility_bus import Buses, start_buses

                self.buses = start_buses(self._spawn, self.env()) if self.accessibility else Buses(
                    problem="accessibility is switched off for this virtual desktop")
            except BaseException:
                self.stop()
                raise
            return self

    def _start_xvfb(self, xvfb: str, timeout: float) -> None:
        screen = f"{self.requested_size.width}x{self.requested_size.height}x{self.depth}"
        read_fd, write_fd = os.pipe()
        argv = [xvfb, "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp", "-noreset"]
        with tempfile.TemporaryFile() as log, os.fdopen(read_fd, "rb", buffering=0) as pipe:
            try:
                proc = self._spawn(argv, pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=log)
            finally:
                os.close(write_fd)
            data, deadline = b"", time.monotonic() + timeout
            while not data.endswith(b"\n"):  # Xvfb writes "N\n" once it accepts connections
                left = deadline - time.monotonic()
                chunk = pipe.read(64) if left > 0 and select.select([pipe], [], [], left)[0] else None
                if not chunk:
                    why = f"timed out after {timeout:.0f} s" if chunk is None else "exited"
                    log.seek(0)
                    tail = log.read().decode(errors="replace").strip()[-800:]
                    raise DesktopError(f"Xvfb failed to start ({why}); its stderr:\n{tail}")
                data += chunk
        self.server, self.display = proc, f":{int(data)}"

    def _start_wm(self, timeout: float = 5.0) -> None:
        from Xlib import X

        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        wm = self._spawn(["openbox", "--sm-disable"], env=self.env(), **quiet)
        conn = _connect(self.display)
        try:
            atom = conn.intern_atom("_NET_SUPPORTING_WM_CHECK")
            root, deadline = conn.screen().root, time.monotonic() + timeout
            while root.get_full_property(atom, X.AnyPropertyType) is None:
                if wm.poll() is not None:
                    raise DesktopError(f"openbox exited with code {wm.returncode} on {self.display}")
                if time.monotonic() > deadline:
                    raise DesktopError(f"openbox did not take over {self.display} within {timeout:.0f} s")
                time.sleep(0.05)
        finally:
            conn.close()

    def __enter__(self) -> VirtualDesktop:
        return self.start()


def open_desktop(spec: str = "auto", size: Size | None = None, window_manager: bool = False) -> Desktop:
    """Choose and open the display backend for `--display SPEC` (host | virtual | :N | auto).

    `window_manager` applies to virtual displays only (an existing display brings its own).
    """
    if spec not in ("auto", "host", "virtual") and not _DISPLAY_RE.match(spec):
        raise ValueError(f"invalid display {spec!r}: use auto, host, virtual or an X display like :1")
    if size is not None and spec not in ("auto", "virtual"):
        raise ValueError("--size applies only to virtual displays")
    if spec == "host":
        return ExistingDisplay()
    if _DISPLAY_RE.match(spec):
        return ExistingDisplay(spec)
    if spec == "auto" and os.environ.get("DISPLAY"):
        with contextlib.suppress(DesktopError):  # an unreachable $DISPLAY falls back to virtual
            host = ExistingDisplay()
            if size is not None:
                raise ValueError(
                    f"--size applies only to virtual displays, and auto chose the host display "
                    f"{host.display}; use --display virtual"
                )
            return host
    return VirtualDesktop(size or DEFAULT_SIZE, window_manager=window_manager).start()


def _check_program(program: str, path: str | None, cwd: str | Path | None = None) -> None:
    """FileNotFoundError or PermissionError now, as Popen would raise them, for a program that cannot run."""
    import errno

    if "/" in program:
        found: str | None = os.path.join(cwd, program) if cwd is not None and not os.path.isabs(program) else program
    else:
        found = shutil.which(program, mode=os.F_OK, path=path)
    if found is None or not os.path.exists(found):
        raise FileNotFoundError(errno.ENOENT, f"No such file or directory: {program!r}", program)
    if os.path.isdir(found) or not os.access(found, os.X_OK):
        raise PermissionError(errno.EACCES, f"Permission denied: {program!r}", program)
