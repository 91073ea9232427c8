"""Out of memory while loading or generating: recognise it, free what can be freed, say so plainly.

A model that does not fit, or a reply whose activations do not, must not take the loaded
model with it: `ChatBackend` catches the error here, releases the half-built tensors (and
for a reply the KV cache, set up again before the next one) and raises `NotEnoughMemoryError`,
whose message is one sentence for the window.
"""

from __future__ import annotations

import errno
import gc
import logging
from typing import Optional

log = logging.getLogger(__name__)

# How allocation failures read when torch or safetensors raise them as a plain error.
OUT_OF_MEMORY_WORDS = ("out of memory", "can't allocate memory", "cannot allocate memory")


class NotEnoughMemoryError(MemoryError):
    """Loading a model or generating a reply ran out of memory; what was loaded before stays usable."""

    def __init__(self, message: str, needed_bytes: Optional[int] = None) -> None:
        super().__init__(message)
        self.needed_bytes = needed_bytes


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from, is an allocation failure: Python's
    MemoryError, torch's OutOfMemoryError (CUDA), an OSError ENOMEM (a memory map refused), or
    the RuntimeError torch's CPU allocator, older torch and MPS raise for one. The chain
    matters: a loader may wrap a refused memory map in its own error (safetensors says
    "unable to mmap ... Cannot allocate memory (12)")."""
    import torch

    oom = getattr(torch, "OutOfMemoryError", None)  # torch >= 2.5 (torch.cuda.OutOfMemoryError before)
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(seen) < 16:
        seen.add(id(exc))
        if isinstance(exc, MemoryError) or (oom is not None and isinstance(exc, oom)):
            return True
        if isinstance(exc, OSError) and exc.errno == errno.ENOMEM:
            return True
        text = str(exc).lower()
        if any(words in text for words in OUT_OF_MEMORY_WORDS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def release_memory() -> None:
    """Give back what a failed allocation left behind: unreachable tensors, the allocator's caches."""
    import torch

    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        mps.empty_cache()


def gigabytes(n_bytes: int) -> str:
    """`n_bytes` as the window says it: "~1.2 GB" (GiB, one decimal; at least 0.1)."""
    return f"~{max(n_bytes / 1024**3, 0.1):.1f} GB"


def load_message(name: str, needed_bytes: Optional[int]) -> str:
    """The sentence for a load that ran out of memory."""
    if needed_bytes:
        return f"not enough memory to load {name} (needs {gigabytes(needed_bytes)})"
    return f"not enough memory to load {name}"


REPLY_MESSAGE = ("not enough memory to go on with this reply; the text so far is kept and the model's "
                 "cache was freed, so the next message can be sent (a shorter context or a shorter "
                 "conversation needs less)")
