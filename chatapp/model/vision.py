"""Vision encoder (ViT) and LLaVA-style image-text model, pure torch.

- VisionTower: patch embedding (a strided conv), learned position embeddings, pre-norm blocks.
  Two families through VisionConfig.family:
  - "clip": a class token, a LayerNorm before the blocks (`pre_layrnorm`), quick_gelu MLPs,
    no bias on the patch convolution.
  - "siglip": no class token, no pre-norm, gelu (tanh approximation), a bias on the patch conv.
  - "idefics3": SigLIP with NaViT-style positions (Idefics3 / SmolVLM): a patch grid of any size
    takes its position ids by bucketing fractional coordinates into the trained grid.
  Parameter names follow Hugging Face's CLIPVisionTransformer / SiglipVisionTransformer (without
  the `vision_model.` prefix), so a loader maps names by stripping a prefix.
- Projector: LLaVA's 2-layer MLP from vision features to the decoder's embedding size.
- LlavaModel: vision tower + projector + our decoder (chatapp.model.transformer.Transformer); the
  image features replace the embeddings of the image token positions of the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from .config import ConfigError
from .transformer import Transformer

VISION_FAMILIES = ("clip", "siglip", "idefics3")
ACTIVATIONS = ("quick_gelu", "gelu", "gelu_pytorch_tanh", "gelu_new", "relu", "silu")
SELECT_STRATEGIES = ("default", "full")


def activation(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    if name == "gelu":
        return F.gelu(x)
    if name in ("gelu_pytorch_tanh", "gelu_new"):
        return F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu(x)
    if name == "silu":
        return F.silu(x)
    raise ConfigError(f"unsupported activation {name!r}; supported: {', '.join(ACTIVATIONS)}")


@dataclass
class VisionConfig:
    family: str  # "clip", "siglip" or "idefics3"
    dim: int
    n_layers: int
    n_heads: int
    intermediate_size: int
    image_size: int
    patch_size: int
    channels: int = 3
    norm_eps: float = 1e-5
    act: str = "quick_gelu"

    def __post_init__(self) -> None:
        if self.family not in VISION_FAMILIES:
            raise ConfigError(f"unsupported vision family {self.family!r}; supported: {', '.join(VISION_FAMILIES)}")
        for name in ("dim", "n_layers", "n_heads", "intermediate_size", "image_size", "patch_size", "channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"vision {name} must be a positive integer, got {value!r}")
        if self.dim % self.n_heads:
            raise ConfigError(f"vision dim {self.dim} is not divisible by n_heads {self.n_heads}")
        if self.image_size % self.patch_size:
            raise ConfigError(f"vision image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.act not in ACTIVATIONS:
            raise ConfigError(f"unsupported vision activation {self.act!r}; supported: {', '.join(ACTIVATIONS)}")

    @property
    def class_token(self) -> bool:
        return self.family == "clip"

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def n_positions(self) -> int:
        return self.grid ** 2 + (1 if self.class_token else 0)


@dataclass
class LlavaConfig:
    """How LLaVA joins the vision tower to the decoder."""

    # How the prompt holds an image (chatapp.text.images.image_run_ids): "llava" repeats the
    # image token tokens_for(H, W) times per image.
    prompt_style: ClassVar[str] = "llava"

    vision: VisionConfig
    image_token_id: int
    feature_layer: Union[int, list[int]] = -2
    select_strategy: str = "default"  # "default": drop the class token; "full": keep it
    projector_act: str = "gelu"
    projector_bias: bool = True
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.select_strategy not in SELECT_STRATEGIES:
            raise ConfigError(f"unsupported vision_feature_select_strategy {self.select_strategy!r}; "
                              f"supported: {', '.join(SELECT_STRATEGIES)}")
        if self.projector_act not in ACTIVATIONS:
            raise ConfigError(f"unsupported projector_hidden_act {self.projector_act!r}")
        layers = self.feature_layer if isinstance(self.feature_layer, list) else [self.feature_layer]
        if not layers:
            raise ConfigError("vision_feature_layer is an empty list")
        for layer in layers:
            if not isinstance(layer, int) or not -(self.vision.n_layers + 1) <= layer <= self.vision.n_layers:
                raise ConfigError(f"vision_feature_layer {layer!r} is not a layer of a "
                                  f"{self.vision.n_layers}-layer vision tower")

    @property
    def marker_token_id(self) -> int:
        """The token a chat template writes for an image (replaced by the image's run)."""
        return self.image_token_id

    @property
    def tokens_per_image(self) -> int:
        """Image token positions one image of the tower's own size fills in the prompt."""
        return self.tokens_for(self.vision.image_size, self.vision.image_size)

    def tokens_for(self, height: int, width: int) -> int:
        """Image token positions an image of height x width pixels fills in the prompt."""
        extra = 1 if self.vision.class_token and self.select_strategy == "full" else 0
        return (height // self.vision.patch_size) * (width // self.vision.patch_size) + extra


class VisionEmbeddings(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embedding = nn.Conv2d(config.channels, config.dim, config.patch_size, config.patch_size,
                                         bias=config.family != "clip")
        if config.class_token:
            self.class_embedding = nn.Parameter(torch.zeros(config.dim))
        self.position_embedding = nn.Embedding(config.n_positions, config.dim)

    def _positions(self, grid_h: int, grid_w: int) -> torch.Tensor:
        """(positions, dim), interpolated bicubically when the patch grid differs from training
        (idefics3: bucketed, see _bucketed_position_ids)."""
        table = self.position_embedding.weight
        cfg = self.config
        if cfg.family == "idefics3":
            return self.position_embedding(_bucketed_position_ids(grid_h, grid_w, cfg.grid, table.device))
        if grid_h == grid_w == cfg.grid:
            return table
        head = table[:1] if cfg.class_token else table[:0]
        grid = table[1:] if cfg.class_token else table
        grid = grid.reshape(1, cfg.grid, cfg.grid, cfg.dim).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(grid_h, grid_w), mode="bicubic", align_corners=False)
        return torch.cat([head, grid.permute(0, 2, 3, 1).reshape(-1, cfg.dim)])

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, C, H, W) -> (B, positions, dim)."""
        patches = self.patch_embedding(pixels.to(self.patch_embedding.weight.dtype))  # (B, dim, gh, gw)
        grid_h, grid_w = patches.shape[-2:]
        x = patches.flatten(2).transpose(1, 2)
        if self.config.class_token:
            cls = self.class_embedding.expand(x.shape[0], 1, -1)
            x = torch.cat([cls, x], dim=1)
        return x + self._positions(grid_h, grid_w)[None]


def _bucketed_position_ids(grid_h: int, grid_w: int, trained: int, device) -> torch.Tensor:
    """Position ids (grid_h * grid_w,) of a full patch grid as Idefics3VisionEmbeddings computes
    them: each row / column's fractional coordinate i / grid, in float32, bucketed into the
    trained grid's `trained` steps (the identity when the grids are equal)."""
    boundaries = torch.arange(1 / trained, 1.0, 1 / trained, device=device)

    def buckets(n: int) -> torch.Tensor:
        step = 1.0 / torch.tensor(n, device=device)  # float32, as the reference divides an int tensor
        coords = torch.arange(n, device=device, dtype=torch.float32) * step
        return torch.bucketize(torch.clamp(coords, max=1.0 - 1e-6), boundaries, right=True)

    return (buckets(grid_h)[:, None] * trained + buckets(grid_w)[None, :]).reshape(-1)


class VisionAttention(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.q_proj = nn.Linear(config.dim, config.dim)
        self.k_proj = nn.Linear(config.dim, config.dim)
        self.v_proj = nn.Linear(config.dim, config.dim)
        self.out_proj = nn.Linear(config.dim, config.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, dim = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, seq, self.n_heads, -1).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x)))
        return self.out_proj(out.transpose(1, 2).reshape(batch, seq, dim))


