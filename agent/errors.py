"""Exit codes (DESIGN.md) and the errors that carry them to the command line."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What every deskpilot command returns."""

    OK = 0  # succeeded: checks passed, the model finished, the replay reached its end
    FAILED = 1  # a check failed, the agent gave up, the replay diverged
    BAD_INPUT = 2  # usage error, invalid task file or recording; nothing was executed
    STOPPED = 3  # a budget ran out, the user stopped it, the kill switch fired
    ENVIRONMENT = 4  # no display, model API unreachable, a missing dependency


class DeskpilotError(Exception):
    """An error that ends a command with `exit_code` and a message for the user."""

    exit_code: ExitCode = ExitCode.FAILED


class BadInput(DeskpilotError):
    """The user's input is invalid; nothing was executed."""

    exit_code = ExitCode.BAD_INPUT


class EnvironmentProblem(DeskpilotError):
    """Something the machine must provide is missing or unreachable."""

    exit_code = ExitCode.ENVIRONMENT


class ModelUnavailable(EnvironmentProblem):
    """The model API could not be reached, refused the request, or kept failing after the retries."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) arrived: handled exactly like Ctrl-C (the run ends "stopped", exit 3)."""


# Run-ending exceptions: raised anywhere in a run, caught only by the loop (and the task and replay
# runners, which are loops of their own). Each carries the final message and the run's status.


class RunEnded(Exception):
    """Ends a run; only a run's loop catches it. Carries the final message."""

    status, exit_code = "failed", ExitCode.FAILED


class Finished(RunEnded):
    """The model replied without a tool call."""

    status, exit_code = "succeeded", ExitCode.OK


class GaveUp(RunEnded):
    """The model said the task cannot be done."""


class BudgetExceeded(RunEnded):
    """A step, time, cost or token budget ran out."""

    status, exit_code = "stopped", ExitCode.STOPPED


class Stopped(RunEnded):
    """The user interrupted the run (Ctrl-C, stop button, kill switch)."""

    status, exit_code = "stopped", ExitCode.STOPPED


class RecordingFailed(RunEnded):
    """The recording could not be written (disk full, folder gone): the run stops before acting again."""

    status, exit_code = "error", ExitCode.ENVIRONMENT


class Stuck(RunEnded):
    """The same action kept repeating on an unchanged screen."""
