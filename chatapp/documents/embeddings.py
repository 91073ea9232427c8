"""Dense retrieval with a static-embedding model (a model2vec folder), read by our own code.

A model2vec folder holds `config.json`, `model.safetensors` (an `embeddings` tensor
[vocab, dim]; optionally `weights` [vocab] and `mapping` [vocab] from vocabulary quantization)
and `tokenizer.json`. A text's vector is the mean of its tokens' vectors, as model2vec's
`StaticModel.encode` computes it: tokens without special tokens, the unknown token left out,
the text first cut to `max_length` x the vocabulary's median token length characters and then
to `max_length` tokens (config, default 512), each token's vector times its weight where
`weights` exists, L2-normalised when the config says `normalize` (tests/documents/
test_embeddings.py checks equality with model2vec itself; the `model2vec` package is a
test-only reference). For search the vectors are always L2-normalised: ranking is by cosine.

The library (library.py) keeps its vectors in its SQLite file, one row per file
(`file_vectors`: the file's chunk ids and their vectors as float32 blobs), fills in the files
that lack one in bounded batches (`embed_missing`), and scans them in bounded batches when
searching (`dense_ranking`): never all vectors in memory at once. Measured on 12,000 chunks of
dimension 256 (this 2-core machine, shared): one row per chunk scanned in 0.26 s, one row per
file in 0.13 s of which 0.12 s was numpy converting float16 to float32; float32 rows scan in
about 0.01 s, so the vectors are stored as float32 (twice float16's size).

    embedder = load_static_embedder("~/models/potion-base-8M")   # EmbeddingModelError if wrong
    vectors = embedder.encode(["who founded the guild?"])        # [1, dim] float32
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)

CONFIG_FILE, TENSOR_FILE, TOKENIZER_FILE = "config.json", "model.safetensors", "tokenizer.json"
EMBEDDINGS_TENSOR = "embeddings"
DEFAULT_MAX_LENGTH = 512  # model2vec's default when the config names none
MAX_CONFIG_BYTES = 1 << 20
MAX_TOKENIZER_BYTES = 256 << 20
MAX_TENSOR_BYTES = 8 << 30  # a 2M-token x 1024-dim float32 table; static models are far smaller
EMBED_BATCH = 256  # chunks embedded and written per transaction
SCAN_BATCH = 4096  # vectors read and scored at a time when searching
VECTOR_DTYPE = np.dtype("<f4")


class EmbeddingModelError(Exception):
    """A folder that is not a usable static-embedding model (shown as one line)."""


@dataclass(frozen=True, eq=False)
class StaticEmbedder:
    folder: Path
    embeddings: np.ndarray  # [rows, dim]
    tokenizer: object  # tokenizers.Tokenizer, truncation set to max_length, no padding
    normalize: bool
    max_length: Optional[int]
    median_token_length: int
    unk_id: Optional[int]
    weights: Optional[np.ndarray] = None  # [vocab]
    mapping: Optional[np.ndarray] = None  # [vocab] -> row of `embeddings`
    fingerprint: str = ""  # changes when the folder's files do: stored vectors are then stale

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def encode(self, texts: Sequence[str], normalize: Optional[bool] = None) -> np.ndarray:
        """[len(texts), dim] float32: model2vec's vectors for `texts` (normalised as its config
        says unless `normalize` is given); a text with no known token gets zeros."""
        normalize = self.normalize if normalize is None else normalize
        if self.max_length is not None:
            cut = self.max_length * self.median_token_length
            texts = [t[:cut] for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, encoding in enumerate(self.tokenizer.encode_batch(list(texts), add_special_tokens=False)):
            ids = [t for t in encoding.ids if t != self.unk_id] if self.unk_id is not None else encoding.ids
            if not ids:
                continue
            ids = np.asarray(ids, dtype=np.int64)
            rows = self.embeddings[self.mapping[ids] if self.mapping is not None else ids].astype(np.float32)
            if self.weights is not None:
                rows = rows * self.weights[ids].astype(np.float32)[:, None]
            out[i] = rows.mean(axis=0)  # [tokens, dim] -> [dim]
        return _l2_normalised(out) if normalize else out

    def search_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), dim] float32, L2-normalised (cosine similarity is then a dot product)."""
        return self.encode(texts, normalize=True)


def _l2_normalised(vectors: np.ndarray) -> np.ndarray:
    return vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-32)


def _bounded_file(folder: Path, name: str, limit: int) -> Path:
    path = folder / name
    if not path.is_file():
        raise EmbeddingModelError(f"{folder}: not a static-embedding model folder: {name} is missing "
                                  f"(a model2vec folder has {CONFIG_FILE}, {TENSOR_FILE} and {TOKENIZER_FILE})")
    if path.stat().st_size > limit:
        raise EmbeddingModelError(f"{path}: {path.stat().st_size:,} bytes is larger than the {limit:,} allowed")
    return path


