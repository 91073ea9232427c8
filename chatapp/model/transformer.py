"""The decoder-only Transformer: forward(tokens, input_pos) -> logits.

The model computes and nothing else. Whoever drives it (the engine, the trainer) decides
whether a KV cache exists (`setup_cache`), which positions are fed, and what to do with
the logits. Prefill and one-token decode are the same call with different `input_pos`.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .attention import Attention, KVCache
from .config import WINDOW_CACHE_SLACK, ModelConfig
from .layers import make_mlp, make_norm, rope_cos_sin, rope_inv_freq
from .linear import Linear
from .longrope import longrope_attention_factor, longrope_inv_freqs, uses_long_factors
from .moe import MoE
from .softcap_attention import softcap_logits
from .window_cache import WindowKVCache


class Block(nn.Module):
    def __init__(self, config: ModelConfig, index: int = 0) -> None:
        super().__init__()
        self.sliding = config.is_sliding(index)
        self.attn_norm = make_norm(config)
        self.attn = Attention(config)
        self.mlp_norm = make_norm(config)
        self.mlp = MoE(config) if config.is_moe_layer(index) else make_mlp(config)
        self.post_norms = config.post_norms
        if config.post_norms:  # Gemma: each sublayer's output is normalised before the residual add
            self.attn_post_norm = make_norm(config)
            self.mlp_post_norm = make_norm(config)

    def forward(self, x, rope, input_pos, mask, end, static: bool = False):
        h = self.attn(self.attn_norm(x), rope, input_pos, mask, end, static)
        x = x + (self.attn_post_norm(h) if self.post_norms else h)
        h = self.mlp(self.mlp_norm(x))
        return x + (self.mlp_post_norm(h) if self.post_norms else h)


class Transformer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
        if config.positions == "learned":
            self.pos_embeddings = nn.Embedding(config.max_seq_len, config.dim)
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.n_layers))
        for index in config.no_rope_layers or ():  # SmolLM3: these layers see no positions at all
            self.layers[index].attn.use_rope = False
        self.norm = make_norm(config)
        self.lm_head = Linear(config.dim, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.tok_embeddings.weight
        self.cache_len = 0  # positions the KV cache can hold; 0 means no cache
        self.long_rope = False  # LongRoPE: whether the cache's context uses the long factors (_rope)
        self.decode_step = None  # a model/decode_step.DecodeStep the loader attaches, used by the engine
        self.init_buffers()

    def init_buffers(self, device: torch.device | str | None = None) -> None:
        """(Re)compute non-persistent buffers, e.g. after building on the meta device."""
        if self.config.positions == "rope":
            config = self.config
            if device is None and self.tok_embeddings.weight.device.type != "meta":
                device = self.tok_embeddings.weight.device
            if config.rope_scaling is not None and config.rope_scaling.kind == "longrope":
                # (rotary_dim/2,) each; which one a forward uses: _rope
                inv_freq, long_inv_freq = longrope_inv_freqs(config.rotary_dim, config.rope_theta,
                                                             config.rope_scaling)
                self.register_buffer("rope_inv_freq_long", long_inv_freq.to(device), persistent=False)
            else:
                inv_freq = rope_inv_freq(config.rotary_dim, config.rope_theta, config.rope_scaling)
            self.register_buffer("rope_inv_freq", inv_freq.to(device), persistent=False)
            if self.config.local_rope_theta is not None:  # Gemma 3's sliding layers: their own base
                local = rope_inv_freq(config.rotary_dim, self.config.local_rope_theta,
                                      self.config.local_rope_scaling)
                self.register_buffer("local_rope_inv_freq", local.to(device), persistent=False)

    def _rope(self, input_pos: torch.Tensor, end: Optional[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (T, rotary_dim) for input_pos; LongRoPE picks its list by the run's context.
        end None: the list setup_cache chose for the cache (forward_static: the context length is
        not read, so it is no constant of a compiled graph)."""
        scaling = self.config.rope_scaling
        if scaling is None or scaling.kind != "longrope":
            return rope_cos_sin(input_pos, self.rope_inv_freq)
        long = self.long_rope if end is None else uses_long_factors(scaling, self.cache_len or end)
        inv_freq = self.rope_inv_freq_long if long else self.rope_inv_freq
        cos, sin = rope_cos_sin(input_pos, inv_freq)
        factor = longrope_attention_factor(scaling)
        return cos * factor, sin * factor

    # -- KV cache -------------------------------------------------------------------------
    def setup_cache(self, batch_size: int, max_seq_len: Optional[int] = None,
                    dtype: Optional[torch.dtype] = None, window_cache: bool = True,
                    window_slack: int = WINDOW_CACHE_SLACK) -> None:
        """Allocate a KV cache for `batch_size` sequences of up to `max_seq_len` positions.

        window_cache: sliding-window layers keep only their window plus `window_slack` positions
        (how far back a chat may go without running its prompt again) where that is shorter than
        max_seq_len (window_cache.py); False: every layer keeps every position.
        """
        max_seq_len = max_seq_len or self.config.max_seq_len
        if max_seq_len > self.config.max_seq_len:
            raise ValueError(f"cache length {max_seq_len} exceeds the model's context {self.config.max_seq_len}")
        param = self.norm.weight  # float in every weights option (the embedding may be compact)
        config, dtype = self.config, dtype or param.dtype
        # Plain tensors even when called under inference mode (scoring does): a compiled decode
        # step's guards tell the two kinds apart, and a cache of the other kind would compile it again.
        with torch.inference_mode(False):
            for i, block in enumerate(self.layers):
                if window_cache and config.cache_positions(i, max_seq_len, window_slack) < max_seq_len:
                    block.attn.kv_cache = WindowKVCache(batch_size, config.n_kv_heads, config.sliding_window,
                                                        window_slack, config.head_dim, dtype, param.device)
                else:
                    block.attn.kv_cache = KVCache(batch_size, config.n_kv_heads, max_seq_len,
                                                  config.head_dim, dtype, param.device)
        self.cache_len = max_seq_len
        scaling = config.rope_scaling
        self.long_rope = (scaling is not None and scaling.kind == "longrope"
                          and uses_long_factors(scaling, max_seq_len))

    def can_resume(self, start: int) -> bool:
        """Whether the KV cache can run on from position `start` with the positions before it
        (a sliding-window cache forgets positions older than its window and slack)."""
        return all(block.attn.kv_cache.can_resume(start) for block in self.layers
                   if isinstance(block.attn.kv_cache, WindowKVCache))

    def clear_cache(self) -> None:
        for block in self.layers:
            block.attn.kv_cache = None
        self.cache_len = 0
        self.long_rope = False

    # -- forward --------------------------------------------------------------------------
    def _mask(self, input_pos: torch.Tensor, end: int, cached: bool,
              window: Optional[int], blocks: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
        """Boolean mask (T, end), True where a query may attend; None for plain causal.
        blocks: see forward's attention_blocks."""
        seq = input_pos.shape[0]
        fresh = int(input_pos[0]) == 0 and end == seq
        if not cached and not fresh:
            raise ValueError("positions that do not start at 0 need a KV cache (call setup_cache)")
        if (window is None or end <= window) and blocks is None:
            if fresh:
                return None  # plain causal attention over the whole sequence
            if seq == 1:
                return None  # one new token sees every cached position
        key_pos = torch.arange(end, device=input_pos.device)
        q_pos = input_pos[:, None]
        allowed = key_pos[None, :] <= q_pos  # (T, end)
        if blocks is not None:  # OR(causal, same block), then the window, as transformers composes them
            same = (blocks[:, None] == blocks[None, :]) & (blocks[:, None] >= 0)  # (T, T): fed positions
            allowed[:, end - seq:] |= same
        if window is not None:
            allowed &= q_pos - key_pos[None, :] < window
        return allowed

    def forward_static(self, tokens: torch.Tensor, input_pos: torch.Tensor, key_pos: torch.Tensor) -> torch.Tensor:
        """One decode step that torch.compile can take whole (model/decode_step.py): tokens (B, 1)
        at input_pos (1,) -> logits (B, 1, V), as forward(tokens, input_pos) with a KV cache.

        key_pos (S,) is arange(S): every layer with a full cache attends over its first S
        positions (the caller picks S past input_pos; the compiled step marks S dynamic, so one
        graph serves every S). No Python value is read from a tensor: the keys are written at the
        position tensor (index_copy_), the mask is built from it, and so are RoPE's cos/sin. A
        sliding-window cache attends over its ring; its Python bookkeeping is the caller's
        (WindowKVCache.advance). A KV cache must be set up (the caller checks). The context
        length (cache_len) is not read here, only the caches' tensors, whose length the compiled
        step marks dynamic too: one graph serves every context length."""
        kv_len = key_pos.shape[0]
        q_pos = input_pos[:, None]  # (1, 1)
        masks = {False: key_pos[None, :] <= q_pos}  # (1, S)
        if self.config.sliding_window is not None:  # a window over a full cache (the ring makes its own)
            masks[True] = masks[False] & (q_pos - key_pos[None, :] < self.config.sliding_window)
        x, ropes = self._positions(self.embed(tokens), input_pos, None)  # (B, 1, dim)
        for block in self.layers:
            x = block(x, ropes[block.sliding], input_pos, masks[block.sliding], kv_len,
                      static=True)
        return self._logits(x)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> embeddings (B, T, dim), scaled as the model scales them (vision splicing
        uses it too: image features are not scaled)."""
        x = self.tok_embeddings(tokens)
        if self.config.embed_scale:  # Gemma: sqrt(dim), rounded to the weights' dtype as it does
            x = x * torch.tensor(self.config.dim ** 0.5).to(x.dtype)
        return x

    def _positions(self, x: torch.Tensor, input_pos: torch.Tensor, rope_end: Optional[int]
                   ) -> tuple[torch.Tensor, dict[bool, Optional[tuple[torch.Tensor, torch.Tensor]]]]:
        """Learned positions added to x, or RoPE's (cos, sin) for positions below `rope_end`
        (None: the KV cache's context, see _rope): (x, {Block.sliding: rope or None})."""
        ropes = {False: None, True: None}
        if self.config.positions == "learned":
            x = x + self.pos_embeddings(input_pos)[None]
        else:
            ropes[False] = ropes[True] = self._rope(input_pos, rope_end)
            if self.config.local_rope_theta is not None:
                ropes[True] = rope_cos_sin(input_pos, self.local_rope_inv_freq)
        return x, ropes

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """Final norm, vocabulary projection and soft-capping: (..., dim) -> (..., V)."""
        logits = self.lm_head(self.norm(x))
        if self.config.final_softcap is not None:
            logits = softcap_logits(logits, self.config.final_softcap)
        return logits

    def forward(self, tokens: torch.Tensor, input_pos: Optional[torch.Tensor] = None,
                last_only: bool = False, embeds: Optional[torch.Tensor] = None,
                attention_blocks: Optional[torch.Tensor] = None,
                logits_at: Optional[torch.Tensor] = None) -> torch.Tensor:
        """tokens (B, T) int64 at positions input_pos (T,), default 0..T-1 -> logits (B, T, V).

        embeds: input embeddings (B, T, dim) used instead of looking `tokens` up (a vision model
        splices image features into them); `tokens` still gives the shape.

        attention_blocks: (T,) ids, -1 or a block number per fed position; positions of one block
        also attend to each other ahead of themselves (Gemma 3's image tokens).

        last_only: logits for the last position only, (B, 1, V); a prefill needs no more,
        and the vocabulary projection is a large share of a long prompt's cost.

        logits_at: (B, T) bool, logits only where it is True, (N, V) in row-major order: training
        needs them only where a label is (a LoRA step of the knowledge recipe, where 35% of the
        positions carry a label, took 14% less CPU time this way).
        """
        batch, seq = tokens.shape
        if input_pos is None:
            input_pos = torch.arange(seq, device=tokens.device)
        end = int(input_pos[-1]) + 1
        limit = self.cache_len or self.config.max_seq_len
        if end > limit:
            raise ValueError(f"position {end - 1} is past the context length {limit}")
        cached = self.cache_len > 0
        if attention_blocks is not None and any(isinstance(b.attn.kv_cache, WindowKVCache) for b in self.layers):
            raise ValueError("attention_blocks need a full KV cache: setup_cache(..., window_cache=False)")
        # One mask and one RoPE table per kind of layer, keyed by Block.sliding.
        masks = {sliding: self._mask(input_pos, end, cached, self.config.sliding_window if sliding else None,
                                     attention_blocks)
                 for sliding in {block.sliding for block in self.layers}}

        # embeds: (B, T, dim), already scaled as the model's embeddings are (vision splicing)
        x, ropes = self._positions(self.embed(tokens) if embeds is None else embeds, input_pos, end)
        for block in self.layers:
            x = block(x, ropes[block.sliding], input_pos, masks[block.sliding], end)
        if last_only:
            x = x[:, -1:]  # (B, 1, dim)
        elif logits_at is not None:
            x = x[logits_at]  # (B, T, dim) -> (N, dim)
        return self._logits(x)
