"""Reranking passages by the model itself: how likely is the user's question after each passage?

UPR (Sachan et al. 2022, "Improving Passage Retrieval with Zero-Shot Question Generation"):
the passage that best "explains" a question is the one after which the model finds that
question most probable. For each candidate the model reads

    Passage: <the passage as the prompt would show it>
    Question about the passage: <the user's question>

and the log-probability of the question's tokens given the rest is the passage's score (mean
over the question's tokens). Words of the question found in most of the candidates (the
library's subject: "Halvorsen Lenswerks" in every passage of a company history) are left out of
the mean: the model copies a name it has just read, so they made whichever passage repeats the
name win (measured: the generic passages rose to the top, 4/10 where the words alone gave 6/10).
The passages and the question are encoded as text (`encode_text`), never as control tokens.

Cost: one batched forward pass over the candidates (right-padded: a causal model's earlier
positions never see the padding), in pieces of at most `max_batch_tokens` padded tokens so the
logits' memory stays bounded; no generation. The engine's KV cache is set aside for the pass
and put back untouched (`_without_cache`), so the chat's cached prefix stays valid.
"""

from __future__ import annotations

import logging
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from ..text.prompt import encode_text

log = logging.getLogger(__name__)

PASSAGE_LABEL = "Passage: "
QUESTION_LABEL = "\nQuestion about the passage: "
MAX_BATCH_TOKENS = 2048  # padded tokens per forward (the logits are only the question's: (B * Q, vocab))
MAX_PASSAGE_TOKENS = 384  # a longer passage is cut (its end) for scoring only
SHARED_FRACTION = 0.5  # a question word in at least this share of the candidates does not count


@dataclass(frozen=True)
class RerankCost:
    candidates: int
    tokens: int  # tokens run through the model, padding included
    seconds: float


_WORD = re.compile(r"\w+")
_PIECE = re.compile(r"\s*\S+")


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def question_pieces(tokenizer, question: str, passages: Sequence[str],
                    shared_fraction: float = SHARED_FRACTION) -> tuple[list[int], list[bool]]:
    """(the question's ids, for each id whether it counts in the score). The question is encoded
    one whitespace-led piece at a time, so each token belongs to one word; a piece whose words
    all occur in at least `shared_fraction` of the passages (and in two or more) does not count.
    When nothing would count, everything does."""
    seen = [_words(p) for p in passages]
    needed = max(2, shared_fraction * len(passages))
    ids: list[int] = []
    counts: list[bool] = []
    for piece in _PIECE.findall(question):
        words = _words(piece)
        shared = bool(words) and all(sum(w in s for s in seen) >= needed for w in words)
        piece_ids = encode_text(tokenizer, piece)
        ids += piece_ids
        counts += [not shared] * len(piece_ids)
    if not any(counts):
        counts = [True] * len(ids)
    return ids, counts


def scoring_ids(tokenizer, passage: str, question: str) -> tuple[list[int], int]:
    """(ids, where the question's tokens start) for one candidate. The pieces are encoded apart
    so the question's tokens are the same for every passage."""
    head = encode_text(tokenizer, PASSAGE_LABEL + passage)[:MAX_PASSAGE_TOKENS]
    head += encode_text(tokenizer, QUESTION_LABEL)
    tail, _counts = question_pieces(tokenizer, question, [])
    return head + tail, len(head)


@contextmanager
def _without_cache(model) -> Iterator[None]:
    """The model runs plain causal attention over whole sequences (any batch size) inside; its
    KV cache objects are set aside and put back as they were (their contents untouched)."""
    blocks = list(getattr(model, "layers", []))
    saved = [block.attn.kv_cache for block in blocks]
    saved_len = getattr(model, "cache_len", 0)
    for block in blocks:
        block.attn.kv_cache = None
    model.cache_len = 0
    try:
        yield
    finally:
        for block, cache in zip(blocks, saved):
            block.attn.kv_cache = cache
        model.cache_len = saved_len


def supports_batched_scoring(model) -> bool:
    """A text Transformer of ours (model.transformer): layers with attention caches to set aside."""
    layers = getattr(model, "layers", None)
    return bool(layers) and all(hasattr(getattr(b, "attn", None), "kv_cache") for b in layers) \
        and hasattr(model, "cache_len")


