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


def backend(text: str) -> str:
    """A `--backend` value: a platform backend's name (x11, portable)."""
    from actions.platform import known_backends

    if text not in known_backends():
        raise argparse.ArgumentTypeError(f"invalid backend {text!r}: use {' or '.join(known_backends())}")
    return text


def screen_size(text: str) -> Any:
    """A `WxH` size (e.g. 1280x800), as `vision.geometry.Size`."""
    from vision.geometry import Size

    try:
        return Size.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def screen_point(text: str) -> tuple[int, int]:
    """A point `X,Y` in screen pixels (e.g. 120,340)."""
    parts = text.replace(" ", "").split(",")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"a point is X,Y in screen pixels, e.g. 120,340; got {text!r}")
    return int(parts[0]), int(parts[1])


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


def server_url(text: str) -> str:
    """A `--base-url`: an http(s) URL with a host, e.g. http://localhost:8000/v1."""
    from urllib.parse import urlsplit

    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"invalid URL {text!r}: use http(s)://HOST[:PORT]/..., e.g. "
                                         "http://localhost:8000/v1")
    return text.strip().rstrip("/")


def model_spec(text: str) -> str:
    """A `FAMILY/NAME` model (or a bare claude-* name), checked against the registry's families."""
    from agent.errors import BadInput
    from agent.models import registry

    try:
        registry.split(text)
    except BadInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def price_pair(text: str) -> tuple[float, float]:
    """`IN,OUT`: US dollars per million input and output tokens, e.g. 0.2,0.6."""
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2 or not all(v >= 0 and v == v and v != float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"invalid price {text!r}: give IN,OUT in USD per million tokens, "
                                         "e.g. 0.2,0.6")
    return values[0], values[1]


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
    parser.add_argument("--wait-display", action="store_true",
                        help="when another deskpilot acts on the display, wait for it (default: exit 4 at once)")
    if size:
        parser.add_argument("--size", type=screen_size, help=size_help)
    return parser


def backend_option() -> argparse.ArgumentParser:
    """`--backend x11|portable`: how deskpilot drives and hears the desktop."""
    parser = _parent()
    parser.add_argument("--backend", type=backend, default=None, metavar="x11|portable",
                        help="platform backend: x11 (XTest, RECORD) or portable (pyautogui, pynput); default "
                             "$DESKPILOT_BACKEND, else x11 where an X server is reachable, else portable")
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


def model_server_options() -> argparse.ArgumentParser:
    """`--base-url`, `--grounder`, `--grounder-base-url` and `--price`: where and how a model runs."""
    parser = _parent()
    parser.add_argument("--base-url", type=server_url, default=None, metavar="URL",
                        help="an OpenAI-compatible server (vLLM, ollama, ...) for the model; default OPENAI_BASE_URL")
    parser.add_argument("--grounder", type=model_spec, default=None, metavar="FAMILY/NAME",
                        help="a ui-tars or qwen model that points at the targets the model names in words")
    parser.add_argument("--grounder-base-url", type=server_url, default=None, metavar="URL",
                        help="the grounder's server (default --base-url)")
    parser.add_argument("--price", type=price_pair, default=None, metavar="IN,OUT",
                        help="USD per million input and output tokens, for a model without a known price")
    return parser


def model_config(args: argparse.Namespace, model: str | None = None, **settings: Any) -> Any:
    """The `agent.models.base.ModelConfig` of the model and model-server options."""
    from agent.models.base import DEFAULT_MODEL, ModelConfig

    return ModelConfig(model=model or DEFAULT_MODEL, base_url=getattr(args, "base_url", None),
                       grounder=getattr(args, "grounder", None),
                       grounder_base_url=getattr(args, "grounder_base_url", None),
                       price=getattr(args, "price", None), **settings)


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
