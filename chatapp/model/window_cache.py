"""A KV cache for sliding-window layers that holds only the window, not the whole context.

A layer that attends to the last `window` positions never needs older keys and values, so its
cache is a ring of `window + slack` slots: position p lives in slot p % size, next to a record
of which position each slot holds, and the attention mask is built from those positions (the
order of keys does not matter to attention; RoPE was applied before caching). The slack lets the
engine go back up to `slack` positions (regenerate a reply) and run from there: going back
further would need keys the ring has overwritten, which `update` refuses (`WindowCacheError`)
and `can_resume` tells beforehand, so the engine runs the prompt again from 0 instead.

Python-side bookkeeping (`_high`, `_intact_from`) keeps the per-token cost to a few integer
comparisons: positions [_intact_from, _high] are in the ring, written by the current sequence.
"""

from __future__ import annotations

import torch
from torch import nn


class WindowCacheError(ValueError):
    """The positions a forward pass needs are no longer in a sliding-window cache."""


class WindowKVCache(nn.Module):
    def __init__(self, batch_size: int, n_kv_heads: int, window: int, slack: int, head_dim: int,
                 dtype: torch.dtype, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.window, self.size = window, window + slack
        shape = (batch_size, n_kv_heads, self.size, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        # The position each slot holds; -1: empty.
        self.register_buffer("pos", torch.full((self.size,), -1, dtype=torch.long, device=device),
                             persistent=False)
        self._high = -1  # highest position written by the current sequence
        self._intact_from = 0  # positions from here to _high are all in the ring

    def can_resume(self, start: int) -> bool:
        """Whether a forward pass may start at position `start` (0 always may)."""
        needed_from = max(0, start - self.window + 1)
        return start == 0 or (start <= self._high + 1 and needed_from >= self._intact_from)

    def update(self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Store k, v (B, Hkv, T, D) for positions input_pos (T,, consecutive); return the keys and
        values to attend to (B, Hkv, S, D) and the mask (T, S), True where a query may attend."""
        start, seq = int(input_pos[0]), k.shape[2]
        if not self.can_resume(start):
            raise WindowCacheError(
                f"position {start} needs keys from position {max(0, start - self.window + 1)} on, but this "
                f"sliding-window cache holds positions {self._intact_from}..{self._high}: start again from 0")
        batch = k.shape[0]
        if seq <= self.size - self.window + 1:
            # Short chunk (decode): write first, then attend over the ring. The slots written held
            # positions at least `size` back, outside every new query's window.
            self._write(input_pos, k, v)
            keys, values, key_pos = self.k[:batch], self.v[:batch], self.pos
        else:
            # Long chunk (prefill): attend over the window's positions before the chunk (none when
            # it starts at 0) plus the chunk, then keep the chunk's last `size` positions.
            before = torch.arange(max(0, start - self.window + 1), start, device=input_pos.device)  # (P,)
            slots = before % self.size
            keys = torch.cat((self.k[:batch, :, slots], k), dim=2)  # (B, Hkv, P + T, D)
            values = torch.cat((self.v[:batch, :, slots], v), dim=2)
            key_pos = torch.cat((before, input_pos))
            self._write(input_pos[-self.size:], k[:, :, -self.size:], v[:, :, -self.size:])
        self.advance(start, seq)
        return keys, values, self._mask(input_pos, key_pos)

    def advance(self, start: int, seq: int) -> None:
        """Record that positions start..start+seq-1 were written (update does; a compiled
        step's caller does it for update_static, which cannot read Python ints)."""
        end = start + seq
        self._intact_from = max(self._intact_from if start > 0 else 0, end - self.size, 0)
        self._high = end - 1

    def _mask(self, input_pos: torch.Tensor, key_pos: torch.Tensor) -> torch.Tensor:
        q_pos = input_pos[:, None]
        return (key_pos[None, :] >= 0) & (key_pos[None, :] <= q_pos) & (q_pos - key_pos[None, :] < self.window)

    def update_static(self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """update's decode path for a compiled step: one position written at its slot with
        index_copy_, attention over the whole ring. No checks and no bookkeeping here (they read
        Python ints): the caller checks can_resume before and calls advance after."""
        batch = k.shape[0]
        slots = input_pos % self.size
        self.k[:batch].index_copy_(2, slots, k)
        self.v[:batch].index_copy_(2, slots, v)
        self.pos.index_copy_(0, slots, input_pos)
        return self.k[:batch], self.v[:batch], self._mask(input_pos, self.pos)

    def _write(self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        slots = input_pos % self.size
        batch = k.shape[0]
        self.k[:batch, :, slots] = k
        self.v[:batch, :, slots] = v
        self.pos[slots] = input_pos
