"""Giving the C heap's free pages back to the system while a model loads.

A load dequantizes tensors to float32 one at a time and frees each copy; glibc keeps the freed
pages (its threshold for returning large blocks at once rises as they are freed), interleaved
with the compact tensors kept, so the process grew to the sum of the copies: loading the
bundled model in int8 peaked at 735 MiB against 420 MiB with a trim now and then
(benchmarks/memory_fit.py). Other allocators (macOS, Windows, musl) are left alone.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Optional

log = logging.getLogger(__name__)

TRIM_EVERY_BYTES = 64 << 20  # freed float copies between trims (each trim took ~5 ms here)


def _glibc() -> Optional[ctypes.CDLL]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def trim_heap() -> None:
    """Return the heap's free pages to the system now (glibc's malloc_trim); a no-op elsewhere."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


class HeapTrimmer:
    """Counts the bytes of temporaries freed and trims once they pass `every` bytes."""

    def __init__(self, every: int = TRIM_EVERY_BYTES) -> None:
        self.every = every
        self.freed = 0
        self.trims = 0

    def freed_bytes(self, n: int) -> None:
        self.freed += n
        if self.freed >= self.every:
            trim_heap()
            self.freed = 0
            self.trims += 1
