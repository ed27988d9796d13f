"""`deskpilot doctor`: checks the environment and says how to fix each problem."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table."""

    name: str
    status: str  # "ok" | "warn" | "FAIL"
    detail: str
    fix: str = ""
    required: bool = True


def run_checks(display: str = "auto", backend: str | None = None, model: str | None = None,
               base_url: str | None = None) -> list[Check]:
    """Run every check against the display deskpilot would use for `display`; with `model` or
    `base_url` (or OPENAI_BASE_URL), also whether that model can be reached (see `model_checks`)."""
    return _environment_checks(display, backend) + model_checks(model, base_url)


def _environment_checks(display: str, backend: str | None = None) -> list[Check]:
    from actions.platform import DesktopError, backend_name, open_desktop

    name = backend_name(backend)
    checks = [
        Check("python", "ok" if sys.version_info >= (3, 10) else "FAIL", sys.version.split()[0],
              "" if sys.version_info >= (3, 10) else "use Python 3.10 or newer"),
        Check("backend", "ok", f"{name} ({_why_backend(backend)})"),
    ]
    if not sys.platform.startswith(("darwin", "win32")):  # X platforms: virtual desktops are Xvfb's
        checks += [
            _which("Xvfb", "xvfb", "virtual desktops (--display virtual)",
                   required=display == "virtual" or (display == "auto" and not os.environ.get("DISPLAY"))),
            _which("openbox", "openbox", "a window manager on virtual desktops", required=False),
        ]
    try:
        desktop = open_desktop(display, backend=backend)
    except (DesktopError, ValueError) as exc:
        fix = "use --display host" if sys.platform.startswith(("darwin", "win32")) else \
            "set DISPLAY, or install Xvfb for --display virtual"
        checks.append(Check("display", "FAIL", str(exc), fix))
        return checks + _optional_checks()
    with desktop:
        checks.append(Check("display", "ok", f"{desktop.display or 'the screen'} ({desktop.kind})"))
        checks += _display_checks(desktop.display, virtual=desktop.kind == "virtual", backend=backend)
    return checks + _optional_checks()


def _why_backend(backend: str | None) -> str:
    if backend:
        return "--backend"
    if os.environ.get("DESKPILOT_BACKEND"):
        return "DESKPILOT_BACKEND"
    if sys.platform.startswith(("darwin", "win32")):
        return f"default on {sys.platform}"
    return "default: an X server is reachable" if _x_default() else "default: no X server reachable"


def _x_default() -> bool:
    from actions.platform import default_backend

    return default_backend() == "x11"


def _display_checks(display: str, virtual: bool, backend: str | None = None) -> list[Check]:
    from actions.platform import backend_checks, backend_name, open_executor
    from actions.result import ToolError
    from vision.capture import CaptureError

    name = backend_name(backend)
    checks = [Check(f.name, "ok" if f.ok else ("FAIL" if f.required else "warn"), f.detail, f.fix, f.required)
              for f in backend_checks(display or None, backend)]
    try:
        executor = open_executor(display or None, backend)
    except ToolError as exc:
        fix = "the X server needs the XTEST extension" if name == "x11" else "see the lines above"
        return checks + [Check("input injection", "FAIL", str(exc), fix)]
    try:
        started = time.monotonic()
        frame = executor.screen.grab()
        grab_ms = (time.monotonic() - started) * 1000
        size, scale = executor.screen.size, executor.screen.scale
        points = executor.screen.logical_size
        checks.append(Check("screen", "ok", f"{size} pixels = {points} points (scale {scale:g}), "
                                            f"capture {grab_ms:.0f} ms"))
        del frame
    except CaptureError as exc:
        return checks + [Check("screen capture", "FAIL", str(exc), "check that the display is reachable (xdpyinfo)")]
    try:
        x, y = executor.backend.position()
        # on a virtual desktop move and read back; on the user's own desktop do not move their pointer
        target = (min(size.width - 1, 17), min(size.height - 1, 23)) if virtual else (x, y)
        executor.backend.move(*target)
        moved = executor.backend.position()
        if virtual:
            executor.backend.move(x, y)
        ok = moved == target
        how = "XTEST" if name == "x11" else name
        checks.append(Check("input injection", "ok" if ok else "FAIL",
                            f"{how} pointer move {'verified' if ok else f'landed at {moved}, not {target}'}",
                            "" if ok else "the display ignores injected input"))
    finally:
        executor.close()
    checks.append(_listener_check(display, backend))
    return checks


