"""The Ray engine: each attempt is a Ray task (`num_cpus` each) on a cluster, or on a local Ray started here.

- **Where.** `address` (`--ray-address`, e.g. `ray://head:10001` or `head:6379`) connects to a
  running cluster; every node needs deskpilot (`pip install 'deskpilot[ray]'`), Xvfb, and the
  suite's files at the same paths (task commands and images are read where the attempt runs).
  Without an address deskpilot starts a local Ray with `parallel * num_cpus` CPUs, no dashboard,
  and shuts it down when the run ends, however it ends: no raylet, GCS or worker is left.
- **Recordings** come back through Ray's object store: a task returns its attempt and its
  recording as a tar archive (bytes); the driver unpacks it into the run folder as the attempt
  ends. We chose the object store over a shared path because a cluster need not have a shared
  file system (and a path that exists on every node is one more thing to set up), and a recording
  is small (PNG frames, a few MB at most); Ray moves it between nodes like any return value.
- **A worker that dies** mid-attempt (killed, out of memory, its node lost) is retried once by
  Ray (`max_retries=1`); a second death is recorded as an error attempt (a stub recording says
  so). Application errors are never retried: run_attempt turns them into error attempts itself.
- **Stopping.** A small coordinator actor (no CPU) holds stop requests; every running task polls
  it and ends its attempt cleanly ("stopped", the recording complete and returned). Attempts not
  yet started never start. Abandoning (a second Ctrl-C, or STOP_GRACE_S after a stop) cancels the
  tasks by force (`ray.cancel(force=True)` kills their workers; their displays die with them).
- **Live steps.** Step lines go through the coordinator too; the driver drains them as it polls.
- The environment variables a worker needs (the model SDKs' keys and URLs, the tasks' secrets)
  are passed in the job's `runtime_env` when they are set here.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from agent.errors import EnvironmentProblem, ExitCode
from agent.eval.attempt import Attempt, AttemptSpec
from agent.eval.engines.base import Engine, OnStep
from agent.eval.sandbox import mark_ended, read_verdict

EXTRA = "deskpilot[ray]"
FORWARDED_ENV = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL",
                 "DESKPILOT_BACKEND")


REACH_TIMEOUT_S = 5.0


def check_reachable(address: str, timeout: float = REACH_TIMEOUT_S) -> None:
    """EnvironmentProblem unless something accepts TCP connections at a `host:port` or `ray://host:port` address.

    `ray.init` to an address where nothing listens keeps retrying for many minutes; this fails in
    seconds instead. Other forms (`auto`, `local`) are left to Ray.
    """
    import socket
    from urllib.parse import urlparse

    text = address if "://" in address else f"tcp://{address}"
    try:
        parsed = urlparse(text)
        host, port = parsed.hostname, parsed.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        if address in ("auto", "local"):
            return
        raise EnvironmentProblem(f"--ray-address {address!r}: expected HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise EnvironmentProblem(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def import_ray() -> Any:
    """The ray module; EnvironmentProblem (exit 4) naming the extra to install when it is missing."""
    try:
        import ray
    except ImportError:
        raise EnvironmentProblem(f"the Ray engine needs Ray: pip install '{EXTRA}' (or pip install ray)") from None
    return ray


class RayEngine(Engine):
    """Attempts as Ray tasks; see the module docstring."""

    name = "ray"

    def __init__(self, parallel: int, *, address: str | None = None, num_cpus: float = 1.0,
                 confirm_mode: str | None = None, env_names: tuple[str, ...] = ()) -> None:
        super().__init__(parallel)
        if not num_cpus > 0:
            raise ValueError(f"num_cpus must be positive, got {num_cpus!r}")
        self.address, self.num_cpus, self.confirm_mode = address, float(num_cpus), confirm_mode
        self.env_names = tuple(dict.fromkeys((*FORWARDED_ENV, *env_names)))
        self.ray: Any = None
        self.own_cluster = False
        self.coordinator: Any = None
        self.refs: dict[Any, int] = {}  # running task -> attempt index
        self.by_index: dict[int, Any] = {}
        self.on_step: OnStep | None = None
        self.started_s: float | None = None  # from open() to the cluster being ready
        self.first_attempt_s: float | None = None  # from open() to the first attempt beginning
        self.cluster: dict[str, Any] = {}
        self._opened_at = 0.0
        self._seen: set[int] = set()
        self.version: str | None = None
        self.preexisting = False  # the caller had initialised Ray already: it is used and left as it is
        self.auto_parallel = False  # set: `parallel` becomes the cluster's CPUs / num_cpus once connected

    def describe(self) -> dict[str, Any]:
        """What suite.json records about the engine."""
        return {**super().describe(), "address": self.address, "num_cpus": self.num_cpus,
                "own_cluster": self.own_cluster, "cluster": self.cluster,
                "startup_s": None if self.started_s is None else round(self.started_s, 3),
                "first_attempt_s": None if self.first_attempt_s is None else round(self.first_attempt_s, 3),
                "ray": self.version}

    def open(self) -> None:
        """Connect to the cluster at `address`, or start a local one; EnvironmentProblem when neither works."""
        ray = self.ray = import_ray()
        self.version = ray.__version__
        from agent.eval.coordinator import Coordinator

        self._opened_at = time.monotonic()
        env = {name: os.environ[name] for name in self.env_names if os.environ.get(name)}
        runtime_env = {"env_vars": env} if env else None
        self.preexisting = ray.is_initialized()  # the caller's own Ray session: used, left running
        try:
            if self.preexisting:
                pass
            elif self.address:
                check_reachable(self.address)
                ray.init(address=self.address, runtime_env=runtime_env, log_to_driver=False,
                         logging_level="WARNING")
            else:
                self.own_cluster = True
                ray.init(num_cpus=max(1, round(self.parallel * self.num_cpus)), include_dashboard=False,
                         runtime_env=runtime_env, log_to_driver=False, logging_level="WARNING")
        except EnvironmentProblem:
            raise
        except Exception as exc:  # ConnectionError, RuntimeError, ...: the cluster cannot be had
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
            raise EnvironmentProblem(f"cannot start or reach {where}: {type(exc).__name__}: {exc}") from None
        self.started_s = time.monotonic() - self._opened_at
        resources = ray.cluster_resources()
        self.cluster = {"cpus": resources.get("CPU"), "nodes": len([n for n in ray.nodes() if n.get("Alive")])}
        if self.auto_parallel and resources.get("CPU"):
            self.parallel = max(1, int(resources["CPU"] // self.num_cpus))
        self.coordinator = ray.remote(num_cpus=0)(Coordinator).remote()
        from agent.eval.worker import ray_main

        self._task = ray.remote(num_cpus=self.num_cpus, max_retries=1, retry_exceptions=False)(ray_main)

    def close(self) -> None:
        """Cancel whatever still runs, then shut down the local Ray (a cluster given by address stays up)."""
        if self.ray is None:
            return
        for ref in list(self.refs):
            with contextlib.suppress(Exception):  # already finished
                self.ray.cancel(ref, force=True)
        self.refs.clear()
        if self.coordinator is not None:
            with contextlib.suppress(Exception):
                self.ray.kill(self.coordinator)
            self.coordinator = None
        if not self.preexisting:  # the local Ray stops; a cluster given by address only loses this driver
            self.ray.shutdown()
        self.ray = None

    def _start(self, spec: AttemptSpec, on_step: OnStep | None) -> None:
        self.on_step = on_step
        ref = self._task.remote(spec, self.coordinator, on_step is not None, self.confirm_mode)
        self.refs[ref] = spec.index
        self.by_index[spec.index] = ref

    def _collect(self, timeout: float) -> list[Attempt]:
        if not self.refs:
            return []
        ready, _ = self.ray.wait(list(self.refs), num_returns=len(self.refs), timeout=timeout, fetch_local=False)
        self._drain()
        return [self._result(ref) for ref in ready]

    def _drain(self) -> None:
        """Tries begun and step lines, from the coordinator."""
        try:
            begun, lines = self.ray.get(self.coordinator.drain.remote(), timeout=10)
        except Exception:  # the coordinator is unreachable: no news this time
            return
        for index in begun:
            if index in self.by_index and index in self.begun and index not in self._seen:
                self._seen.add(index)
                self.started(index)
                if self.first_attempt_s is None:
                    self.first_attempt_s = time.monotonic() - self._opened_at
        if self.on_step is not None:
            for index, line, usage in lines:
                self.on_step({**line, "attempt": index}, usage)

    def _result(self, ref: Any) -> Attempt:
        index = self.refs.pop(ref)
        self.by_index.pop(index, None)
        spec = self.specs[index]
        try:
            attempt, archive = self.ray.get(ref)
        except Exception as exc:
            return self._lost(spec, exc)
        if archive:
            from agent.eval.worker import unpack

            attempt.recording = unpack(archive, Path(spec.options.out))
        read_verdict(attempt, spec.checks)
        return attempt

    def _lost(self, spec: AttemptSpec, exc: Exception) -> Attempt:
        """The task gave no result: its worker died twice (WorkerCrashedError), or it was cancelled."""
        ray = self.ray
        cancelled = isinstance(exc, ray.exceptions.TaskCancelledError) or self.interrupted is not None
        if cancelled:
            message, status = "abandoned: it did not stop in time, so its Ray task was cancelled", "stopped"
            code = int(ExitCode.STOPPED)
        elif isinstance(exc, ray.exceptions.RayTaskError):  # run_attempt catches its errors: should not happen
            message, status, code = f"the Ray task failed: {type(exc).__name__}: {exc}", "error", int(ExitCode.FAILED)
        else:  # WorkerCrashedError, OutOfMemoryError, a node lost...: after Ray's one retry
            message = f"the Ray worker died on each of 2 tries ({type(exc).__name__})"
            status, code = "error", int(ExitCode.FAILED)
        attempt = Attempt(spec.index, spec.model, spec.options.model.temperature, status=status, exit_code=code,
                          message=message, started=True, task=spec.task, number=spec.number,
                          tries=2 if status == "error" else 1, worker="ray")
        if status == "error":
            attempt.crashed = message
        try:
            attempt.recording = mark_ended(Path(spec.options.out), spec, message, status=status)
        except Exception:  # the recording is only a courtesy here
            attempt.recording = None
        return attempt

    def _stop_one(self, index: int, reason: str) -> None:
        with contextlib.suppress(Exception):  # the coordinator is gone: abandoning will cancel the task
            self.coordinator.stop.remote(index, reason)

    def _abandon(self) -> list[Attempt]:
        for ref in list(self.refs):
            with contextlib.suppress(Exception):  # already finished
                self.ray.cancel(ref, force=True)
        ended = []
        deadline = time.monotonic() + 10
        while self.refs and time.monotonic() < deadline:
            ready, _ = self.ray.wait(list(self.refs), num_returns=len(self.refs), timeout=1, fetch_local=False)
            ended += [self._result(ref) for ref in ready]
        return ended