@torch.inference_mode()
def _score_batch(model, sequences: Sequence[tuple[list[int], int]], pad_id: int,
                 counts: Sequence[bool]) -> list[float]:
    """Mean log-probability of each sequence's tokens from its start index on (those whose
    `counts` entry is True; the same question ends every sequence), one forward."""
    longest = max(len(ids) for ids, _ in sequences)
    device = next(model.parameters()).device
    tokens = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    predicting = torch.zeros((len(sequences), longest), dtype=torch.bool)  # positions whose next token is scored
    for row, (ids, start) in enumerate(sequences):
        tokens[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        predicting[row, start - 1:len(ids) - 1] = True  # position t predicts token t + 1
    with _without_cache(model):
        logits = model(tokens.to(device), logits_at=predicting.to(device))  # (N, vocab), rows in row-major order
    logprobs = torch.log_softmax(logits.float(), dim=-1)  # (N, vocab)
    keep = torch.tensor(list(counts), dtype=torch.bool, device=logprobs.device)  # (Q,)
    scores = []
    first = 0
    for ids, start in sequences:
        targets = torch.tensor(ids[start:], dtype=torch.long, device=logprobs.device)  # (Q,)
        predicted = logprobs[first:first + len(targets)]  # (Q, vocab)
        first += len(targets)
        token_logprobs = predicted.gather(1, targets[:, None])[:, 0]  # (Q,)
        scores.append(float(token_logprobs[keep].mean()))
    return scores


def question_scores(engine, question: str, passages: Sequence[str],
                    max_batch_tokens: int = MAX_BATCH_TOKENS) -> tuple[list[float], RerankCost]:
    """(mean log p(question | passage) for each passage, the cost). Empty passages list: ([], ...).

    Runs on the engine's model; a model we cannot batch (a vision decoder) is scored one passage at
    a time through `engine.score`, which leaves the cache holding the last one (the next prompt is
    prefilled whole)."""
    started = time.perf_counter()
    tokenizer = engine.tokenizer
    if not question.strip():
        raise ValueError("reranking needs a question")
    sequences = [scoring_ids(tokenizer, p, question) for p in passages]
    _ids, counts = question_pieces(tokenizer, question, passages)
    model = engine.model
    scores: list[float] = []
    ran = 0
    if sequences and supports_batched_scoring(model):
        pad_id = min(getattr(tokenizer, "eos_ids", None) or {0})
        batch: list[tuple[list[int], int]] = []
        for sequence in sequences:
            longest = max([len(sequence[0])] + [len(ids) for ids, _ in batch])
            if batch and longest * (len(batch) + 1) > max_batch_tokens:
                scores += _score_batch(model, batch, pad_id, counts)
                ran += max(len(ids) for ids, _ in batch) * len(batch)
                batch = []
            batch.append(sequence)
        if batch:
            scores += _score_batch(model, batch, pad_id, counts)
            ran += max(len(ids) for ids, _ in batch) * len(batch)
    else:
        for ids, start in sequences:
            scored = engine.score(ids)
            tail = [entry.logprob for entry, count in zip(scored[start - 1:], counts) if count]
            scores.append(sum(tail) / max(len(tail), 1))
            ran += len(ids)
    cost = RerankCost(len(passages), ran, time.perf_counter() - started)
    log.info("reranked %d passages: %d tokens in %.2f s", cost.candidates, cost.tokens, cost.seconds)
    return scores, cost


def rerank_order(scores: Sequence[float]) -> list[int]:
    """Indexes of `scores` best first; ties keep the earlier (the search's better) place."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def write_draft(engine, question: str, max_new_tokens: int, system_prompt: str = "") -> tuple[str, float]:
    """(a short closed-book answer to `question`, seconds): HyDE's hypothetical document (Gao et
    al. 2022). Greedy, so the same question drafts the same words. Its words join the search
    (engine.retrieval), never the prompt: a wrong draft can only add candidates."""
    from ..sampling_settings import SamplingSettings
    from ..text.prompt import render_and_encode

    started = time.perf_counter()
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + \
        [{"role": "user", "content": question}]
    ids = render_and_encode(engine.tokenizer, messages, add_generation_prompt=True).ids
    settings = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=max_new_tokens)
    text = engine.generate(ids, settings).text.strip()
    seconds = time.perf_counter() - started
    log.info("draft for the search (%d tokens max) in %.2f s: %r", max_new_tokens, seconds, text[:80])
    return text, seconds