def _listener_check(display: str, backend: str | None) -> Check:
    """Start the backend's input listener for a moment: the kill switch and `deskpilot record` need it."""
    from actions.platform import open_listener

    try:
        listener = open_listener(display, lambda event: None, backend=backend)
        listener.start(timeout=3)
        listener.stop()
    except Exception as exc:
        return Check("kill switch", "warn", f"no input listener: {type(exc).__name__}: {exc}",
                     "the hotkey and `deskpilot record` cannot work; stop runs with Ctrl-C", required=False)
    return Check("kill switch", "ok", "input listener works (hotkey Ctrl+Alt+Shift+K, deskpilot record)",
                 required=False)


def _optional_checks() -> list[Check]:
    checks = []
    if importlib.util.find_spec("rapidocr") is None:
        checks.append(Check("OCR models", "warn", "rapidocr is not installed",
                            "pip install rapidocr onnxruntime (needed for text targets)", required=False))
    else:
        models = Path(importlib.util.find_spec("rapidocr").origin).parent / "models"
        found = sorted(p.name for p in models.glob("*.onnx"))
        checks.append(Check("OCR models", "ok" if found else "warn",
                            f"{len(found)} models in the rapidocr wheel" if found else f"none in {models}",
                            "" if found else "reinstall rapidocr", required=False))
    from agent.models.credentials import api_key

    key = api_key()
    checks.append(Check("API key", "ok" if key else "warn",
                        "ANTHROPIC_API_KEY is set" if key else "ANTHROPIC_API_KEY is not set",
                        "" if key else "export ANTHROPIC_API_KEY=... (only needed for model runs)",
                        required=False))
    return checks


def model_checks(model: str | None, base_url: str | None) -> list[Check]:
    """Whether the model server answers (GET /models, within 5 s, no retries) and serves the model."""
    from agent.errors import BadInput, ModelUnavailable
    from agent.models import registry
    from agent.models.base import ModelConfig
    from agent.models.openai_client import list_models

    url = base_url or os.environ.get("OPENAI_BASE_URL")
    family, name = None, None
    if model:
        try:
            family, name = registry.split(model)
        except BadInput as exc:
            return [Check("model", "FAIL", str(exc), "use --model FAMILY/NAME")]
    if family in (None, "anthropic", "scripted") and not base_url:
        return []
    if url is None:
        if family in ("ui-tars", "qwen2.5-vl", "qwen3-vl"):
            return [Check("model server", "FAIL", f"{family} models need a server of your own",
                          "give --base-url URL (vLLM: http://localhost:8000/v1, ollama: http://localhost:11434/v1)")]
        key = bool(os.environ.get("OPENAI_API_KEY"))
        return [Check("OpenAI API key", "ok" if key else "FAIL", "OPENAI_API_KEY is set" if key else
                      "OPENAI_API_KEY is not set", "" if key else "export OPENAI_API_KEY=...")]
    started = time.monotonic()
    try:
        served = list_models(ModelConfig(base_url=url, max_retries=0, timeout_s=5.0))
    except ModelUnavailable as exc:
        return [Check("model server", "FAIL", f"{url} does not answer: {exc}",
                      "start the server (README, Models), or fix --base-url")]
    answered = f"{url} answered in {(time.monotonic() - started) * 1000:.0f} ms"
    if name is None:
        return [Check("model server", "ok", f"{answered}; it serves {', '.join(served) or 'no model'}")]
    if name not in served:
        return [Check("model server", "FAIL", f"{answered} but does not serve {name!r}; it serves "
                      f"{', '.join(served) or 'no model'}", f"use --model {family}/<one of those names>")]
    return [Check("model server", "ok", f"{answered} and serves {name!r}")]


def _which(command: str, package: str, purpose: str, required: bool = True) -> Check:
    path = shutil.which(command)
    return Check(command, "ok" if path else ("FAIL" if required else "warn"),
                 path or f"not found ({purpose})", "" if path else f"apt-get install {package}", required)


def format_table(checks: list[Check]) -> str:
    """The checks as an aligned text table."""
    rows = [("check", "status", "detail", "fix")] + [(c.name, c.status, c.detail, c.fix) for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows
    )


def healthy(checks: list[Check]) -> bool:
    """True when no required check failed."""
    return not any(c.status == "FAIL" and c.required for c in checks)
