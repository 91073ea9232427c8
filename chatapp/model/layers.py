"""Building blocks: norms, rotary position embedding, MLPs."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig, RopeScaling
from .linear import Linear


class RMSNorm(nn.Module):
    """RMSNorm; with unit_offset (Gemma) the scale is 1 + weight, the weight initialised to 0."""

    def __init__(self, dim: int, eps: float, unit_offset: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.unit_offset = unit_offset
        self.weight = nn.Parameter(torch.zeros(dim) if unit_offset else torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in float32 whatever the compute dtype, as the reference does.
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.unit_offset:  # Gemma scales in float32, then casts: (x * (1 + w)).to(dtype)
            return (x32 * (1.0 + self.weight.float())).to(x.dtype)
        return self.weight * x32.to(x.dtype)


def make_norm(config: ModelConfig, dim: int | None = None) -> nn.Module:
    """The config's norm over `dim` features (default: the model width)."""
    if config.norm == "rmsnorm":
        return RMSNorm(dim or config.dim, config.norm_eps, unit_offset=config.norm_unit_offset)
    return nn.LayerNorm(config.dim, eps=config.norm_eps)


def rope_inv_freq(head_dim: int, theta: float, scaling: RopeScaling | None) -> torch.Tensor:
    """Inverse frequencies, one per rotated pair: (head_dim // 2,) float32."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    if scaling is None:
        return inv_freq
    if scaling.kind == "linear":
        return inv_freq / scaling.factor
    # llama3: long wavelengths are slowed by `factor`, short ones kept, the band between blended.
    low_freq_wavelen = scaling.original_max_position_embeddings / scaling.low_freq_factor
    high_freq_wavelen = scaling.original_max_position_embeddings / scaling.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / scaling.factor, inv_freq)
    smooth = (scaling.original_max_position_embeddings / wavelen - scaling.low_freq_factor) / (
        scaling.high_freq_factor - scaling.low_freq_factor
    )
    blended = (1 - smooth) * scaled / scaling.factor + smooth * scaled
    is_medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
    return torch.where(is_medium, blended, scaled)


def rope_cos_sin(positions: torch.Tensor, inv_freq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin for `positions` (T,): each (T, head_dim) float32, halves repeated."""
    freqs = positions.float()[:, None] * inv_freq[None, :]  # (T, head_dim/2)
    emb = torch.cat((freqs, freqs), dim=-1)  # (T, head_dim)
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (B, H, T, D) by cos/sin (T, R), "rotate half" layout (the Hugging Face one).

    R < D (partial rotary, e.g. Phi-4-mini): the first R dimensions are rotated, the rest pass.
    """
    rotary = cos.shape[-1]
    if rotary < x.shape[-1]:
        return torch.cat((apply_rope(x[..., :rotary], cos, sin), x[..., rotary:]), dim=-1)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    rotated = torch.cat((-x2, x1), dim=-1)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


class SwiGLU(nn.Module):
    """Gated MLP: down(act(gate(x)) * up(x)); act is SiLU, or GELU-tanh for "geglu" (Gemma)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        bias = config.mlp_bias
        self.gelu_gate = config.mlp == "geglu"
        self.gate_proj = Linear(config.dim, config.intermediate_size, bias=bias)
        self.up_proj = Linear(config.dim, config.intermediate_size, bias=bias)
        self.down_proj = Linear(config.intermediate_size, config.dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.gate_proj(x)
        gate = F.gelu(gate, approximate="tanh") if self.gelu_gate else F.silu(gate)
        return self.down_proj(gate * self.up_proj(x))


class GeluMLP(nn.Module):
    """GPT-2's MLP: up, GELU (tanh approximation), down."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        bias = config.mlp_bias
        self.up_proj = Linear(config.dim, config.intermediate_size, bias=bias)
        self.down_proj = Linear(config.intermediate_size, config.dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.up_proj(x), approximate="tanh"))


def make_mlp(config: ModelConfig) -> nn.Module:
    return GeluMLP(config) if config.mlp == "gelu" else SwiGLU(config)
