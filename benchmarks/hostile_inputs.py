"""Hostile inputs through the command line: how each one ends (issue 12's `hostile_inputs`).

A seeded corpus (benchmarks/hostile_corpus.py) of bad task files (`run FILE`), bad recordings
(`report`, `report --embed`, `replay`) and bad `act` calls goes through `agent.ui.cli.main` in a
worker process, one input at a time, each with a 10 s limit: a worker that does not answer in
time is killed (a hang) and replaced. No display is needed: valid inputs meet an X display that
does not exist and end with exit 4 before acting. A sample of each kind also runs as a real
`python -m agent.ui.cli` process, so the console entry (sealing of secrets, signal handlers) is
covered too. Outcomes: exit 2 with a message / another exit code with a message / an exit code
without any message / a traceback (an exception out of `main`, or one printed) / a hang.

    python -m benchmarks.hostile_inputs [--tasks 520] [--recordings 210] [--acts 210] [--seed 12]

Prints one JSON object. Target: 0 tracebacks, 0 hangs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from benchmarks import hostile_corpus as corpus

LIMIT_S = 10.0
SAMPLE = 20  # inputs of each kind also run as a real process


def worker() -> None:
    """Read argv lists (JSON lines) on stdin; answer {code, output, traceback} lines on stdout."""
    from agent.ui.cli import main

    real_stdout = sys.stdout
    for line in sys.stdin:
        argv = json.loads(line)
        out = io.StringIO()
        crashed = None
        try:
            with redirect_stdout(out), redirect_stderr(out):
                code = main(argv)
        except BaseException:  # noqa: BLE001 - that is what is being counted
            code, crashed = None, traceback.format_exc()
        text = out.getvalue()
        real_stdout.write(json.dumps({"code": code, "output": text[-2000:], "traceback": crashed}) + "\n")
        real_stdout.flush()


class Worker:
    """The worker process, restarted after a hang."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: subprocess.Popen | None = None

    def run(self, argv: list[str]) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.hostile_inputs", "--worker"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=self.env,
                                         cwd=corpus.ROOT, start_new_session=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        started = time.monotonic()
        self.proc.stdin.write(json.dumps(argv) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], LIMIT_S + 5)  # + the worker's first imports
        if not ready:
            self.close()
            return {"code": None, "output": "", "traceback": None, "hang": True}
        line = self.proc.stdout.readline()
        seconds = time.monotonic() - started
        if not line:  # the worker died (e.g. a C-level crash)
            self.close()
            return {"code": None, "output": "", "traceback": "the worker process died", "seconds": seconds}
        answer = json.loads(line)
        answer["hang"] = seconds > LIMIT_S
        answer["seconds"] = seconds
        return answer

    def close(self) -> None:
        if self.proc is not None:
            with_kill = self.proc.poll() is None
            if with_kill:
                os.killpg(self.proc.pid, 9)
            self.proc.wait()
            self.proc = None


def real_process(argv: list[str], env: dict[str, str]) -> dict:
    """The same input through `python -m agent.ui.cli`, as a user runs it."""
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "agent.ui.cli", *argv], capture_output=True, text=True,
                              timeout=LIMIT_S + 5, env=env, cwd=corpus.ROOT, errors="replace")
    except subprocess.TimeoutExpired:
        return {"code": None, "output": "", "traceback": None, "hang": True}
    output = done.stdout + done.stderr
    return {"code": done.returncode, "output": output[-2000:], "hang": time.monotonic() - started > LIMIT_S,
            "traceback": output if "Traceback (most recent call last)" in output else None}


def outcome(answer: dict) -> str:
    """Which of the benchmark's outcomes an answer is."""
    if answer.get("hang"):
        return "hang over 10 s"
    if answer.get("traceback") or "Traceback (most recent call last)" in answer.get("output", ""):
        return "traceback"
    if answer["code"] != 0 and not answer["output"].strip():
        return "exit without a message"
    return "exit 2 with a message" if answer["code"] == 2 else "other exit with a message"


def build_corpus(args: argparse.Namespace, folder: Path) -> list[tuple[str, list[str]]]:
    """(kind, argv) of every input; files are written into `folder`."""
    rng = random.Random(args.seed)
    inputs: list[tuple[str, list[str]]] = []
    for n in range(args.tasks):
        task = folder / "tasks" / f"{n:04d}.yaml"
        task.parent.mkdir(parents=True, exist_ok=True)
        task.write_bytes(corpus.task_file(rng))
        inputs.append(("task file", ["run", str(task), "--display", corpus.NO_DISPLAY, "--out", str(folder / "out")]))
    base = corpus.base_recording(folder / "base")
    for n in range(args.recordings):
        copy = corpus.mutate_recording(rng, base, folder / "recordings" / f"{n:04d}")
        inputs.append(("recording", corpus.recording_args(rng, copy, folder / "out")))
    for _ in range(args.acts):
        inputs.append(("act call", ["act", *corpus.act_args(rng), "--display", corpus.NO_DISPLAY,
                                    "--out", str(folder / "out")]))
    return inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=520)
    parser.add_argument("--recordings", type=int, default=210)
    parser.add_argument("--acts", type=int, default=210)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    if Path(f"/tmp/.X11-unix/X{corpus.NO_DISPLAY[1:]}").exists():
        sys.exit(f"display {corpus.NO_DISPLAY} exists on this machine; the benchmark needs it absent")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        folder = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")}
        env.update(PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring", DESKPILOT_LOCK_DIR=str(folder / "locks"),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(corpus.ROOT), os.environ.get("PYTHONPATH")])))
        inputs = build_corpus(args, folder)
        generated = time.monotonic() - started
        work = Worker(env)
        by_kind: dict[str, Counter] = {}
        sample: Counter = Counter()
        slowest: list[tuple[float, str]] = []
        failures: list[dict] = []
        taken: Counter = Counter()
        try:
            for kind, argv in inputs:
                answer = work.run(argv)
                result = outcome(answer)
                by_kind.setdefault(kind, Counter())[result] += 1
                slowest.append((answer.get("seconds") or LIMIT_S, f"{kind}: {' '.join(argv[:2])[:120]}"))
                if result in ("traceback", "hang over 10 s", "exit without a message") and len(failures) < 10:
                    failures.append({"kind": kind, "argv": [a[:200] for a in argv], "outcome": result,
                                     "detail": (answer.get("traceback") or answer.get("output") or "")[-1500:]})
                if taken[kind] < SAMPLE:
                    taken[kind] += 1
                    real = outcome(real_process(argv, env))
                    sample[real] += 1
                    if real in ("traceback", "hang over 10 s") and len(failures) < 10:
                        failures.append({"kind": kind, "argv": [a[:200] for a in argv], "outcome": f"process: {real}"})
        finally:
            work.close()
    totals = sum(by_kind.values(), Counter())
    slowest.sort(reverse=True)
    print(json.dumps({
        "benchmark": "hostile_inputs", "seed": args.seed,
        "inputs": {kind: sum(counts.values()) for kind, counts in by_kind.items()},
        "outcomes": dict(totals), "by_kind": {kind: dict(counts) for kind, counts in by_kind.items()},
        "real_process_sample": dict(sample), "tracebacks": totals["traceback"] + sample["traceback"],
        "hangs": totals["hang over 10 s"] + sample["hang over 10 s"],
        "slowest_s": [[round(s, 2), what] for s, what in slowest[:5]],
        "failures": failures, "corpus_s": round(generated, 1), "total_s": round(time.monotonic() - started, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }, indent=1))


if __name__ == "__main__":
    main()
