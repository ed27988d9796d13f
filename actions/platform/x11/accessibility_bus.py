"""A virtual desktop's own D-Bus session and accessibility bus, so its programs expose their accessibility trees.

GTK, Qt and browsers publish their widget trees (AT-SPI) on an accessibility bus, which they
find through the D-Bus session bus (`org.a11y.Bus`). A private Xvfb has neither, so
`start_buses` starts a session `dbus-daemon` and `at-spi-bus-launcher` (at-spi2-core) through
the desktop's own spawner (their process groups end with the desktop), waits until the
accessibility bus answers, and marks accessibility enabled (`org.a11y.Status.IsEnabled`, which Qt
reads). `program_env` is what programs launched on the desktop then need: the session bus's
address, `NO_AT_BRIDGE` removed (it turns GTK's bridge off), the switches Qt and Chromium read,
and, when GTK 2's bridge module is installed, `GTK_MODULES` (GTK 3 loads its bridge by itself).
The accessibility bus's address is also published as the root window's `AT_SPI_BUS` property,
where libatspi (and `vision.locate.atspi`) look before asking a session bus, so any process that
only knows the display (`deskpilot inspect --display :N`) finds the tree.

A private session bus also keeps the sandbox's programs off the user's session (a second
instance of a single-instance application would otherwise hand its work to the user's one).
When a piece is missing, the desktop still starts: `problem` says what is missing, programs get
`NO_AT_BRIDGE=1`, and accessibility targets fail with that message.
"""

from __future__ import annotations

import glob
import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

LAUNCHER_PATHS = ("/usr/libexec/at-spi-bus-launcher", "/usr/lib/at-spi2-core/at-spi-bus-launcher",
                  "/usr/lib/at-spi2/at-spi-bus-launcher", "/usr/libexec/at-spi2/at-spi-bus-launcher")
GTK2_BRIDGE = "/usr/lib/*/gtk-2.0/modules/libatk-bridge.so"
# variables that would point programs at the user's buses, or switch their bridges off
_FOREIGN = ("DBUS_SESSION_BUS_ADDRESS", "AT_SPI_BUS_ADDRESS", "NO_AT_BRIDGE", "DBUS_SESSION_BUS_PID")
_SWITCHES = {"QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1", "QT_ACCESSIBILITY": "1", "GNOME_ACCESSIBILITY": "1",
             "ACCESSIBILITY_ENABLED": "1"}


@dataclass
class Buses:
    """What `start_buses` achieved: the session bus's address, or the problem that stopped it."""

    address: str | None = None
    problem: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def program_env(self, base: dict[str, str]) -> dict[str, str]:
        """`base` with this desktop's buses (or, without them, the bridges off and the user's buses out of reach)."""
        env = {k: v for k, v in base.items() if k not in _FOREIGN}
        if self.address is None:
            env["NO_AT_BRIDGE"] = "1"
            if "DBUS_SESSION_BUS_ADDRESS" in base:  # unchanged from before: not ours to take away
                env["DBUS_SESSION_BUS_ADDRESS"] = base["DBUS_SESSION_BUS_ADDRESS"]
            return env
        env["DBUS_SESSION_BUS_ADDRESS"] = self.address
        env.update(_SWITCHES)
        env.update(self.extra)
        return env


def launcher_path() -> str | None:
    """at-spi2-core's bus launcher, where this system keeps it."""
    return next((p for p in LAUNCHER_PATHS if os.access(p, os.X_OK)), None)


def start_buses(spawn: Callable[..., subprocess.Popen], env: dict[str, str], timeout: float = 5.0) -> Buses:
    """Start a session bus and the accessibility bus for a desktop whose programs get `env` (DISPLAY set).

    `spawn(argv, **popen_kwargs)` starts a program under the desktop's guard. Never raises for a
    missing piece: the returned Buses says what is missing.
    """
    daemon, launcher = shutil.which("dbus-daemon"), launcher_path()
    if daemon is None:
        return Buses(problem="dbus-daemon is not installed (apt-get install dbus), so programs on this display "
                             "expose no accessibility tree")
    if launcher is None:
        return Buses(problem="at-spi-bus-launcher is not installed (apt-get install at-spi2-core), so programs on "
                             "this display expose no accessibility tree")
    read_fd, write_fd = os.pipe()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    clean = {k: v for k, v in env.items() if k not in _FOREIGN}
    try:
        try:
            spawn([daemon, "--session", "--nofork", "--nopidfile", f"--print-address={write_fd}"],
                  pass_fds=(write_fd,), env=clean, **quiet)
        finally:
            os.close(write_fd)
        address = _read_line(read_fd, timeout)
    finally:
        os.close(read_fd)
    if not address:
        return Buses(problem="the D-Bus session bus of this display did not start")
    buses = Buses(address, extra={"GTK_MODULES": _gtk_modules(env)} if glob.glob(GTK2_BRIDGE) else {})
    spawn([launcher, "--launch-immediately"], env=buses.program_env(env), **quiet)
    problem, a11y_address = _wait_ready(buses.program_env(env), timeout)
    if problem is not None:
        return Buses(address, problem=problem)
    if a11y_address:
        _publish(env.get("DISPLAY", ""), a11y_address)
    return buses


def _publish(display: str, address: str) -> None:
    """Set the root window's AT_SPI_BUS property to the accessibility bus's address (best effort)."""
    try:
        from Xlib import X, Xatom
        from Xlib.display import Display

        conn = Display(display)
        try:
            conn.screen().root.change_property(conn.intern_atom("AT_SPI_BUS"), Xatom.STRING, 8, address.encode(),
                                               X.PropModeReplace)
            conn.sync()
        finally:
            conn.close()
    except Exception:  # the session bus still leads to it
        pass


def _gtk_modules(env: dict[str, str]) -> str:
    modules = [m for m in env.get("GTK_MODULES", "").split(":") if m]
    return ":".join(dict.fromkeys([*modules, "gail", "atk-bridge"]))


def _read_line(fd: int, timeout: float) -> str:
    """The first line written to `fd` within `timeout` seconds ("" if none)."""
    data, deadline = b"", time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return ""
        chunk = os.read(fd, 256)
        if not chunk:
            return ""
        data += chunk
    return data.decode(errors="replace").strip()


def _wait_ready(env: dict[str, str], timeout: float) -> tuple[str | None, str | None]:
    """Wait until `org.a11y.Bus` answers on the session bus, then mark accessibility enabled:
    (the problem, if any; the accessibility bus's address, if known)."""
    send = shutil.which("dbus-send")
    if send is None:  # the bus starts the launcher on demand anyway; nothing to wait with
        return None, None
    ask = [send, "--session", "--print-reply", f"--reply-timeout={int(timeout * 1000)}", "--dest=org.a11y.Bus",
           "/org/a11y/bus"]
    try:
        done = subprocess.run([*ask, "org.a11y.Bus.GetAddress"], env=env, capture_output=True, text=True,
                              timeout=timeout + 1)
        if done.returncode != 0:
            return f"the accessibility bus of this display did not start: {done.stderr.strip()[:300]}", None
        subprocess.run([*ask, "org.freedesktop.DBus.Properties.Set", "string:org.a11y.Status", "string:IsEnabled",
                        "variant:boolean:true"], env=env, capture_output=True, timeout=timeout + 1)
    except subprocess.TimeoutExpired:
        return f"the accessibility bus of this display did not answer within {timeout:g} s", None
    found = re.search(r'string "([^"]+)"', done.stdout)
    return None, found.group(1) if found else None