class VisionMLP(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.act = config.act
        self.fc1 = nn.Linear(config.dim, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(activation(self.act, self.fc1(x)))


class VisionBlock(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.dim, eps=config.norm_eps)
        self.self_attn = VisionAttention(config)
        self.layer_norm2 = nn.LayerNorm(config.dim, eps=config.norm_eps)
        self.mlp = VisionMLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class VisionEncoder(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(VisionBlock(config) for _ in range(config.n_layers))


class VisionTower(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = VisionEmbeddings(config)
        if config.class_token:
            self.pre_layrnorm = nn.LayerNorm(config.dim, eps=config.norm_eps)
        self.encoder = VisionEncoder(config)
        self.post_layernorm = nn.LayerNorm(config.dim, eps=config.norm_eps)

    def hidden_states(self, pixels: torch.Tensor, up_to: Optional[int] = None) -> list[torch.Tensor]:
        """[embeddings, after block 1, ..., after block `up_to`] (all blocks by default), as
        Hugging Face's `output_hidden_states` (no post-layernorm)."""
        x = self.embeddings(pixels)
        if self.config.class_token:
            x = self.pre_layrnorm(x)
        states = [x]
        layers = self.encoder.layers if up_to is None else self.encoder.layers[:up_to]
        for block in layers:
            x = block(x)
            states.append(x)
        return states

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """The last hidden state, (B, positions, dim), as Hugging Face's `last_hidden_state`:
        SigLIP applies the post-layernorm to it, CLIP only to its pooled class token."""
        last = self.hidden_states(pixels)[-1]
        return last if self.config.class_token else self.post_layernorm(last)


class Projector(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, act: str, bias: bool) -> None:
        super().__init__()
        self.act = act
        self.linear_1 = nn.Linear(in_dim, out_dim, bias=bias)
        self.linear_2 = nn.Linear(out_dim, out_dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(activation(self.act, self.linear_1(x)))


def splice_images(model: nn.Module, tokens: torch.Tensor, pixels: Optional[torch.Tensor]) -> torch.Tensor:
    """The decoder's embeddings of `tokens` (B, T) (scaled as its own are) with the positions of `model.config.image_token_id`
    filled, in order, with `model.image_features(pixels)` (N, per image or tile, dim). ValueError
    when the counts of image tokens and features differ."""
    embeds = model.decoder.embed(tokens)  # Gemma's scaled; image features are not
    mask = tokens == model.config.image_token_id
    n_slots = int(mask.sum())
    if pixels is None or pixels.shape[0] == 0:
        if n_slots:
            raise ValueError(f"the prompt has {n_slots} image tokens but no image was given")
        return embeds
    features = model.image_features(pixels).to(embeds.dtype)
    n_features = features.shape[0] * features.shape[1]
    if n_slots != n_features:
        raise ValueError(f"the prompt has {n_slots} image tokens but {pixels.shape[0]} image(s) "
                         f"give {n_features} features ({features.shape[1]} each)")
    embeds = embeds.clone()
    embeds[mask] = features.reshape(-1, features.shape[-1])
    return embeds


class LlavaModel(nn.Module):
    """Vision tower + projector + decoder. forward(tokens, pixels) -> logits; `embed` alone
    gives the spliced input embeddings (for a driver with its own decode loop)."""

    def __init__(self, config: LlavaConfig, decoder: Transformer) -> None:
        super().__init__()
        self.config = config
        self.vision_tower = VisionTower(config.vision)
        layers = config.feature_layer if isinstance(config.feature_layer, list) else [config.feature_layer]
        self.multi_modal_projector = Projector(config.vision.dim * len(layers), decoder.config.dim,
                                               config.projector_act, config.projector_bias)
        self.decoder = decoder

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (N, C, H, W) -> (N, tokens_per_image, decoder dim)."""
        layers = self.config.feature_layer
        layers = layers if isinstance(layers, list) else [layers]
        n = self.config.vision.n_layers
        deepest = max(layer % (n + 1) for layer in layers)
        states = self.vision_tower.hidden_states(pixels, up_to=deepest)
        full = [states[layer % (n + 1)] for layer in layers]
        if self.config.select_strategy == "default" and self.config.vision.class_token:
            full = [s[:, 1:] for s in full]
        return self.multi_modal_projector(torch.cat(full, dim=-1))

    def embed(self, tokens: torch.Tensor, pixels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """tokens (B, T) -> embeddings (B, T, dim), image token positions filled with the images'
        features in order. ValueError when the counts of image tokens and features differ."""
        return splice_images(self, tokens, pixels)

    def forward(self, tokens: torch.Tensor, pixels: Optional[torch.Tensor] = None,
                input_pos: Optional[torch.Tensor] = None, last_only: bool = False) -> torch.Tensor:
        return self.decoder(tokens, input_pos, last_only=last_only, embeds=self.embed(tokens, pixels))

