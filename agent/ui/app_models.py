"""The app's model picker without Tk: the families, their known models, and the server check before a run.

The families are DESIGN.md's "Models" (`registry.FAMILIES` without the test-only `scripted`); a
family's names are its backend's `KNOWN_MODELS` (any other name may be typed). A base URL names an
OpenAI-compatible server (vLLM, ollama, LM Studio, a proxy); the `anthropic` family ignores it.
`server_problem` is doctor's model check (GET /models within 5 s, no retries, the model served).
"""

from __future__ import annotations

FAMILY_ORDER = ("anthropic", "openai", "chat", "ui-tars", "qwen2.5-vl", "qwen3-vl")
SERVER_FAMILIES = ("ui-tars", "qwen2.5-vl", "qwen3-vl")  # no default server: a base URL is needed


def families() -> list[str]:
    """The families the picker offers, in a stable order (registered plug-ins last)."""
    from agent.models import registry

    known = [f for f in registry.families() if f != "scripted"]
    return [f for f in FAMILY_ORDER if f in known] + sorted(f for f in known if f not in FAMILY_ORDER)


def models_of(family: str) -> list[str]:
    """The model names worth offering for `family` (its backend's KNOWN_MODELS; the default model first)."""
    import importlib

    from agent.models import registry
    from agent.models.base import DEFAULT_MODEL

    module = registry.FAMILIES.get(family)
    names = list(getattr(importlib.import_module(module), "KNOWN_MODELS", ())) if module else []
    if family == "anthropic" and DEFAULT_MODEL in names:
        names.remove(DEFAULT_MODEL)
        names.insert(0, DEFAULT_MODEL)
    return names


def split_choice(spec: str) -> tuple[str, str]:
    """A --model value as (family, name); an unknown or empty one as ("anthropic", spec)."""
    spec = (spec or "").strip()
    if "/" in spec:
        family, name = spec.split("/", 1)
        if family in families():
            return family, name
    return "anthropic", spec


def compose(family: str, name: str) -> str:
    """The --model value of a family and a name (Claude's names bare)."""
    name = name.strip()
    if family == "anthropic" and (name.startswith("claude-") or not name):
        return name
    return f"{family}/{name}"


def uses_base_url(family: str) -> bool:
    """True when the family talks to an OpenAI-compatible server (the base URL field applies)."""
    return family != "anthropic"


def server_problem(model: str, base_url: str | None) -> str | None:
    """What stops `model` from being used at `base_url` (doctor's model check), with what to do; None when fine."""
    from agent.ui.doctor import model_checks

    for check in model_checks(model or None, base_url or None):
        if check.status == "FAIL":
            fix = check.fix.replace("--base-url", "the base URL").replace("--model ", "the model ")
            return f"{check.name}: {check.detail}" + (f". What to do: {fix}" if fix else "")
    return None


def check_text(model: str, base_url: str | None) -> str:
    """The model check's result in one line (ok or the problem)."""
    from agent.ui.doctor import model_checks

    checks = model_checks(model or None, base_url or None)
    if not checks:
        return f"{model or 'the default model'}: no server to check (the Anthropic API; its key is checked at start)"
    failed = server_problem(model, base_url)
    return failed or "; ".join(f"{c.name}: {c.detail}" for c in checks)
