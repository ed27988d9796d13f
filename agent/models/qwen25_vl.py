"""The `qwen2.5-vl` family: Qwen2.5-VL's computer_use function over an OpenAI-compatible chat server.

Coordinates are absolute pixels of the smart_resize image (factor 28) the model is sent, so the
image goes out at exactly that size and the computer tool maps its pixels back to the screen.
Qwen2.5-VL's chat template does not show tools to the model, so the system prompt always describes
the function. The shared reading and rendering are in `qwen_calls`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.models.qwen_calls import Qwen, UnreadableCall

if TYPE_CHECKING:
    from agent.models.base import ModelConfig
    from vision.geometry import Size

FAMILY = "qwen2.5-vl"
KNOWN_MODELS = ("Qwen/Qwen2.5-VL-7B-Instruct", "qwen2.5vl:7b")


def pixels(value: tuple[Any, Any], image: Size, screen: Size | None = None) -> list[int]:
    """The model's coordinate is already a pixel of the image: whole numbers only."""
    if not all(isinstance(v, int) for v in value):
        raise UnreadableCall(f"coordinate {list(value)} must be whole pixels of the {image} image")
    return [value[0], value[1]]


def create(name: str, config: ModelConfig) -> Qwen:
    """The registry's entry point: `qwen2.5-vl/NAME`, NAME as the server serves it."""
    return Qwen(name, config, family=FAMILY, factor=28, to_image=pixels, display=lambda image: image,
                template_shows_tools=False)
