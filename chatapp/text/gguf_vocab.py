"""The tokenizer a GGUF file describes, read from its metadata into plain Python values.

A GGUF has no tokenizer.json: llama.cpp stores the vocabulary, merges, token types and special
ids under `tokenizer.ggml.*` keys. This module only reads them; `gguf_tokenizer` builds a
`tokenizers.Tokenizer` from the result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import gguf
import numpy as np

from ..errors import CorruptFileError, MissingFileError, TokenizerError

log = logging.getLogger(__name__)

# llama.cpp's token types (gguf.TokenType), as stored in tokenizer.ggml.token_type.
NORMAL = int(gguf.TokenType.NORMAL)
UNKNOWN = int(gguf.TokenType.UNKNOWN)
CONTROL = int(gguf.TokenType.CONTROL)
USER_DEFINED = int(gguf.TokenType.USER_DEFINED)
UNUSED = int(gguf.TokenType.UNUSED)
BYTE = int(gguf.TokenType.BYTE)


@dataclass
class GGUFVocab:
    """Everything under `tokenizer.*` that the tokenizer needs, validated."""

    path: Path
    model: str                      # tokenizer.ggml.model: "gpt2", "llama", ...
    pre: Optional[str]              # tokenizer.ggml.pre: "smollm", "llama-bpe", "qwen2", ...
    tokens: list[str]
    token_types: list[int]          # one per token; NORMAL when the file has none
    scores: Optional[list[float]] = None
    merges: Optional[list[str]] = None
    bos_id: Optional[int] = None
    eos_id: Optional[int] = None
    unk_id: Optional[int] = None
    pad_id: Optional[int] = None
    extra_eos_ids: set[int] = field(default_factory=set)  # eot/eom ids the file declares
    add_bos: Optional[bool] = None  # None: the file does not say
    add_eos: Optional[bool] = None
    add_space_prefix: Optional[bool] = None
    chat_template: Optional[str] = None
    architecture: Optional[str] = None  # general.architecture: some families spell and cut text their own way

    def __post_init__(self) -> None:
        count = len(self.tokens)
        if count == 0:
            raise TokenizerError(self.path, "tokenizer.ggml.tokens is empty")
        if len(self.token_types) != count:
            raise TokenizerError(self.path, f"tokenizer.ggml.token_type has {len(self.token_types)} entries "
                                            f"for {count} tokens")
        if self.scores is not None and len(self.scores) != count:
            raise TokenizerError(self.path, f"tokenizer.ggml.scores has {len(self.scores)} entries "
                                            f"for {count} tokens")
        for name in ("bos_id", "eos_id", "unk_id", "pad_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < count:
                log.warning("%s: %s %d is outside the vocabulary (%d tokens); ignoring it",
                            self.path, name, value, count)
                setattr(self, name, None)
        self.extra_eos_ids = {i for i in self.extra_eos_ids if 0 <= i < count}


def open_reader(path: Path) -> gguf.GGUFReader:
    """A GGUFReader on `path`, with our error types for a missing or foreign file."""
    if not path.is_file():
        raise MissingFileError(path, "GGUF file not found", "check the path, or pick another model")
    try:
        return gguf.GGUFReader(str(path))
    except (ValueError, OSError) as exc:
        raise CorruptFileError(path, f"not a readable GGUF file: {exc}") from exc


def _scalar(reader: gguf.GGUFReader, key: str) -> Any:
    field_ = reader.fields.get(key)
    return None if field_ is None else field_.contents()


def _string_array(reader: gguf.GGUFReader, key: str) -> Optional[list[str]]:
    field_ = reader.fields.get(key)
    if field_ is None:
        return None
    if field_.types[:1] != [gguf.GGUFValueType.ARRAY] or field_.types[-1] != gguf.GGUFValueType.STRING:
        raise TokenizerError(None, f"{key} is not an array of strings")
    # contents() decodes the 49k memory-mapped pieces in ~25 ms; nothing faster is worth the code.
    return field_.contents()


def _numeric_array(reader: gguf.GGUFReader, key: str) -> Optional[np.ndarray]:
    """A numeric array field as one numpy array, read in one piece when it is contiguous."""
    field_ = reader.fields.get(key)
    if field_ is None:
        return None
    if field_.types[:1] != [gguf.GGUFValueType.ARRAY] or field_.types[-1] == gguf.GGUFValueType.STRING:
        raise TokenizerError(None, f"{key} is not a numeric array")
    if not field_.data:
        return np.zeros(0)
    first, last = field_.parts[field_.data[0]], field_.parts[field_.data[-1]]
    count = len(field_.data)
    start = first.ctypes.data
    # The reader keeps one 1-element view per item; when they sit back to back in the mapped
    # file (they always do in a well-formed GGUF) one view over the span replaces 49k of them.
    if (all(len(field_.parts[i]) == 1 for i in (field_.data[0], field_.data[-1]))
            and last.ctypes.data - start == (count - 1) * first.itemsize):
        offset = start - reader.data.ctypes.data
        return np.frombuffer(reader.data, dtype=first.dtype, count=count, offset=offset).copy()
    return np.asarray(field_.contents())


def _optional_int(reader: gguf.GGUFReader, key: str) -> Optional[int]:
    value = _scalar(reader, key)
    return None if value is None else int(value)


def _optional_bool(reader: gguf.GGUFReader, key: str) -> Optional[bool]:
    value = _scalar(reader, key)
    return None if value is None else bool(value)


def read_gguf_vocab(reader: gguf.GGUFReader, path: Path) -> GGUFVocab:
    """The tokenizer metadata of an open GGUF file."""
    try:
        model = _scalar(reader, "tokenizer.ggml.model")
        tokens = _string_array(reader, "tokenizer.ggml.tokens")
        if model is None or tokens is None:
            missing = "tokenizer.ggml.model" if model is None else "tokenizer.ggml.tokens"
            raise TokenizerError(path, f"the file has no {missing}",
                                 "it was not written with a tokenizer; use a GGUF converted with one")
        types = _numeric_array(reader, "tokenizer.ggml.token_type")
        scores = _numeric_array(reader, "tokenizer.ggml.scores")
        extra_eos = {value for value in (_optional_int(reader, "tokenizer.ggml.eot_token_id"),
                                         _optional_int(reader, "tokenizer.ggml.eom_token_id"))
                     if value is not None}
        return GGUFVocab(
            path=path,
            model=str(model),
            pre=_scalar(reader, "tokenizer.ggml.pre"),
            tokens=tokens,
            token_types=types.astype(int).tolist() if types is not None else [NORMAL] * len(tokens),
            scores=scores.astype(float).tolist() if scores is not None else None,
            merges=_string_array(reader, "tokenizer.ggml.merges"),
            bos_id=_optional_int(reader, "tokenizer.ggml.bos_token_id"),
            eos_id=_optional_int(reader, "tokenizer.ggml.eos_token_id"),
            unk_id=_optional_int(reader, "tokenizer.ggml.unknown_token_id"),
            pad_id=_optional_int(reader, "tokenizer.ggml.padding_token_id"),
            extra_eos_ids=extra_eos,
            add_bos=_optional_bool(reader, "tokenizer.ggml.add_bos_token"),
            add_eos=_optional_bool(reader, "tokenizer.ggml.add_eos_token"),
            add_space_prefix=_optional_bool(reader, "tokenizer.ggml.add_space_prefix"),
            chat_template=_scalar(reader, "tokenizer.chat_template"),
            architecture=_scalar(reader, "general.architecture"),
        )
    except TokenizerError as exc:
        if exc.path is None:  # raised by a helper that did not know the file
            raise TokenizerError(path, exc.problem, exc.hint) from exc
        raise
    except (UnicodeDecodeError, ValueError, IndexError) as exc:
        raise TokenizerError(path, f"unreadable tokenizer metadata: {exc}") from exc
