"""The bash tool on a real bash: persistence, errors, timeouts, secrets, truncation, and a debug session."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from agent.tools.bash import BashTool, is_secret_env_name, scrub_env
from agent.tools.editor import EditorTool


@pytest.fixture
def bash(tmp_path: Path) -> Iterator[BashTool]:
    """A bash tool in tmp_path with a short timeout, closed after the test."""
    tool = BashTool(cwd=tmp_path, timeout_s=5)
    yield tool
    tool.close()


def gone(pid: int, timeout: float = 3.0) -> bool:
    """True once process `pid` no longer runs (a zombie counts as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def test_to_params() -> None:
    from agent.models.anthropic import TOOL_VERSIONS
    from agent.models.anthropic_messages import render_tool

    assert render_tool(BashTool().spec, TOOL_VERSIONS["20251124"]) == {"type": "bash_20250124", "name": "bash"}


def test_session_starts_in_cwd_and_keeps_state(bash: BashTool, tmp_path: Path) -> None:
    assert bash.run(command="pwd").output == str(tmp_path)
    assert bash.run(command="mkdir sub && cd sub && export GREETING=hello && NUM=7").ok
    result = bash.run(command='pwd; echo "$GREETING $NUM"')
    assert result.output == f"{tmp_path / 'sub'}\nhello 7"
    assert bash.run(command="f() { echo from-function; }").ok
    assert bash.run(command="f").output == "from-function"


def test_stderr_is_captured(bash: BashTool) -> None:
    result = bash.run(command="echo out; echo oops >&2")
    assert result.ok
    assert result.output == "out\noops"


def test_nonzero_exit_is_an_error_with_output_and_code(bash: BashTool) -> None:
    result = bash.run(command="echo partial; echo bad >&2; (exit 3)")
    assert not result.ok
    assert "partial" in result.error and "bad" in result.error
    assert "[exit code 3]" in result.error
    assert bash.run(command="echo still here").output == "still here"


def test_output_without_trailing_newline_and_invalid_utf8(bash: BashTool) -> None:
    assert bash.run(command="printf abc").output == "abc"
    assert bash.run(command="echo; echo; printf x").output == "\n\nx"
    result = bash.run(command=r"printf 'ok\377\376done'")
    assert result.output == "ok\ufffd\ufffddone"


def test_quotes_heredocs_and_stdin(bash: BashTool) -> None:
    assert bash.run(command="echo 'single \"double\"' \\\\ back").output == 'single "double" \\ back'
    assert bash.run(command="cat <<'EOF'\nline $HOME\nEOF").output == "line $HOME"
    assert bash.run(command="cat").output == ""  # stdin is /dev/null: nothing to wait for


def test_syntax_error_is_reported_and_session_survives(bash: BashTool) -> None:
    result = bash.run(command='echo "unterminated')
    assert not result.ok and "exit code 2" in result.error
    assert bash.run(command="echo fine").output == "fine"


def test_exit_ends_the_session_and_the_next_command_starts_a_new_one(bash: BashTool) -> None:
    bash.run(command="export MARK=1")
    result = bash.run(command="echo bye; exit 4")
    assert not result.ok and "bye" in result.error and "exited (status 4)" in result.error
    assert bash.run(command="echo ${MARK:-new}").output == "new"


def test_timeout_kills_the_process_group_and_restarts(tmp_path: Path) -> None:
    with BashTool(cwd=tmp_path, timeout_s=1) as bash:
        old_shell = int(bash.run(command="echo $$").output)
        started = time.monotonic()
        result = bash.run(command="echo begun; sh -c 'echo $$ > sleeper.pid; exec sleep 100'")
        assert time.monotonic() - started < 4
        assert not result.ok
        assert "timed out after 1 s; the session was restarted" in result.error
        assert "begun" in result.error
        sleeper = int((tmp_path / "sleeper.pid").read_text())
        assert gone(sleeper) and gone(old_shell)
        assert bash.run(command="echo alive; pwd").output == f"alive\n{tmp_path}"


def test_close_kills_background_jobs(tmp_path: Path) -> None:
    bash = BashTool(cwd=tmp_path)
    pid = int(bash.run(command="sleep 100 >/dev/null & echo $!").output)
    assert not gone(pid, timeout=0.2)
    bash.close()
    assert gone(pid)
    assert bash.pid is None


def test_secrets_are_not_inherited(bash: BashTool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-test")
    monkeypatch.setenv("DESKPILOT_HARMLESS", "visible")
    result = bash.run(command="echo ${ANTHROPIC_API_KEY:-unset} ${GITHUB_TOKEN:-unset} $DESKPILOT_HARMLESS")
    assert result.output == "unset unset visible"
    assert "sk-ant-test" not in bash.run(command="env").output


def test_env_extras_are_added(tmp_path: Path) -> None:
    with BashTool(cwd=tmp_path, env={"EXTRA_SETTING": "on"}) as bash:
        assert bash.run(command="echo $EXTRA_SETTING").output == "on"


def test_scrub_env_rule() -> None:
    environ = {
        "ANTHROPIC_API_KEY": "x", "anthropic_base_url": "x", "OPENAI_ORG": "x", "AWS_REGION": "x",
        "MY_SERVICE_API_KEY": "x", "GITHUB_TOKEN": "x", "CLIENT_SECRET_FILE": "x", "DB_PASSWORD": "x",
        "GOOGLE_APPLICATION_CREDENTIALS": "x",
        "PATH": "/bin", "HOME": "/root", "LANG": "C.UTF-8", "TOKENIZERS_PARALLELISM": "false",
    }
    assert scrub_env(environ) == {
        "PATH": "/bin", "HOME": "/root", "LANG": "C.UTF-8", "TOKENIZERS_PARALLELISM": "false",
    }
    assert is_secret_env_name("hf_token") and not is_secret_env_name("DISPLAY")


def test_huge_output_is_truncated_with_a_marker(tmp_path: Path) -> None:
    with BashTool(cwd=tmp_path, max_output=1000) as bash:
        output = bash.run(command="seq 1 100000").output
        full = "\n".join(str(n) for n in range(1, 100001))
        assert output.startswith("1\n2\n3\n") and output.endswith("99999\n100000")
        assert f"[... {len(full) - 1000} characters cut ...]" in output
        assert len(output) < 1100
        # more than the read buffer keeps: its middle is dropped while reading, the count stays exact
        output = bash.run(command="yes | head -c 3000000; echo; echo end")
        assert f"[... {3000000 + 4 - 1000} characters cut ...]" in output.output
        assert output.output.startswith("y\ny\n") and output.output.endswith("y\n\nend")


def test_restart(bash: BashTool) -> None:
    assert bash.run(restart=True).system
    bash.run(command="export KEEP=1")
    old = bash.pid
    result = bash.run(restart=True)
    assert result.ok and "restarted" in result.system
    assert bash.pid != old and gone(old)
    assert bash.run(command="echo ${KEEP:-gone}").output == "gone"


@pytest.mark.parametrize(
    ("tool_input", "named"),
    [
        ({}, "command"),
        ({"command": ""}, "command"),
        ({"command": "   "}, "command"),
        ({"command": 5}, "command"),
        ({"command": "ls", "bogus": 1, "other": 2}, "bogus, other"),
        ({"cmd": "ls"}, "cmd"),
    ],
)
def test_bad_input_is_an_error_result(bash: BashTool, tool_input: dict, named: str) -> None:
    result = bash.run(**tool_input)
    assert not result.ok and named in result.error
    assert bash.pid is None  # nothing was started


def test_debug_a_repository(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (project / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    editor = EditorTool(root=project)
    run_tests = f"{sys.executable} -m pytest -q -p no:cacheprovider test_calc.py"
    with BashTool(cwd=tmp_path, timeout_s=30) as bash:
        assert bash.run(command="cd proj").ok
        failing = bash.run(command=run_tests)
        assert not failing.ok and "1 failed" in failing.error and "exit code 1" in failing.error
        assert re.search(r"assert -1 == 5", failing.error)
        fixed = editor.run(command="str_replace", path=str(project / "calc.py"), old_str="a - b", new_str="a + b")
        assert fixed.ok and "return a + b" in fixed.output
        passing = bash.run(command=run_tests)
        assert passing.ok and "1 passed" in passing.output
