"""ModelConfig: everything the Transformer needs to know about a model's shape.

One decoder covers the families we support through flags:
- llama / mistral: RMSNorm, RoPE (optionally Llama-3 scaled), GQA, SwiGLU, no biases.
- qwen2: like llama, plus bias on the q/k/v projections.
- gpt2: LayerNorm, learned absolute positions, GELU (tanh) MLP, biases everywhere.
- qwen3: like llama, plus an RMSNorm over each head's queries and keys (`qk_norm`), and a
  head_dim that need not be dim / n_heads.
- mixtral / qwen3_moe: a mixture of experts in place of the MLP (`n_experts` > 0, see moe.py);
  qwen3_moe also has qwen3's q/k norms.
- gemma2: (1 + weight) RMSNorm before and after each sublayer, embeddings scaled by sqrt(dim),
  gated GELU-tanh MLP, soft-capped attention scores and logits, `query_pre_attn_scalar`, and
  sliding-window layers alternating with global ones (`layer_types`).
- gemma3 (text): gemma2's structure with q/k norms, no attention soft-capping, and its own RoPE
  base (and scaling) for the sliding-window layers.
- phi3 (Phi-3, Phi-3.5, Phi-4-mini): the llama layout (q/k/v and gate/up fused in the files,
  split at load), LongRoPE scaling, partial rotary (`partial_rotary_factor`).
- smollm3: llama with no RoPE on some layers (`no_rope_layers`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

from ..limits import MODEL_MAX_PARAMS

ARCHITECTURES = ("llama", "mistral", "qwen2", "gpt2", "qwen3", "qwen3_moe", "mixtral", "gemma2", "gemma3",
                 "phi3", "smollm3")
NORMS = ("rmsnorm", "layernorm")
MLPS = ("swiglu", "gelu", "geglu")  # geglu: SwiGLU's gate with GELU (tanh) in place of SiLU (Gemma)
LAYER_TYPES = ("full_attention", "sliding_attention")
POSITIONS = ("rope", "learned")
ROPE_SCALINGS = ("linear", "llama3", "longrope")


# Positions a sliding-window layer's cache keeps beyond its window, so that a chat can go back
# that many tokens (regenerate a reply) without running the whole prompt again.
WINDOW_CACHE_SLACK = 256


class ConfigError(ValueError):
    """A model configuration that cannot describe a working model."""


@dataclass
class RopeScaling:
    """RoPE frequency scaling. `kind` is "linear" (positions / factor), "llama3" or "longrope"
    (Phi-3's LongRoPE, also called "su": see model/longrope.py)."""

    kind: str
    factor: float
    # llama3 only
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192  # llama3 and longrope
    # longrope only: per-frequency divisors for contexts up to / past the original length, and the
    # factor cos and sin are multiplied by (None: LongRoPE's default from `factor`).
    short_factor: Optional[list[float]] = None
    long_factor: Optional[list[float]] = None
    attention_factor: Optional[float] = None

    def __post_init__(self) -> None:
        if self.kind not in ROPE_SCALINGS:
            raise ConfigError(f"unsupported RoPE scaling {self.kind!r}; supported: {', '.join(ROPE_SCALINGS)}")
        if self.factor <= 0:
            raise ConfigError(f"RoPE scaling factor must be positive, got {self.factor}")
        if self.kind == "llama3" and self.high_freq_factor <= self.low_freq_factor:
            raise ConfigError("llama3 RoPE scaling needs high_freq_factor > low_freq_factor")
        if self.kind == "longrope":
            for name in ("short_factor", "long_factor"):
                values = getattr(self, name)
                if not isinstance(values, (list, tuple)) or not values or not all(
                        isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values):
                    raise ConfigError(f"longrope RoPE scaling needs {name} as a list of positive numbers, "
                                      f"got {values!r:.80}")
                setattr(self, name, [float(v) for v in values])
            if len(self.short_factor) != len(self.long_factor):
                raise ConfigError(f"longrope short_factor has {len(self.short_factor)} values but long_factor "
                                  f"{len(self.long_factor)}")
            if self.original_max_position_embeddings <= 0:
                raise ConfigError("longrope RoPE scaling needs a positive original_max_position_embeddings")
            if self.attention_factor is not None and self.attention_factor <= 0:
                raise ConfigError(f"longrope attention_factor must be positive, got {self.attention_factor}")


@dataclass
class ModelConfig:
    arch: str
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    intermediate_size: int
    max_seq_len: int
    n_kv_heads: Optional[int] = None  # None: same as n_heads (plain multi-head attention)
    head_dim: Optional[int] = None  # None: dim // n_heads
    norm: str = "rmsnorm"
    norm_eps: float = 1e-5
    mlp: str = "swiglu"
    positions: str = "rope"
    rope_theta: float = 10000.0
    rope_scaling: Optional[RopeScaling] = None
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    tie_embeddings: bool = False
    sliding_window: Optional[int] = None  # attend to at most this many previous positions
    qk_norm: bool = False  # RMSNorm over each head's q and k before RoPE (Qwen3, Gemma 3)
    # Mixture of experts (moe.py); n_experts 0 means a dense MLP in every layer.
    n_experts: int = 0
    n_experts_per_tok: int = 0  # top-k experts each token goes through
    moe_intermediate_size: Optional[int] = None  # each expert's hidden size; None: intermediate_size
    norm_topk_prob: bool = True  # renormalise the top-k routing weights to sum to 1 (Mixtral: always)
    dense_layers: tuple[int, ...] = ()  # layers that keep the dense MLP in a MoE model (Qwen3-MoE)
    # Gemma 2 / 3 (the defaults keep every other family as it was)
    norm_unit_offset: bool = False  # RMSNorm scales by (1 + weight): Gemma keeps its weights near 0
    post_norms: bool = False  # also a norm on each sublayer's output, before the residual add
    embed_scale: bool = False  # embeddings multiplied by sqrt(dim)
    attn_scale: Optional[float] = None  # attention score scale; None: 1 / sqrt(head_dim)
    attn_softcap: Optional[float] = None  # scores become cap * tanh(scores / cap) (softcap_attention.py)
    final_softcap: Optional[float] = None  # the same on the output logits
    # Per layer "sliding_attention" or "full_attention"; None: `sliding_window` applies to every layer.
    layer_types: Optional[tuple[str, ...]] = None
    local_rope_theta: Optional[float] = None  # RoPE base of sliding layers; None: rope_theta, rope_scaling
    local_rope_scaling: Optional[RopeScaling] = None  # used with local_rope_theta only
    partial_rotary_factor: float = 1.0  # RoPE rotates the first int(head_dim * this) dimensions of a head
    no_rope_layers: Optional[list[int]] = None  # indices of layers that apply no RoPE (SmolLM3)
    name: str = ""  # human-readable model name, for display only

    def __post_init__(self) -> None:
        if isinstance(self.rope_scaling, dict):
            self.rope_scaling = RopeScaling(**self.rope_scaling)
        if isinstance(self.local_rope_scaling, dict):
            self.local_rope_scaling = RopeScaling(**self.local_rope_scaling)
        if self.layer_types is not None:
            self.layer_types = tuple(self.layer_types)
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        self.dense_layers = tuple(self.dense_layers)
        if self.n_experts and self.moe_intermediate_size is None:
            self.moe_intermediate_size = self.intermediate_size
        if self.head_dim is None:
            if self.n_heads <= 0 or self.dim % self.n_heads:
                raise ConfigError(f"dim {self.dim} is not divisible by n_heads {self.n_heads}")
            self.head_dim = self.dim // self.n_heads
        self.validate()

    def validate(self) -> None:
        def positive(name: str) -> None:
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")

        if self.arch not in ARCHITECTURES:
            raise ConfigError(f"unsupported architecture {self.arch!r}; supported: {', '.join(ARCHITECTURES)}")
        for name in ("vocab_size", "dim", "n_layers", "n_heads", "n_kv_heads", "head_dim",
                     "intermediate_size", "max_seq_len"):
            positive(name)
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(f"n_heads {self.n_heads} is not a multiple of n_kv_heads {self.n_kv_heads}")
        if self.norm not in NORMS:
            raise ConfigError(f"unsupported norm {self.norm!r}; supported: {', '.join(NORMS)}")
        if self.mlp not in MLPS:
            raise ConfigError(f"unsupported mlp {self.mlp!r}; supported: {', '.join(MLPS)}")
        if self.positions not in POSITIONS:
            raise ConfigError(f"unsupported positions {self.positions!r}; supported: {', '.join(POSITIONS)}")
        if self.positions == "rope" and self.head_dim % 2:
            raise ConfigError(f"RoPE needs an even head_dim, got {self.head_dim}")
        if self.norm_eps <= 0:
            raise ConfigError(f"norm_eps must be positive, got {self.norm_eps}")
        if self.sliding_window is not None and self.sliding_window <= 0:
            raise ConfigError(f"sliding_window must be positive or None, got {self.sliding_window}")
        if self.n_experts:
            positive("n_experts")
            positive("n_experts_per_tok")
            positive("moe_intermediate_size")
            if self.n_experts_per_tok > self.n_experts:
                raise ConfigError(f"n_experts_per_tok {self.n_experts_per_tok} exceeds n_experts {self.n_experts}")
            if self.mlp != "swiglu":
                raise ConfigError("experts are SwiGLU MLPs; mlp must be 'swiglu'")
            bad = [i for i in self.dense_layers if not 0 <= i < self.n_layers]
            if bad:
                raise ConfigError(f"dense_layers {bad} are not layers of a {self.n_layers}-layer model")
        self._validate_gemma_fields()
        self._validate_rope_extras()
        if self.n_params > MODEL_MAX_PARAMS:
            raise ConfigError(f"the sizes describe {self.n_params:.3g} parameters, more than any model this app "
                              f"can run ({MODEL_MAX_PARAMS:.0e})")

    def _validate_gemma_fields(self) -> None:
        for name in ("attn_scale", "attn_softcap", "final_softcap", "local_rope_theta"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"{name} must be positive or None, got {value!r}")
        if self.layer_types is not None:
            if len(self.layer_types) != self.n_layers:
                raise ConfigError(f"layer_types has {len(self.layer_types)} entries for {self.n_layers} layers")
            bad = sorted(set(self.layer_types) - set(LAYER_TYPES))
            if bad:
                raise ConfigError(f"unknown layer types {bad}; supported: {', '.join(LAYER_TYPES)}")
            if "sliding_attention" in self.layer_types and self.sliding_window is None:
                raise ConfigError("layer_types has sliding_attention layers but sliding_window is not set")

    def is_sliding(self, index: int) -> bool:
        """Whether layer `index` attends to a sliding window only."""
        if self.sliding_window is None:
            return False
        return self.layer_types is None or self.layer_types[index] == "sliding_attention"

    def is_moe_layer(self, index: int) -> bool:
        """Whether layer `index` has a mixture of experts in place of the dense MLP."""
        return self.n_experts > 0 and index not in self.dense_layers

    @property
    def n_moe_layers(self) -> int:
        return sum(self.is_moe_layer(i) for i in range(self.n_layers))

    def _validate_rope_extras(self) -> None:
        """Partial rotary, layers without RoPE and LongRoPE's factor lists."""
        if not 0 < self.partial_rotary_factor <= 1:
            raise ConfigError(f"partial_rotary_factor must be in (0, 1], got {self.partial_rotary_factor}")
        if self.positions == "rope" and (self.rotary_dim <= 0 or self.rotary_dim % 2):
            raise ConfigError(f"RoPE needs an even, positive rotary dimension; head_dim {self.head_dim} x "
                              f"partial_rotary_factor {self.partial_rotary_factor} gives {self.rotary_dim}")
        if self.no_rope_layers is not None:
            self.no_rope_layers = sorted(set(self.no_rope_layers))
            bad = [i for i in self.no_rope_layers if not isinstance(i, int) or not 0 <= i < self.n_layers]
            if bad:
                raise ConfigError(f"no_rope_layers names layers {bad[:5]} outside 0..{self.n_layers - 1}")
        scaling = self.rope_scaling
        if scaling is not None and scaling.kind == "longrope" and len(scaling.short_factor) != self.rotary_dim // 2:
            raise ConfigError(f"longrope factor lists have {len(scaling.short_factor)} values; a rotary "
                              f"dimension of {self.rotary_dim} needs {self.rotary_dim // 2}")

    @property
    def rotary_dim(self) -> int:
        """How many leading dimensions of each head RoPE rotates (all of them unless partial)."""
        return int(self.head_dim * self.partial_rotary_factor)

    @property
    def n_params(self) -> int:
        """Parameter count (embeddings counted once when tied)."""
        attn = self.dim * self.head_dim * (self.n_heads * 2 + self.n_kv_heads * 2)
        mlp = self.dim * self.intermediate_size * (2 if self.mlp == "gelu" else 3)
        per_layer = attn + mlp + (4 if self.post_norms else 2) * self.dim + (2 * self.head_dim if self.qk_norm else 0)
        emb = self.vocab_size * self.dim * (1 if self.tie_embeddings else 2)
        pos = self.max_seq_len * self.dim if self.positions == "learned" else 0
        total = self.n_layers * per_layer + emb + pos + self.dim
        if self.n_experts:  # every expert is held in memory, though a token runs only top-k of them
            experts = self.n_experts * 3 * self.dim * self.moe_intermediate_size + self.n_experts * self.dim
            total += self.n_moe_layers * (experts - mlp)
        return total

    @property
    def n_active_params(self) -> int:
        """Parameters one token runs through (MoE: only its top-k experts); n_params when dense."""
        if not self.n_experts:
            return self.n_params
        unused = (self.n_experts - self.n_experts_per_tok) * 3 * self.dim * self.moe_intermediate_size
        return self.n_params - self.n_moe_layers * unused

    def kv_cache_bytes(self, seq_len: int, batch_size: int = 1, bytes_per_value: int = 4) -> int:
        """Bytes of the KV cache `setup_cache` allocates for `seq_len` positions: a sliding-window
        layer keeps only its window plus WINDOW_CACHE_SLACK positions (see model/window_cache.py);
        a full one holds one spare slot (model/attention.py KVCache)."""
        positions = 0
        for i in range(self.n_layers):
            held = self.cache_positions(i, seq_len)
            positions += held if held < seq_len else held + 1
        return 2 * positions * batch_size * self.n_kv_heads * self.head_dim * bytes_per_value

    def cache_positions(self, index: int, seq_len: int, slack: int = WINDOW_CACHE_SLACK) -> int:
        """Positions layer `index`'s KV cache holds for a context of `seq_len`."""
        if self.is_sliding(index):
            return min(seq_len, self.sliding_window + slack)
        return seq_len

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        return cls(**data)
