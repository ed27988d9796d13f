"""The code that runs one attempt inside a worker: a local worker process, or a Ray task on any node.

Both entry points run `run_attempt` with a stop signal wired to the driver: a local worker reads
stop requests from a pipe (`process_main`), a Ray task polls a small coordinator actor
(`ray_main`). Neither has a terminal to ask policy questions on, so a policy rule that would
ask is refused ("ask" is "deny" in a worker; `--confirm allow` still allows).

A Ray task returns its recording as bytes (a tar archive of the recording folder, written in a
temporary folder of the worker and removed after): the driver unpacks it into the run folder.
That works on any cluster, shared file system or not (see agent.eval.engines.ray_cluster).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from agent.eval.attempt import Attempt, AttemptSpec
from agent.eval.sandbox import run_attempt, worker_name
from agent.session import Callbacks
from agent.types import StopSignal, Usage

POLL_S = 0.25
_GUARD = 'trap "" INT HUP TERM; read -r line; [ "$line" = done ] || kill -KILL -{pgid} 2>/dev/null'


@contextlib.contextmanager
def group_guard() -> Iterator[None]:
    """While inside, this process's death kills its process group: the commands it was running
    (task `run:` steps and checks, which are not desktop programs and have no reaper of their own).

    A tiny shell in its own session reads a pipe from this process: "done" when the attempt ends
    normally, end of file when this process died (killed, or cancelled by force). Armed only where
    this process leads its own group, so nothing else is ever killed.
    """
    if os.getpgrp() != os.getpid():
        yield
        return
    guard = subprocess.Popen(["/bin/sh", "-c", _GUARD.format(pgid=os.getpid())], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            assert guard.stdin is not None
            guard.stdin.write(b"done\n")
            guard.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            guard.wait(timeout=5)


def _worker_confirm(mode: str | None) -> str:
    """A worker has no terminal: "ask" (or no choice) becomes "deny"; "allow" and "deny" stay."""
    return mode if mode in ("allow", "deny") else "deny"


def process_main(spec: AttemptSpec, results: Connection, control: Connection, steps: bool,
                 confirm_mode: str | None) -> None:
    """A local worker process: run `spec`, sending ("begun", pid), ("step", ...) and ("done", attempt).

    The worker leads a process group of its own, so the driver can end it with everything it runs,
    and a terminal's Ctrl-C reaches only the driver, which relays the stop.
    """
    os.setpgid(0, 0)
    stop = StopSignal()
    signal.signal(signal.SIGINT, lambda *_: stop.stop("interrupted by the user (Ctrl-C)"))

    def listen() -> None:
        try:
            reason = control.recv()
        except (EOFError, OSError):  # the driver is gone: nobody wants this attempt any more
            reason = "the driver went away"
        stop.stop(str(reason))

    threading.Thread(target=listen, daemon=True, name="stop-listener").start()
    results.send(("begun", os.getpid()))
    on_step = None
    if steps:
        def on_step(line: dict, usage: Usage) -> None:
            results.send(("step", line, usage))
    callbacks = Callbacks(on_step=on_step, stop=stop, confirm_mode=_worker_confirm(confirm_mode))
    with group_guard():
        attempt = run_attempt(spec, callbacks, worker=f"process {worker_name()}")
    results.send(("done", attempt))
    results.close()


def ray_main(spec: AttemptSpec, coordinator: Any, steps: bool, confirm_mode: str | None) -> tuple[Attempt, bytes]:
    """A Ray task: run `spec` in a temporary folder of this node; (attempt, its recording as a tar archive)."""
    import ray

    tries = ray.get(coordinator.begin.remote(spec.index))
    stop = StopSignal()
    done = threading.Event()

    def poll() -> None:
        while not done.wait(POLL_S):
            try:
                reason = ray.get(coordinator.should_stop.remote(spec.index))
            except Exception:  # the driver and its actor are gone: stop
                reason = "the driver went away"
            if reason:
                stop.stop(reason)
                return

    threading.Thread(target=poll, daemon=True, name="stop-poller").start()
    scratch = Path(tempfile.mkdtemp(prefix="deskpilot-ray-"))
    try:
        local = replace(spec, options=replace(spec.options, out=scratch))
        on_step = None
        if steps:
            def on_step(line: dict, usage: Usage) -> None:
                coordinator.step.remote(spec.index, line, usage)
        callbacks = Callbacks(on_step=on_step, stop=stop, confirm_mode=_worker_confirm(confirm_mode))
        with group_guard():
            attempt = run_attempt(local, callbacks, worker=f"ray {worker_name()}")
        attempt.tries = tries
        archive = pack(attempt.recording) if attempt.recording is not None else b""
        if attempt.recording is not None:
            attempt.recording = Path(attempt.recording.name)  # relative: the driver places it
        return attempt, archive
    finally:
        done.set()
        shutil.rmtree(scratch, ignore_errors=True)


def pack(folder: Path) -> bytes:
    """A recording folder as an uncompressed tar archive (its frames are PNG already)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname=folder.name)
    return buffer.getvalue()


def unpack(archive: bytes, into: Path) -> Path:
    """Unpack a recording archive into folder `into`; the recording's path there."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as tar:
        names = {m.name.split("/")[0] for m in tar.getmembers()}
        if len(names) != 1:
            raise ValueError(f"a recording archive holds one folder, this one {sorted(names)}")
        tar.extractall(into, filter="data")
    return into / names.pop()
