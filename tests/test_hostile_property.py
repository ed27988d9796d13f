"""Property: whatever task file, recording or `act` arguments a hostile user gives, the command line
ends with a documented exit code and a message; never an exception, a traceback or a hang.

Inputs come from benchmarks/hostile_corpus.py (real task files, a real recording and the action
vocabulary, mutated), driven by hypothesis. Commands run in-process through `agent.ui.cli.main`;
displays are never needed: a valid input reaches a display that does not exist and ends with exit 4
before anything acts.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.errors import ExitCode
from agent.ui.cli import main
from benchmarks import hostile_corpus as corpus

SETTINGS = settings(max_examples=120, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
CODES = {int(code) for code in ExitCode}
MAX_SECONDS = 10.0


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A scratch folder, no API key anywhere, no display at NO_DISPLAY."""
    assert not Path(f"/tmp/.X11-unix/X{corpus.NO_DISPLAY[1:]}").exists()
    folder = tmp_path_factory.mktemp("hostile")
    saved = dict(os.environ)
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
        os.environ.pop(name, None)
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    os.environ["DESKPILOT_LOCK_DIR"] = str(folder / "locks")
    yield folder
    os.environ.clear()
    os.environ.update(saved)


def call(argv: list[str]) -> tuple[int, str]:
    """Run the command line in-process: (exit code, everything it printed)."""
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)  # an exception escaping here fails the property
    assert time.monotonic() - started < MAX_SECONDS, f"took too long: {argv[:3]}"
    return code, out.getvalue() + err.getvalue()


def allowed(code: int, output: str, argv: list[str]) -> None:
    assert code in CODES, (code, argv[:3], output[-2000:])
    assert "Traceback" not in output, output[-3000:]
    if code != 0:
        assert output.strip(), f"exit {code} without a message: {argv[:3]}"


@SETTINGS
@given(rng=st.randoms(use_true_random=False))
def test_any_task_file_ends_with_a_documented_exit_code(place: Path, rng: random.Random) -> None:
    task = Path(tempfile.mkdtemp(dir=place)) / "task.yaml"
    task.write_bytes(corpus.task_file(rng))
    argv = ["run", str(task), "--display", corpus.NO_DISPLAY, "--out", str(place / "recs")]
    code, output = call(argv)
    allowed(code, output, argv)
    assert code in (ExitCode.BAD_INPUT, ExitCode.ENVIRONMENT), output  # nothing can run without a display
    task.unlink()


@SETTINGS
@given(rng=st.randoms(use_true_random=False))
def test_any_act_call_ends_with_a_documented_exit_code(place: Path, rng: random.Random) -> None:
    argv = ["act", *corpus.act_args(rng), "--display", corpus.NO_DISPLAY, "--out", str(place / "recs")]
    code, output = call(argv)
    allowed(code, output, argv)
    assert code in (ExitCode.BAD_INPUT, ExitCode.ENVIRONMENT), output


@pytest.fixture(scope="module")
def base(place: Path) -> Path:
    return corpus.base_recording(place / "base")


@SETTINGS
@given(rng=st.randoms(use_true_random=False))
def test_any_recording_ends_with_a_documented_exit_code(place: Path, base: Path, rng: random.Random) -> None:
    copy = corpus.mutate_recording(rng, base, Path(tempfile.mkdtemp(dir=place)) / "rec")
    argv = corpus.recording_args(rng, copy, place / "replays")
    code, output = call(argv)
    allowed(code, output, argv)
    if argv[0] == "report":
        assert code in (ExitCode.OK, ExitCode.BAD_INPUT), output
        assert "root:x:0:0" not in (copy / "report.html").read_text(errors="replace") if code == 0 else True
    else:
        assert code in (ExitCode.BAD_INPUT, ExitCode.ENVIRONMENT), output
    shutil.rmtree(copy.parent, ignore_errors=True)
