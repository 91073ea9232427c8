"""Token blocks for training: packed documents, a seeded split, and chat examples with a loss mask.

Two kinds of data become the same thing, `TokenBlocks` (N, block_size + 1) rows, whose first
block_size tokens are the input and last block_size tokens the targets:
- plain documents, separated by EOS and packed back to back (`pack_documents`), every token
  a target;
- chat examples (`render_chat_example`), where only the assistant's tokens are targets; the
  other positions get the label IGNORE_INDEX, which cross-entropy skips.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Iterator, Optional, Sequence, TypeVar, Union

import torch

from ..text.prompt import render_and_encode
from .jsonl import jsonl_records

log = logging.getLogger(__name__)

IGNORE_INDEX = -100  # torch.nn.functional.cross_entropy's default ignore_index
ROLES = ("system", "user", "assistant")

T = TypeVar("T")


class DatasetError(ValueError):
    """Training data that cannot be used; names the file and, where it applies, the line."""

    def __init__(self, path: Optional[Union[str, Path]], problem: str, line: Optional[int] = None) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        self.problem = problem
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(f"{where}{problem}")


# -- packing ------------------------------------------------------------------------------
def pack_masked(examples: Iterable[tuple[Sequence[int], Sequence[bool]]], block_size: int
                ) -> Iterator[tuple[list[int], list[bool]]]:
    """Concatenate (ids, mask) examples and cut the stream into blocks of block_size + 1.

    Consecutive blocks overlap by one token (the last target of one block is the first input
    of the next), so every token after the first is a target exactly once. A tail shorter
    than a block is dropped. Streams: holds at most one block plus one example in memory.
    """
    if block_size <= 0:
        raise ValueError(f"block_size must be positive, got {block_size}")
    span = block_size + 1
    ids_buf: list[int] = []
    mask_buf: list[bool] = []
    for ids, mask in examples:
        if len(ids) != len(mask):
            raise ValueError(f"an example has {len(ids)} ids but {len(mask)} mask values")
        ids_buf.extend(ids)
        mask_buf.extend(bool(m) for m in mask)
        start = 0
        while len(ids_buf) - start >= span:
            yield ids_buf[start:start + span], mask_buf[start:start + span]
            start += block_size  # keep the last token: it starts the next block
        if start:
            del ids_buf[:start], mask_buf[:start]


def pack_documents(token_streams: Iterable[Sequence[int]], block_size: int, eos_id: int
                   ) -> Iterator[list[int]]:
    """Documents (token id sequences) each followed by EOS, packed into blocks of block_size + 1."""
    examples = ((list(doc) + [eos_id], [True] * (len(doc) + 1)) for doc in token_streams)
    for ids, _ in pack_masked(examples, block_size):
        yield ids


@dataclass
class TokenBlocks:
    """Packed rows: tokens (N, T+1) int64; loss_mask (N, T+1) bool, or None: every target counts."""

    tokens: torch.Tensor
    loss_mask: Optional[torch.Tensor] = None

    def __post_init__(self) -> None:
        if self.tokens.dim() != 2 or self.tokens.shape[1] < 2:
            raise ValueError(f"tokens must be (N, block_size + 1) with block_size >= 1, got {list(self.tokens.shape)}")
        self.tokens = self.tokens.long()
        if self.loss_mask is not None:
            if self.loss_mask.shape != self.tokens.shape:
                raise ValueError(f"loss_mask shape {list(self.loss_mask.shape)} != tokens shape "
                                 f"{list(self.tokens.shape)}")
            self.loss_mask = self.loss_mask.bool()

    def __len__(self) -> int:
        return self.tokens.shape[0]

    @property
    def block_size(self) -> int:
        return self.tokens.shape[1] - 1

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows `index` as (inputs (B, T), labels (B, T)), labels IGNORE_INDEX where masked."""
        rows = self.tokens[index]
        inputs, labels = rows[:, :-1], rows[:, 1:].clone()
        if self.loss_mask is not None:
            labels[~self.loss_mask[index][:, 1:]] = IGNORE_INDEX
        return inputs, labels

    @classmethod
    def from_blocks(cls, blocks: Iterable[Sequence[int]]) -> "TokenBlocks":
        rows = [list(b) for b in blocks]
        if not rows:
            raise ValueError("no blocks: the documents are shorter than one block")
        return cls(torch.tensor(rows, dtype=torch.long))

    @classmethod
    def from_masked(cls, blocks: Iterable[tuple[Sequence[int], Sequence[bool]]]) -> "TokenBlocks":
        rows = list(blocks)
        if not rows:
            raise ValueError("no blocks: the examples are shorter than one block")
        return cls(torch.tensor([r[0] for r in rows], dtype=torch.long),
                   torch.tensor([list(r[1]) for r in rows], dtype=torch.bool))

    def fingerprint(self) -> str:
        """sha256 of the tokens and mask: tells whether a resumed run sees the same data."""
        h = hashlib.sha256()
        h.update(repr(tuple(self.tokens.shape)).encode())
        h.update(self.tokens.contiguous().numpy().tobytes())
        if self.loss_mask is not None:
            h.update(self.loss_mask.contiguous().numpy().tobytes())
        return h.hexdigest()


