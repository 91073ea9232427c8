"""Pure-torch model: config, layers, attention, KV cache."""

from .config import ConfigError, ModelConfig, RopeScaling
from .transformer import Transformer

__all__ = ["ConfigError", "ModelConfig", "RopeScaling", "Transformer"]
