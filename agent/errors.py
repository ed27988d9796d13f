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
