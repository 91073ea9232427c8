"""Turning a stream of token ids into a stream of text deltas.

`IncrementalDecoder` never emits half a UTF-8 character: a Chinese character or an emoji
split over several byte-level tokens comes out whole, once complete. Per token it is one
call of `tokenizers.decoders.DecodeStream` (Rust); ours is only what that cannot do: at the
end of a reply DecodeStream keeps an incomplete character to itself for good, where
`flush()` gives it as U+FFFD, so the deltas always add up to decoding all ids at once.
`StopStringFilter` holds back text that could be the start of a stop string, so a partial
stop string is never shown, and cuts the reply where a stop string appears (DecodeStream
knows nothing of stop strings).
"""

from __future__ import annotations

from typing import Optional, Sequence

from tokenizers.decoders import DecodeStream

REPLACEMENT = "\ufffd"
# Ids before the pending ones decoded with them at flush(), for the context a decoder needs
# (e.g. whether a SentencePiece token's leading space is kept).
FLUSH_CONTEXT = 4


class IncrementalDecoder:
    """Decode ids one at a time; the concatenated deltas (and flush()) equal decoding all ids.

    `tokenizer`: our Tokenizer, or anything with `backend` (a `tokenizers.Tokenizer`) and
    `decode(ids, skip_special_tokens)`.
    """

    def __init__(self, tokenizer, skip_special_tokens: bool = True) -> None:
        self._tokenizer = tokenizer
        self._skip = skip_special_tokens
        self._stream = DecodeStream(skip_special_tokens=skip_special_tokens)
        self._ids: list[int] = []
        self._pending = 0  # ids from here on are held by DecodeStream (an incomplete character)

    def push(self, token_id: int) -> str:
        """Add one id; return the new text it completes (possibly empty)."""
        self._ids.append(token_id)
        chunk = self._stream.step(self._tokenizer.backend, token_id)
        if chunk is None:
            return ""
        self._pending = len(self._ids)
        return chunk

    def flush(self) -> str:
        """Whatever is still pending at the end (an incomplete character decodes as U+FFFD);
        the stream starts afresh after it."""
        if self._pending == len(self._ids):
            return ""
        pending, start = self._pending, max(0, self._pending - FLUSH_CONTEXT)
        before = self._decode(self._ids[start:pending])
        full = self._decode(self._ids[start:])
        self._pending = len(self._ids)
        self._stream = DecodeStream(skip_special_tokens=self._skip)
        return full[len(before):] if full.startswith(before) else self._decode(self._ids[pending:])

    def _decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=self._skip)


class StopStringFilter:
    """Pass text through, holding back any tail that might begin a stop string."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._pending = ""
        self.stopped_on: Optional[str] = None

    def push(self, text: str) -> str:
        """Return the text that is safe to show; sets `stopped_on` when a stop string appears."""
        if not self._stops:
            return text
        self._pending += text
        hits = [(self._pending.find(s), s) for s in self._stops if s in self._pending]
        if hits:
            index, stop = min(hits)
            self.stopped_on = stop
            shown, self._pending = self._pending[:index], ""
            return shown
        hold = 0
        for stop in self._stops:
            # longest suffix of pending that is a proper prefix of this stop string
            for n in range(min(len(stop) - 1, len(self._pending)), 0, -1):
                if self._pending.endswith(stop[:n]):
                    hold = max(hold, n)
                    break
        shown = self._pending[:len(self._pending) - hold]
        self._pending = self._pending[len(shown):]
        return shown

    def flush(self) -> str:
        """At the end of a reply the held-back text was not a stop string after all."""
        shown, self._pending = self._pending, ""
        return shown
