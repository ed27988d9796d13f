"""The `qwen3-vl` family: Qwen3-VL's computer_use function over an OpenAI-compatible chat server.

Qwen3-VL points on a 0..1000 grid over the image, whatever its size (the function tells it the
screen is 1000x1000); `vision.geometry.GridSpace` turns each point into a pixel of the image sent,
which the computer tool maps back to the screen. Images are smart_resized with factor 32 (its
vision encoder's 16-pixel patches merged 2x2) and sent at exactly that size. Its chat template shows
tools to the model, so the function is described in the system prompt only when the server refuses
`tools`. The shared reading and rendering are in `qwen_calls`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.models.qwen_calls import Qwen
from vision.geometry import GridSpace, Size

if TYPE_CHECKING:
    from agent.models.base import ModelConfig

FAMILY = "qwen3-vl"
GRID = GridSpace(1000)
KNOWN_MODELS = ("Qwen/Qwen3-VL-8B-Instruct", "qwen3-vl:8b")


def grid_to_image(value: tuple[Any, Any], image: Size, screen: Size | None) -> list[int]:
    """A 0..1000 grid point -> the image pixel that lands on the screen pixel containing it
    (CoordinateError off the grid)."""
    return list(GRID.to_image(value[0], value[1], image, screen))


def create(name: str, config: ModelConfig) -> Qwen:
    """The registry's entry point: `qwen3-vl/NAME`, NAME as the server serves it."""
    return Qwen(name, config, family=FAMILY, factor=32, to_image=grid_to_image,
                display=lambda image: Size(GRID.steps, GRID.steps), template_shows_tools=True)
