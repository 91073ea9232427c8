"""Per-token log-probabilities: recorded while generating, and scored over a given text.

`logprob` is always the raw log-softmax of the model's logits (no temperature, penalty or
filter), as the OpenAI API reports it. `sampled_prob` is the probability the sampler itself
gave the chosen token under the transforms in force (repetition and additive penalties,
temperature, top-k / top-p / min-p); for greedy decoding it is 1.0, the argmax being certain.
`score_tokens` is teacher forcing: the log-probability of each token given the ones before
it, fed in chunks through the KV cache so a long text needs memory for one chunk's logits only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import torch

from ..text.byte_level import char_to_byte

SCORE_CHUNK = 256  # tokens per forward pass when scoring: (chunk, vocab) float32 logits at a time


@dataclass
class TokenAlternative:
    id: int
    token: str  # the token decoded on its own (an incomplete UTF-8 character shows as U+FFFD)
    bytes: bytes  # its raw bytes
    logprob: float  # raw log-softmax of the logits

    def to_json(self) -> dict:
        """The OpenAI shape: bytes as a list of ints."""
        return {"token": self.token, "bytes": list(self.bytes), "id": self.id, "logprob": self.logprob}


@dataclass
class TokenLogprob:
    id: int
    token: str
    bytes: bytes
    logprob: float
    sampled_prob: Optional[float] = None  # the sampler's probability (1.0 greedy); None when scored
    top: list[TokenAlternative] = field(default_factory=list)  # the K most probable, best first

    def to_json(self) -> dict:
        return {"token": self.token, "bytes": list(self.bytes), "id": self.id, "logprob": self.logprob,
                "top": [alt.to_json() for alt in self.top]}

    def to_dict(self) -> dict:
        return asdict(self)


class TokenText:
    """A token id's text and raw bytes, cached per id.

    `tokenizer`: anything with `backend` (a `tokenizers.Tokenizer`) and `decode(ids, ...)`.
    Byte-level vocabularies (GPT-2, Llama 3, SmolLM) map each character of the piece back to
    its byte; SentencePiece byte-fallback pieces `<0xNN>` are that byte; anything else (a whole
    piece, a special token) is the UTF-8 of its decoded text.
    """

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer
        backend = getattr(tokenizer, "backend", None)
        decoder = getattr(backend, "decoder", None) if backend is not None else None
        self._byte_level = decoder is not None and "ByteLevel" in type(decoder).__name__ + repr(decoder)
        self._table = char_to_byte() if self._byte_level else {}
        self._special = set()
        if backend is not None:
            self._special = {t.content for t in backend.get_added_tokens_decoder().values() if t.special}
        self._cache: dict[int, tuple[str, bytes]] = {}

    def __call__(self, token_id: int) -> tuple[str, bytes]:
        hit = self._cache.get(token_id)
        if hit is None:
            hit = self._cache[token_id] = self._compute(token_id)
        return hit

    def _compute(self, token_id: int) -> tuple[str, bytes]:
        text = self._tokenizer.decode([token_id], skip_special_tokens=False)
        backend = getattr(self._tokenizer, "backend", None)
        piece = backend.id_to_token(token_id) if backend is not None else None
        if piece is None or piece in self._special:
            return text, text.encode("utf-8")
        if self._byte_level and all(ch in self._table for ch in piece):
            return text, bytes(self._table[ch] for ch in piece)
        if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            try:
                return text, bytes([int(piece[3:5], 16)])
            except ValueError:
                pass
        return text, text.encode("utf-8")


class LogprobRecorder:
    """Turns one decode step's logits into a `TokenLogprob` (what the Engine calls per token)."""

    def __init__(self, tokenizer, top_k: int) -> None:
        if top_k < 0:
            raise ValueError(f"the number of top log-probabilities must be 0 or more, got {top_k}")
        self.top_k = top_k
        self.text = TokenText(tokenizer)

    def record(self, logits: torch.Tensor, token: int, sampled_prob: Optional[float]) -> TokenLogprob:
        """`logits` (vocab,) the model's raw logits for this step; `token` the one chosen."""
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        return self._entry(logprobs, token, sampled_prob)

    def _entry(self, logprobs: torch.Tensor, token: int, sampled_prob: Optional[float]) -> TokenLogprob:
        text, raw = self.text(token)
        top: list[TokenAlternative] = []
        if self.top_k:
            values, ids = torch.topk(logprobs, min(self.top_k, logprobs.shape[-1]))
            for value, alt in zip(values.tolist(), ids.tolist()):
                alt_text, alt_raw = self.text(alt)
                top.append(TokenAlternative(id=alt, token=alt_text, bytes=alt_raw, logprob=value))
        return TokenLogprob(id=token, token=text, bytes=raw, logprob=float(logprobs[token]),
                            sampled_prob=sampled_prob, top=top)


@torch.inference_mode()
def score_tokens(model, ids: Sequence[int], *, tokenizer=None, top_k: int = 0, chunk: int = SCORE_CHUNK,
                 start: int = 0) -> list[TokenLogprob]:
    """The log-probability of each of ids[1:] given the tokens before it (teacher forcing).

    Returns entries for ids[start + 1:], entry i for ids[start + 1 + i] (the first token has no
    context to be predicted from). The model's KV cache (already set up, as the Engine does) is
    overwritten from position `start` to len(ids) - 2; positions before `start` must already
    hold ids[:start] (a cached prefix; 0 scores from scratch). `tokenizer` fills in each token's text and bytes ("" and
    b"" without one). Memory: one chunk of logits at a time, (chunk, vocab) floats.
    """
    ids = list(ids)
    if chunk <= 0:
        raise ValueError(f"chunk must be positive, got {chunk}")
    limit = getattr(model.config, "max_seq_len", None)
    cache_len = getattr(model, "cache_len", None) or limit
    if cache_len is not None and len(ids) > cache_len:
        raise ValueError(f"the text has {len(ids)} tokens but the context holds {cache_len}; "
                         f"score it in windows of at most {cache_len} tokens")
    if not 0 <= start < max(len(ids), 1):
        raise ValueError(f"start must be in [0, {len(ids)}), got {start}")
    recorder = LogprobRecorder(tokenizer, top_k) if tokenizer is not None else None
    device = next(model.parameters()).device
    out: list[TokenLogprob] = []
    position = start
    while position < len(ids) - 1:
        piece = ids[position:min(position + chunk, len(ids) - 1)]  # the last token predicts nothing
        tokens = torch.tensor([piece], dtype=torch.long, device=device)
        positions = torch.arange(position, position + len(piece), device=device)
        logits = model(tokens, positions)  # (1, T, vocab)
        logprobs = torch.log_softmax(logits[0].float().cpu(), dim=-1)  # (T, vocab)
        for row, target in zip(logprobs, ids[position + 1:position + 1 + len(piece)]):
            if recorder is not None:
                out.append(recorder._entry(row, target, None))
            else:
                out.append(TokenLogprob(id=target, token="", bytes=b"", logprob=float(row[target])))
        position += len(piece)
    return out
