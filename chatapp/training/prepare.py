"""From what the user points at to train/validation token blocks, the same way for train and eval.

DATA is a folder or files of documents (read by documents.Ingestor) or one `.jsonl` file of
conversations (`{"messages": [...]}` per line). Both become `Sources`: a list of examples with
a stable key each. The split is per example, by a seeded hash of its key (split_documents),
so `chatapp train` and `chatapp eval` with the same seed and val fraction hold out the same
documents. Then each side is tokenized and packed:

- documents: BOS (when the model wants it) + text + EOS, packed back to back, every token a target;
- conversations: rendered with the chat template, only the assistant's tokens are targets.

Unlike dataset.pack_masked, the last partial block is kept (padded, its padding masked out), so
a small corpus still yields a block and a perplexity counts every token.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import torch

from .dataset import DatasetError, TokenBlocks, fingerprint_texts, read_chat_jsonl, render_chat_example, \
    split_documents
from ..documents.reading import FileReport, IngestOptions, Ingestor

log = logging.getLogger(__name__)

PathLike = Union[str, Path]


@dataclass
class Example:
    key: str  # what the split hashes: the document's sha256, or the conversation's JSON
    text: Optional[str] = None  # a document
    messages: Optional[list[dict]] = None  # a conversation
    source: str = ""  # file (and line) it came from

    def texts(self) -> list[str]:
        """Its raw text(s), for training a tokenizer."""
        if self.text is not None:
            return [self.text]
        return [m["content"] for m in self.messages or []]


@dataclass
class Sources:
    kind: str  # "documents" or "chat"
    examples: list[Example]
    report: dict[str, Any] = field(default_factory=dict)  # the ingest event's body

    def split(self, val_fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
        return split_documents(self.examples, val_fraction, seed, key=lambda e: e.key)

    def fingerprint(self) -> str:
        """Names the data (order-free): recorded with adapters and exported models."""
        return fingerprint_texts(sorted(e.key for e in self.examples))


def is_chat_file(paths: Sequence[PathLike]) -> bool:
    return len(paths) == 1 and Path(paths[0]).suffix.lower() == ".jsonl" and Path(paths[0]).is_file()


def read_sources(paths: Sequence[PathLike], on_file: Optional[Callable[[FileReport], None]] = None,
                 options: Optional[IngestOptions] = None) -> Sources:
    """Read the documents or the chat file. Raises IngestError / DatasetError when nothing is usable."""
    paths = [Path(p).expanduser() for p in paths]
    if is_chat_file(paths):
        path = paths[0]
        examples = [Example(key=json.dumps(messages, sort_keys=True, ensure_ascii=False), messages=messages,
                            source=f"{path}:{line}") for line, messages in read_chat_jsonl(path)]
        if not examples:
            raise DatasetError(path, "holds no conversations")
        report = {"kind": "chat", "complete": True, "files_used": 1, "files_skipped": 0,
                  "conversations": len(examples),
                  "files": [{"path": str(path), "status": "used", "conversations": len(examples)}],
                  "summary": f"{len(examples)} conversation{'s' if len(examples) != 1 else ''} from {path.name}"}
        return Sources("chat", examples, report)
    ingestor = Ingestor(paths, options, on_file=on_file)
    examples = [Example(key=doc.sha256, text=doc.text, source=str(doc.path)) for doc in ingestor.documents()]
    report = {"kind": "documents", **ingestor.report.to_dict(include_files=True)}
    if not examples:
        raise DatasetError(paths[0] if len(paths) == 1 else None,
                           f"no usable documents ({ingestor.report.summary()})")
    return Sources("documents", examples, report)


# -- tokens -------------------------------------------------------------------------------
# A tokenizer's working memory grows with the text given to it in one call (a 20 MB file took
# 4-5 GB, and one tokenizer aborted in a native allocation), so a long document is encoded in
# pieces of at most this many characters, cut after a newline (else a space) where there is
# one. Tokens at a cut may differ from a whole-text encoding (one cut per ~60k tokens).
TOKENIZE_PIECE_CHARS = 256_000


def text_pieces(text: str, limit: int = TOKENIZE_PIECE_CHARS) -> list[str]:
    """`text` cut into consecutive pieces of at most `limit` characters, joined they are `text`;
    each cut is after the last newline in the piece, else after its last space, else at `limit`."""
    pieces, start = [], 0
    while len(text) - start > limit:
        end = start + limit
        cut = text.rfind("\n", start + limit // 2, end)
        if cut < 0:
            cut = text.rfind(" ", start + limit // 2, end)
        end = cut + 1 if cut >= 0 else end
        pieces.append(text[start:end])
        start = end
    pieces.append(text[start:])
    return pieces


def encode_in_pieces(text: str, tokenizer: Any, limit: int = TOKENIZE_PIECE_CHARS) -> list[int]:
    """tokenizer.encode over text_pieces(text), concatenated: bounded memory for any length."""
    ids: list[int] = []
    for piece in text_pieces(text, limit):
        ids.extend(tokenizer.encode(piece))
    return ids


def _document_ids(text: str, tokenizer: Any) -> list[int]:
    ids = encode_in_pieces(text, tokenizer)
    if getattr(tokenizer, "add_bos", False) and tokenizer.bos_id is not None:
        ids = [tokenizer.bos_id] + ids
    return ids + [tokenizer.eos_id]


def tokenize(examples: Sequence[Example], tokenizer: Any) -> tuple[list[int], list[bool]]:
    """All examples as one stream of ids and its loss mask (True: a token to predict)."""
    if tokenizer.eos_id is None:
        raise DatasetError(None, "the model's tokenizer has no end-of-text token to separate documents")
    ids: list[int] = []
    mask: list[bool] = []
    for example in examples:
        if example.messages is not None:
            try:
                e_ids, e_mask = render_chat_example(example.messages, tokenizer)
            except ValueError as exc:
                raise DatasetError(None, f"{example.source}: {exc}") from exc
        else:
            e_ids = _document_ids(example.text or "", tokenizer)
            e_mask = [True] * len(e_ids)
        ids.extend(e_ids)
        mask.extend(e_mask)
    return ids, mask


def pack_with_tail(ids: Sequence[int], mask: Sequence[bool], block_size: int, pad_id: int) -> Optional[TokenBlocks]:
    """Rows of block_size + 1 overlapping by one token (as pack_masked), plus the tail padded
    with `pad_id` and masked out. None when there are fewer than two tokens."""
    if block_size <= 0:
        raise ValueError(f"block_size must be positive, got {block_size}")
    n = len(ids)
    if n < 2:
        return None
    rows = -(-(n - 1) // block_size)  # ceil: every token after the first is a target once
    length = rows * block_size + 1
    tokens = torch.full((length,), pad_id, dtype=torch.long)
    tokens[:n] = torch.tensor(list(ids), dtype=torch.long)
    keep = torch.zeros(length, dtype=torch.bool)
    keep[:n] = torch.tensor(list(mask), dtype=torch.bool)
    # (length,) -> (rows, block_size + 1), each row starting where the previous one's targets end
    return TokenBlocks(tokens.unfold(0, block_size + 1, block_size).clone(),
                       keep.unfold(0, block_size + 1, block_size).clone())


def count_targets(blocks: Optional[TokenBlocks]) -> int:
    if blocks is None:
        return 0
    if blocks.loss_mask is None:
        return blocks.tokens[:, 1:].numel()
    return int(blocks.loss_mask[:, 1:].sum())


@dataclass
class PreparedData:
    kind: str
    train: Optional[TokenBlocks]
    val: Optional[TokenBlocks]
    n_train: int  # examples (documents or conversations)
    n_val: int
    fingerprint: str

    def to_event(self) -> dict[str, Any]:
        return {"event": "dataset", "kind": self.kind, "train_examples": self.n_train, "val_examples": self.n_val,
                "train_blocks": len(self.train) if self.train is not None else 0,
                "val_blocks": len(self.val) if self.val is not None else 0,
                "train_tokens": count_targets(self.train), "val_tokens": count_targets(self.val),
                "block_size": (self.train or self.val).block_size if (self.train or self.val) else None,
                "fingerprint": self.fingerprint}


def prepare_blocks(sources: Sources, tokenizer: Any, block_size: int, val_fraction: float, seed: int,
                   use_all: bool = False) -> PreparedData:
    """Split (unless `use_all`: everything is validation, for eval --all) and pack both sides."""
    if use_all:
        train_ex, val_ex = [], list(sources.examples)
    else:
        train_ex, val_ex = sources.split(val_fraction, seed)
    pad = tokenizer.eos_id if tokenizer.eos_id is not None else 0
    train = pack_with_tail(*tokenize(train_ex, tokenizer), block_size, pad) if train_ex else None
    val = pack_with_tail(*tokenize(val_ex, tokenizer), block_size, pad) if val_ex else None
    for name, blocks in (("training", train), ("validation", val)):
        if blocks is not None and count_targets(blocks) == 0:
            log.warning("the %s examples have no target tokens", name)
    if val is not None and count_targets(val) == 0:
        val = None
    return PreparedData(sources.kind, train, val, len(train_ex), len(val_ex), sources.fingerprint())
