"""Options several commands share (`deskpilot ...` and `deskpilot app`), checked where they are parsed.

Each group is an argparse parent parser (`parents=[...]`), and each value goes through a `type=`
converter, so a bad value is a usage error (exit 2, with argparse's usage line) before anything
runs, and no command repeats the check.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

DISPLAY_SPECS = ("auto", "host", "virtual")
_X_DISPLAY_RE = re.compile(r"^:\d+(\.\d+)?$")
DISPLAY_HELP = "host, virtual, an X display like :1, or auto (default: host if any, else virtual)"


# ------------------------------------------------------------------------------ converters (type=)
def display_spec(text: str) -> str:
    """A `--display` value: auto, host, virtual or an X display like :1."""
    if text not in DISPLAY_SPECS and not is_x_display(text):
        raise argparse.ArgumentTypeError(f"invalid display {text!r}: use auto, host, virtual or an X display like :1")
    return text


def is_x_display(text: str) -> bool:
    """True for an X display name like :1 or :1.0."""
    return bool(_X_DISPLAY_RE.match(text))


def screen_size(text: str) -> Any:
    """A `WxH` size (e.g. 1280x800), as `vision.geometry.Size`."""
    from vision.geometry import Size

    try:
        return Size.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    """A whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def positive_float(text: str) -> float:
    """A number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value:g}")
    return value


def port_number(text: str) -> int:
    """A TCP port, 0..65535 (0: any free port)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535, got {value}")
    return value


# ------------------------------------------------------------------------------ parent parsers
def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def display_options(*, size: bool = True, display_help: str = DISPLAY_HELP,
                    size_help: str = "virtual display size WxH (default 1280x800)") -> argparse.ArgumentParser:
    """`--display SPEC` and (with `size`) `--size WxH`."""
    parser = _parent()
    parser.add_argument("--display", type=display_spec, default="auto", help=display_help)
    if size:
        parser.add_argument("--size", type=screen_size, help=size_help)
    return parser


def out_option(what: str = "the run's recording") -> argparse.ArgumentParser:
    """`--out FOLDER` for recordings (default recordings/)."""
    parser = _parent()
    parser.add_argument("--out", default="recordings", help=f"folder for {what} (default recordings/)")
    return parser


def budget_options(*, tokens: bool = True) -> argparse.ArgumentParser:
    """A run's budgets: `--max-steps`, `--max-seconds`, `--max-cost` and (with `tokens`) `--max-tokens`."""
    parser = _parent()
    parser.add_argument("--max-steps", type=positive_int, default=50, help="stop after this many actions (default 50)")
    parser.add_argument("--max-seconds", type=positive_float, default=600.0, help="stop after this long (default 600)")
    parser.add_argument("--max-cost", type=positive_float, default=5.0,
                        help="stop once this many USD are spent (default 5)")
    if tokens:
        parser.add_argument("--max-tokens", type=positive_int, default=None, help="stop once this many tokens are used")
    return parser


def model_options(*, repeat: bool = False, help: str | None = None) -> argparse.ArgumentParser:
    """`--model NAME` (with `repeat`, once per model, collected in a list)."""
    from agent.models.base import DEFAULT_MODEL

    parser = _parent()
    parser.add_argument("--model", action="append" if repeat else "store", default=None,
                        help=help or f"the model (default {DEFAULT_MODEL})")
    return parser


def confirm_option() -> argparse.ArgumentParser:
    """`--confirm ask|allow|deny`: how the safety policy's risky actions are decided."""
    from agent.safety.confirm import MODES

    parser = _parent()
    parser.add_argument("--confirm", choices=MODES, default=None,
                        help="how risky actions are decided (default ask on a terminal, deny without one)")
    return parser


def limits(args: argparse.Namespace) -> Any:
    """The `agent.budget.Limits` the budget options ask for."""
    from agent.budget import Limits

    return Limits(args.max_steps, args.max_seconds, args.max_cost, getattr(args, "max_tokens", None))