def folder_fingerprint(folder: os.PathLike | str) -> str:
    """A digest of the model files' sizes and modification times."""
    folder = Path(folder)
    parts = []
    for name in (CONFIG_FILE, TENSOR_FILE, TOKENIZER_FILE):
        try:
            info = (folder / name).stat()
        except OSError:
            parts.append(f"{name}:missing")
        else:
            parts.append(f"{name}:{info.st_size}:{info.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def load_static_embedder(folder: os.PathLike | str) -> StaticEmbedder:
    """The model2vec folder `folder`, checked; EmbeddingModelError naming what is wrong."""
    from safetensors import safe_open
    from tokenizers import Tokenizer

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise EmbeddingModelError(f"{folder}: no such folder (an embedding model is a model2vec folder)")
    config_path = _bounded_file(folder, CONFIG_FILE, MAX_CONFIG_BYTES)
    tensor_path = _bounded_file(folder, TENSOR_FILE, MAX_TENSOR_BYTES)
    tokenizer_path = _bounded_file(folder, TOKENIZER_FILE, MAX_TOKENIZER_BYTES)
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise EmbeddingModelError(f"{config_path}: not readable JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise EmbeddingModelError(f"{config_path}: expected a JSON object")
    try:
        with safe_open(str(tensor_path), framework="numpy") as tensors:
            names = set(tensors.keys())
            if EMBEDDINGS_TENSOR not in names:
                raise EmbeddingModelError(
                    f"{tensor_path}: no '{EMBEDDINGS_TENSOR}' tensor (it has: {', '.join(sorted(names)) or 'none'}); "
                    "a static-embedding model2vec folder is needed")
            embeddings = tensors.get_tensor(EMBEDDINGS_TENSOR)
            weights = tensors.get_tensor("weights") if "weights" in names else None
            mapping = tensors.get_tensor("mapping") if "mapping" in names else None
    except EmbeddingModelError:
        raise
    except Exception as exc:  # safetensors raises its own error types for a damaged header
        raise EmbeddingModelError(f"{tensor_path}: not a readable safetensors file ({exc})") from exc
    if embeddings.ndim != 2 or 0 in embeddings.shape:
        raise EmbeddingModelError(f"{tensor_path}: '{EMBEDDINGS_TENSOR}' has shape {list(embeddings.shape)}, "
                                  "expected [vocabulary, dimension]")
    if embeddings.dtype.kind not in "fi":
        raise EmbeddingModelError(f"{tensor_path}: '{EMBEDDINGS_TENSOR}' of type {embeddings.dtype} is not numeric")
    dim = int(embeddings.shape[1])
    declared = config.get("hidden_dim")
    if declared is not None and declared != dim:
        raise EmbeddingModelError(f"{folder}: dimension mismatch: {CONFIG_FILE} says hidden_dim {declared}, "
                                  f"'{EMBEDDINGS_TENSOR}' has {dim}")
    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
    except Exception as exc:  # tokenizers raises a bare Exception for a malformed file
        raise EmbeddingModelError(f"{tokenizer_path}: not a readable tokenizer ({exc})") from exc
    vocab = tokenizer.get_vocab()
    size = max(vocab.values()) + 1 if vocab else 0
    if mapping is not None:
        if (mapping.ndim != 1 or mapping.dtype.kind not in "iu" or len(mapping) < size
                or (len(mapping) and (int(mapping.max()) >= len(embeddings) or int(mapping.min()) < 0))):
            raise EmbeddingModelError(f"{tensor_path}: 'mapping' does not map the tokenizer's {size} tokens "
                                      f"to the {len(embeddings)} vectors")
        mapping = mapping.astype(np.int64)
    elif len(embeddings) < size:
        raise EmbeddingModelError(f"{folder}: dimension mismatch: the tokenizer has {size} tokens, "
                                  f"'{EMBEDDINGS_TENSOR}' only {len(embeddings)} rows")
    if weights is not None and (weights.ndim != 1 or len(weights) < size):
        raise EmbeddingModelError(f"{tensor_path}: 'weights' has shape {list(weights.shape)}, "
                                  f"expected one weight for each of the {size} tokens")
    max_length = config.get("max_length", DEFAULT_MAX_LENGTH)
    if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
        raise EmbeddingModelError(f"{config_path}: max_length {max_length!r} is not a positive integer")
    tokenizer.no_padding()
    if max_length is None:
        tokenizer.no_truncation()
    else:
        tokenizer.enable_truncation(max_length)
    lengths = [len(token) for token, _id in sorted(vocab.items(), key=lambda kv: kv[1])]
    return StaticEmbedder(
        folder=folder.resolve(), embeddings=embeddings, tokenizer=tokenizer,
        normalize=bool(config.get("normalize", False)), max_length=max_length,
        median_token_length=int(np.median(lengths)) if lengths else 1, unk_id=_unk_id(tokenizer),
        weights=weights, mapping=mapping, fingerprint=folder_fingerprint(folder))


def _unk_id(tokenizer) -> Optional[int]:
    """The unknown token's id, which model2vec leaves out of a text's tokens (word-level vocabularies)."""
    model = tokenizer.model
    if hasattr(model, "unk_token"):
        token = model.unk_token
        return None if token is None else tokenizer.token_to_id(token)
    return json.loads(tokenizer.to_str())["model"].get("unk_id")


# -- vectors in the library's SQLite file -------------------------------------------------------

def to_blob(vectors: np.ndarray) -> bytes:
    return np.ascontiguousarray(vectors, dtype=VECTOR_DTYPE).tobytes()


def embed_missing(conn: sqlite3.Connection, transaction: Callable, library_id: int, embedder: StaticEmbedder,
                  progress: Optional[Callable[[int, int], None]] = None,
                  cancel: Optional[threading.Event] = None, batch: int = EMBED_BATCH) -> tuple[int, bool]:
    """(vectors written, cancelled): the vectors of each file of the library that has none (a
    changed file's chunks are new, so its row went with them: library.py's triggers), embedded
    `batch` chunks at a time. Files are written together once their chunks are embedded, one
    transaction per group of about `batch` chunks (`transaction()` as LibraryStore's): in memory
    at once, one group's texts and vectors."""
    missing = """FROM files LEFT JOIN file_vectors ON file_vectors.file_id = files.id
                 WHERE files.library_id = ? AND files.status = 'used' AND file_vectors.file_id IS NULL"""
    (total,) = conn.execute(f"SELECT count(*) FROM chunks WHERE file_id IN (SELECT files.id {missing})",
                            (library_id,)).fetchone()
    done, after = 0, -1
    while True:
        group: list[tuple[int, list[int], list[str]]] = []  # (file id, chunk ids, texts)
        texts = 0
        while texts < batch:
            row = conn.execute(f"SELECT files.id {missing} AND files.id > ? ORDER BY files.id LIMIT 1",
                               (library_id, after)).fetchone()
            if row is None:
                break
            after = row[0]
            chunks = conn.execute("SELECT id, text FROM chunks WHERE file_id = ? ORDER BY ordinal",
                                  (after,)).fetchall()
            group.append((after, [c for c, _t in chunks], [t for _c, t in chunks]))
            texts += len(chunks)
        if not group:
            return done, False
        all_texts = [t for _f, _ids, file_texts in group for t in file_texts]
        pieces = []
        for start in range(0, len(all_texts), batch):
            if cancel is not None and cancel.is_set():
                return done, True
            pieces.append(embedder.search_vectors(all_texts[start:start + batch]))  # [<=batch, dim]
            if progress is not None:
                progress(done + min(start + batch, len(all_texts)), total)
        vectors = np.concatenate(pieces) if pieces else np.zeros((0, embedder.dim), np.float32)
        rows, at = [], 0
        for file_id, ids, _texts in group:
            rows.append((file_id, library_id, np.asarray(ids, dtype="<i8").tobytes(),
                         to_blob(vectors[at:at + len(ids)])))
            at += len(ids)
        with transaction() as tx:
            tx.executemany("INSERT OR REPLACE INTO file_vectors (file_id, library_id, chunk_ids, vectors) "
                           "VALUES (?, ?, ?, ?)", rows)
        done += len(all_texts)


def dense_ranking(conn: sqlite3.Connection, library_id: int, query_vector: np.ndarray, depth: int,
                  batch: int = SCAN_BATCH) -> list[int]:
    """The ids of the library's `depth` chunks most similar to `query_vector` (normalised), best
    first (ties: the earlier chunk), one file's row at a time (its blobs scored where they lie,
    not copied), the best kept each `batch` scores. Vectors of another dimension (a model
    changed under the index) are an EmbeddingModelError."""
    dim = len(query_vector)
    query = np.asarray(query_vector, dtype=np.float32)
    best_ids = np.zeros(0, dtype=np.int64)
    best_scores = np.zeros(0, dtype=np.float32)
    pending_ids: list[np.ndarray] = []
    pending_scores: list[np.ndarray] = []
    pending = 0

    def keep_best() -> None:
        nonlocal best_ids, best_scores, pending
        best_ids = np.concatenate([best_ids, *pending_ids])
        best_scores = np.concatenate([best_scores, *pending_scores])
        pending_ids.clear()
        pending_scores.clear()
        pending = 0
        if len(best_ids) > depth:
            order = np.lexsort((best_ids, -best_scores))[:depth]  # by score, then id
            best_ids, best_scores = best_ids[order], best_scores[order]

    for chunk_ids, vectors in conn.execute("SELECT chunk_ids, vectors FROM file_vectors WHERE library_id = ?",
                                           (library_id,)):
        ids = np.frombuffer(chunk_ids, dtype="<i8")
        if len(vectors) != len(ids) * dim * VECTOR_DTYPE.itemsize:
            raise EmbeddingModelError(f"the library's stored vectors are not of dimension {dim}: "
                                      "re-index the library with its embedding model")
        pending_ids.append(ids)
        pending_scores.append(np.frombuffer(vectors, dtype=VECTOR_DTYPE).reshape(len(ids), dim) @ query)  # [n]
        pending += len(ids)
        if pending >= batch:
            keep_best()
    keep_best()
    order = np.lexsort((best_ids, -best_scores))[:depth]
    return best_ids[order].tolist()
