"""The generation loop: prefill once, then decode one token at a time with the KV cache.

`Engine` owns a loaded model's KV cache and remembers which token ids it holds, so a prompt
that extends the previous one (the next turn of a chat) only prefills what is new.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator, Optional, Sequence

import torch

from ..model.linear import configure_fast_paths
from .logprobs import SCORE_CHUNK, LogprobRecorder, TokenLogprob, score_tokens
from .sampling import SamplingSettings, sample_with_prob
from .stream import IncrementalDecoder, StopStringFilter

log = logging.getLogger(__name__)

FINISH_REASONS = ("eos", "stop", "length", "cancelled")


class ContextOverflowError(ValueError):
    """The prompt alone does not fit the context window."""


@dataclass
class GenerationStats:
    prompt_tokens: int = 0  # tokens in the whole prompt
    prefilled_tokens: int = 0  # of those, tokens actually run through the model (the rest were cached)
    new_tokens: int = 0
    ttft_s: float = 0.0
    prefill_tok_s: float = 0.0
    decode_tok_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Reply:
    """What a finished generation produced."""

    text: str = ""
    token_ids: list[int] = field(default_factory=list)  # new tokens, the final EOS included
    finish_reason: str = ""
    stats: GenerationStats = field(default_factory=GenerationStats)
    # one per entry of token_ids when asked for (generate_ids(..., logprobs=K)), else empty
    logprobs: list[TokenLogprob] = field(default_factory=list)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class Engine:
    """Runs one model: `stream(prompt_ids, settings)` yields text deltas, then `.reply` holds the result."""

    def __init__(self, model, tokenizer, context_len: Optional[int] = None,
                 eos_ids: Optional[set[int]] = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        limit = model.config.max_seq_len
        self.context_len = min(context_len or limit, limit)
        self.eos_ids = set(eos_ids if eos_ids is not None else tokenizer.eos_ids)
        self.device = next(model.parameters()).device
        self._cached: list[int] = []  # ids whose keys/values sit in the cache at 0..n-1
        self.reply = Reply()
        # Inference layout and paths: decoding split one block per thread, prefill on oneDNN.
        configure_fast_paths(model, decode_split=torch.get_num_threads(), onednn=True, column_major=True)
        model.setup_cache(batch_size=1, max_seq_len=self.context_len)

    @property
    def cached_tokens(self) -> int:
        """Positions of the context in use (the last prompt and reply)."""
        return len(self._cached)

    def reset(self) -> None:
        """Forget the cached prefix (the cache memory is kept and overwritten)."""
        self._cached = []

    @torch.inference_mode()
    def _forward(self, ids: Sequence[int], start: int) -> torch.Tensor:
        tokens = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
        positions = torch.arange(start, start + len(ids), device=self.device)
        step = getattr(self.model, "decode_step", None)  # compiled where the loader set one up
        if step is not None and len(ids) == 1:
            logits = step(tokens, positions, start)  # (1, 1, vocab)
        else:
            logits = self.model(tokens, positions, last_only=True)  # (1, 1, vocab)
        return logits[0, -1].float().cpu()

    def generate_ids(self, prompt_ids: Sequence[int], settings: SamplingSettings,
                     cancel: Optional[threading.Event] = None,
                     logprobs: Optional[int] = None, forced: Sequence[int] = ()) -> Iterator[int]:
        """Yield new token ids; sets self.reply.finish_reason/stats. EOS is yielded last if hit.

        `logprobs`: None records nothing; K >= 0 records a `TokenLogprob` per new token in
        `self.reply.logprobs` (its raw log-probability, the sampler's probability, and the K
        most probable alternatives), appended before the token is yielded.
        `forced`: the reply's first tokens, taken instead of sampled (their log-probabilities are
        still the model's; their sampler probability None): "continue from this alternative"."""
        prompt_ids = list(prompt_ids)
        if not prompt_ids:
            raise ValueError("the prompt is empty")
        if len(prompt_ids) >= self.context_len:
            raise ContextOverflowError(
                f"the prompt has {len(prompt_ids)} tokens but the context holds {self.context_len}")
        recorder = LogprobRecorder(self.tokenizer, logprobs) if logprobs is not None else None
        reply = self.reply = Reply()
        stats = reply.stats
        stats.prompt_tokens = len(prompt_ids)
        generator = None
        if not settings.greedy:
            generator = torch.Generator()
            generator.manual_seed(settings.seed if settings.seed is not None
                                  else int(torch.randint(0, 2**62, (1,))))
        history = list(prompt_ids)
        counts = None  # the reply's token counts, only for the OpenAI API's additive penalties
        if getattr(settings, "has_additive_penalties", False):
            counts = torch.zeros(self.model.config.vocab_size, dtype=torch.long)
        start = time.perf_counter()

        # Prefill: reuse the cached prefix; at least one token must run to produce logits.
        reuse = min(_common_prefix(self._cached, prompt_ids), len(prompt_ids) - 1)
        can_resume = getattr(self.model, "can_resume", None)
        if reuse and can_resume is not None and not can_resume(reuse):
            log.info("going back to position %d is past the sliding-window cache: running the prompt again", reuse)
            reuse = 0  # a sliding-window cache no longer holds the keys before `reuse`
        self._cached = self._cached[:reuse]
        logits = self._forward(prompt_ids[reuse:], reuse)
        self._cached = list(prompt_ids)
        stats.prefilled_tokens = len(prompt_ids) - reuse
        prefill_s = time.perf_counter() - start
        stats.prefill_tok_s = stats.prefilled_tokens / max(prefill_s, 1e-9)

        decode_start = None
        while True:
            if cancel is not None and cancel.is_set():
                reply.finish_reason = "cancelled"
                break
            window = history[-settings.repeat_last_n:] if settings.repeat_last_n > 0 else history
            if stats.new_tokens < len(forced):
                token, prob = int(forced[stats.new_tokens]), None
            else:
                token, prob = sample_with_prob(logits, settings, torch.tensor(window, dtype=torch.long),
                                               generator, counts)
            if counts is not None:
                counts[token] += 1
            if recorder is not None:
                reply.logprobs.append(recorder.record(logits, token, prob))
            if stats.new_tokens == 0:
                stats.ttft_s = time.perf_counter() - start
                decode_start = time.perf_counter()
            stats.new_tokens += 1
            reply.token_ids.append(token)
            history.append(token)
            yield token
            if token in self.eos_ids:
                reply.finish_reason = "eos"
                break
            if reply.finish_reason:  # set by the consumer, e.g. a stop string
                break
            position = len(self._cached)
            if stats.new_tokens >= settings.max_new_tokens or position >= self.context_len:
                reply.finish_reason = "length"
                break
            logits = self._forward([token], position)
            self._cached.append(token)
        if decode_start is not None and stats.new_tokens > 1:
            stats.decode_tok_s = (stats.new_tokens - 1) / max(time.perf_counter() - decode_start, 1e-9)

    def stream(self, prompt_ids: Sequence[int], settings: SamplingSettings,
               cancel: Optional[threading.Event] = None, logprobs: Optional[int] = None,
               forced: Sequence[int] = ()) -> Iterator[str]:
        """Yield text deltas of the reply; afterwards `self.reply` holds text, ids and stats
        (and with `logprobs`, per-token log-probabilities: see generate_ids)."""
        decoder = IncrementalDecoder(self.tokenizer, skip_special_tokens=True)
        stops = StopStringFilter(settings.stop)
        pieces: list[str] = []
        for token in self.generate_ids(prompt_ids, settings, cancel, logprobs, forced):
            if token in self.eos_ids:
                continue
            shown = stops.push(decoder.push(token))
            if shown:
                pieces.append(shown)
                yield shown
            if stops.stopped_on is not None:
                self.reply.finish_reason = "stop"
        if stops.stopped_on is None:
            tail = stops.push(decoder.flush()) + stops.flush()
            if tail:
                pieces.append(tail)
                yield tail
        self.reply.text = "".join(pieces)

    def generate(self, prompt_ids: Sequence[int], settings: SamplingSettings,
                 cancel: Optional[threading.Event] = None, logprobs: Optional[int] = None,
                 forced: Sequence[int] = ()) -> Reply:
        for _ in self.stream(prompt_ids, settings, cancel, logprobs, forced):
            pass
        return self.reply

    def score(self, ids: Sequence[int], top_k: int = 0, chunk: int = SCORE_CHUNK) -> list[TokenLogprob]:
        """The log-probability of each of ids[1:] given the ones before it (see
        logprobs.score_tokens); afterwards the cache holds ids[:-1]."""
        ids = list(ids)
        if len(ids) > self.context_len:
            raise ContextOverflowError(f"the text has {len(ids)} tokens but the context holds {self.context_len}")
        if len(ids) < 2:
            return []
        self._cached = []
        try:
            scored = score_tokens(self.model, ids, tokenizer=self.tokenizer, top_k=top_k, chunk=chunk, start=0)
        finally:
            self._cached = []
        self._cached = ids[:-1]
        return scored
