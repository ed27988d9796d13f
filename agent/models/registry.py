"""Model backends by family: `--model FAMILY/NAME` -> a Model, each backend imported only when chosen.

A backend is one module with `create(name, config) -> Model`. `register` adds a family at run
time (a plug-in, a test) without touching this table.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from agent.errors import BadInput
from agent.models.base import ModelConfig

if TYPE_CHECKING:
    from agent.models.base import Model
    from vision.geometry import Size

Factory = Callable[[str, ModelConfig], "Model"]

# family -> the module that implements it (imported on first use)
FAMILIES: dict[str, str] = {
    "anthropic": "agent.models.anthropic",
    "scripted": "agent.models.scripted",
    "chat": "agent.models.chat",
    "ui-tars": "agent.models.ui_tars",
    "qwen2.5-vl": "agent.models.qwen25_vl",
    "qwen3-vl": "agent.models.qwen3_vl",
    "openai": "agent.models.openai_responses",
}
_registered: dict[str, Factory] = {}


def register(family: str, factory: Factory) -> None:
    """Make `--model FAMILY/NAME` create models with `factory(name, config)`."""
    _registered[family] = factory


def unregister(family: str) -> None:
    """Forget a family added with `register`."""
    _registered.pop(family, None)


def families() -> list[str]:
    """Every family `--model` accepts."""
    return sorted({*FAMILIES, *_registered})


def split(spec: str) -> tuple[str, str]:
    """`FAMILY/NAME` -> (family, name); a bare `claude-*` is ("anthropic", name). BadInput otherwise."""
    spec = spec.strip()
    if "/" not in spec:
        if spec.startswith("claude-"):
            return "anthropic", spec
        raise BadInput(f"model {spec!r}: use FAMILY/NAME with a family of {', '.join(families())} "
                       "(a bare claude-* name means anthropic/claude-*)")
    family, name = spec.split("/", 1)
    if family not in FAMILIES and family not in _registered:
        raise BadInput(f"model {spec!r}: unknown family {family!r}; the families are {', '.join(families())}")
    if not name:
        raise BadInput(f"model {spec!r}: the name after {family}/ is empty")
    return family, name


def create(config: ModelConfig) -> Model:
    """The model `config.model` names (paired with `config.grounder` when one is named). BadInput for an
    unknown family, a name its backend refuses or a pair that cannot work; no network and no
    credentials are needed yet (see Model.preflight)."""
    if config.grounder:
        from agent.models.grounding import GroundedModel

        planner = create(replace(config, grounder=None))
        grounder = create(replace(config, model=config.grounder, grounder=None,
                                  base_url=config.grounder_base_url or config.base_url))
        return GroundedModel(planner, grounder)  # type: ignore[arg-type]
    family, name = split(config.model)
    factory = _registered.get(family)
    if factory is None:
        factory = importlib.import_module(FAMILIES[family]).create
    return factory(name, config)


def known_models() -> list[str]:
    """Model names worth offering in a picker: each built-in family's `KNOWN_MODELS`, as FAMILY/NAME
    (Anthropic's as bare names)."""
    names = []
    for family, module in FAMILIES.items():
        for name in getattr(importlib.import_module(module), "KNOWN_MODELS", ()):
            names.append(name if family == "anthropic" else f"{family}/{name}")
    return names


def image_size(spec: str, screen: Size) -> Size:
    """The image a model named `spec` receives of `screen` (for `screenshot --model-size`, MCP)."""
    return create(replace(ModelConfig(), model=spec)).image_size(screen)
