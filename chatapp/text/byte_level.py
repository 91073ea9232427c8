"""GPT-2's byte-level alphabet: each of the 256 bytes as a printable character, the way the
`tokenizers` ByteLevel pre-tokenizer writes the pieces of a byte-level BPE vocabulary (GPT-2,
Llama 3, SmolLM, Qwen). Printable Latin-1 bytes stand for themselves; the others (space,
control bytes, ...) are shifted to U+0100 onwards, so a space reads "Ġ" and a newline "Ċ".
"""

from __future__ import annotations

from functools import lru_cache
from types import MappingProxyType
from typing import Mapping


@lru_cache(maxsize=1)
def byte_to_char() -> Mapping[int, str]:
    """byte value -> its character in byte-level pieces (read-only)."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = [b for b in range(256) if b not in kept]
    table = {b: chr(b) for b in kept}
    table.update({b: chr(256 + n) for n, b in enumerate(shifted)})
    return MappingProxyType(dict(sorted(table.items())))


@lru_cache(maxsize=1)
def char_to_byte() -> Mapping[str, int]:
    """A byte-level piece's character -> the byte it stands for (read-only): the inverse table."""
    return MappingProxyType({ch: b for b, ch in byte_to_char().items()})