def as_blocks(blocks: Union[TokenBlocks, torch.Tensor]) -> TokenBlocks:
    return blocks if isinstance(blocks, TokenBlocks) else TokenBlocks(blocks)


# -- train / validation split -------------------------------------------------------------
def _default_key(doc: Any) -> bytes:
    if isinstance(doc, bytes):
        return doc
    if isinstance(doc, str):
        return doc.encode("utf-8")
    return json.dumps(list(doc)).encode("ascii")  # a token id sequence


def split_documents(documents: Sequence[T], val_fraction: float = 0.1, seed: int = 0,
                    key: Optional[Callable[[T], Union[bytes, str, Hashable]]] = None
                    ) -> tuple[list[T], list[T]]:
    """(train, validation), decided per document by a seeded hash of its key.

    The key (default: the document's content; pass e.g. the file path instead) is hashed with
    the seed; the documents with the lowest hashes are held out, round(val_fraction * n) of
    them (at least one when there are two or more documents and val_fraction > 0). Same seed
    and documents: same split, in any input order. Documents with equal keys always land on
    the same side, so no document is in both. Order within each side follows the input.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    key = key or _default_key

    def digest(doc: T) -> str:
        k = key(doc)
        raw = k if isinstance(k, bytes) else str(k).encode("utf-8")
        return hashlib.sha256(f"{seed}:".encode() + raw).hexdigest()

    digests = [digest(d) for d in documents]
    unique = sorted(set(digests))
    n_val = round(val_fraction * len(unique))
    if val_fraction > 0 and len(unique) >= 2:
        n_val = min(max(n_val, 1), len(unique) - 1)
    held_out = set(unique[:n_val])
    train = [d for d, h in zip(documents, digests) if h not in held_out]
    val = [d for d, h in zip(documents, digests) if h in held_out]
    return train, val


def fingerprint_texts(texts: Iterable[Union[str, bytes]]) -> str:
    """sha256 over documents (order matters): recorded with an adapter to name its data."""
    h = hashlib.sha256()
    for text in texts:
        raw = text if isinstance(text, bytes) else text.encode("utf-8")
        h.update(len(raw).to_bytes(8, "little"))
        h.update(raw)
    return h.hexdigest()


# -- chat examples ------------------------------------------------------------------------
def render_chat_example(messages: Sequence[dict], tokenizer: Any) -> tuple[list[int], list[bool]]:
    """A conversation as (ids, loss_mask): True exactly on the assistant turns' tokens.

    Rendered with the tokenizer's chat template once per assistant turn: the ids of the
    conversation up to the turn with the generation prompt mark where the turn starts, the
    ids through the turn where it ends (its end-of-turn tokens included: the model learns to
    stop). Each rendering must extend the previous one token for token; a template that
    rewrites earlier turns (some drop past reasoning) is refused rather than mis-masked.
    Message contents are encoded as text (render_and_encode): markers in them teach nothing.
    """
    _check_messages(messages)
    full = render_and_encode(tokenizer, list(messages), add_generation_prompt=False).ids
    mask = [False] * len(full)

    def prefix(n: int, generation_prompt: bool) -> list[int]:
        ids = render_and_encode(tokenizer, list(messages[:n]), add_generation_prompt=generation_prompt).ids
        if full[:len(ids)] != ids:
            raise ValueError(f"the chat template does not render the conversation up to message {n} as a "
                             f"prefix of the whole; the loss mask cannot be placed exactly")
        return ids

    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(prefix(i, True))
        end = len(prefix(i + 1, False))
        for t in range(start, end):
            mask[t] = True
    return full, mask


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    for n, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ValueError(f"message {n} is not an object")
        if m.get("role") not in ROLES:
            raise ValueError(f"message {n} has role {m.get('role')!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(m.get("content"), str):
            raise ValueError(f"message {n} has no text 'content'")
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError("no assistant message: nothing to learn from")


def read_chat_jsonl(path: Union[str, Path]) -> Iterator[tuple[int, list[dict]]]:
    """(line number, messages) for each `{"messages": [...]}` line of a JSONL file.

    Blank lines are skipped; anything else wrong raises DatasetError naming file and line.
    """
    yield from jsonl_records(Path(path), DatasetError, _chat_messages)


def _chat_messages(record: Any) -> list[dict]:
    """The messages of one `{"messages": [...]}` record; ValueError saying what is wrong."""
    if not isinstance(record, dict) or "messages" not in record:
        raise ValueError('expected an object {"messages": [...]}')
    _check_messages(record["messages"])
    return record["messages"]


def chat_blocks(path: Union[str, Path], tokenizer: Any, block_size: int) -> TokenBlocks:
    """Every conversation of a JSONL file rendered, masked and packed into blocks."""
    path = Path(path)

    def examples() -> Iterator[tuple[list[int], list[bool]]]:
        for line_no, messages in read_chat_jsonl(path):
            try:
                yield render_chat_example(messages, tokenizer)
            except ValueError as exc:
                raise DatasetError(path, str(exc), line_no) from exc

    try:
        return TokenBlocks.from_masked(pack_masked(examples(), block_size))
    except DatasetError:
        raise
    except ValueError as exc:
        raise DatasetError(path, str(exc)) from exc


# -- whole examples per block (knowledge recipe) -------------------------------------------
def pack_examples(examples: Iterable[tuple[Sequence[int], Sequence[bool]]], block_size: int, pad_id: int,
                  open_rows: int = 64) -> Optional[TokenBlocks]:
    """(ids, mask) examples placed whole into rows of block_size + 1; the rest of a row is
    `pad_id`, masked out. Unlike pack_masked, a question and its answer always share a row (an
    answer is never learned without its question). Each example goes into the first of the
    last `open_rows` rows with room for it (first fit: rows end up ~95% full, where filling one
    row after another leaves ~20% padding), else a new row. An example longer than a row is cut
    into rows of its own, overlapping by one token. None: no examples."""
    if block_size <= 0:
        raise ValueError(f"block_size must be positive, got {block_size}")
    span = block_size + 1
    rows: list[tuple[list[int], list[bool]]] = []
    first_open = 0  # rows before this one are closed (never filled further)

    for ids, mask in examples:
        if len(ids) != len(mask):
            raise ValueError(f"an example has {len(ids)} ids but {len(mask)} mask values")
        ids, mask = list(ids), [bool(m) for m in mask]
        while len(ids) > span:  # longer than a row
            rows.append((ids[:span], mask[:span]))
            ids, mask = ids[block_size:], mask[block_size:]
        for row_ids, row_mask in rows[max(first_open, len(rows) - open_rows):]:
            if len(row_ids) + len(ids) <= span:
                row_ids.extend(ids)
                row_mask.extend(mask)
                break
        else:
            rows.append((ids, mask))
        first_open = max(first_open, len(rows) - open_rows)
    if not rows:
        return None
    return TokenBlocks(torch.tensor([r[0] + [pad_id] * (span - len(r[0])) for r in rows], dtype=torch.long),
                       torch.tensor([r[1] + [False] * (span - len(r[1])) for r in rows], dtype=torch.bool))
