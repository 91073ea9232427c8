"""Turning a stream of token ids into a stream of text deltas.

`IncrementalDecoder` never emits half a UTF-8 character: a Chinese character or an emoji
split over several byte-level tokens comes out whole, once complete. `StopStringFilter`
holds back text that could be the start of a stop string, so a partial stop string is
never shown, and cuts the reply where a stop string appears.
"""

from __future__ import annotations

from typing import Optional, Sequence

REPLACEMENT = "\ufffd"


class IncrementalDecoder:
    """Decode ids one at a time; the concatenated deltas equal decoding all ids at once.

    Works on any object with `decode(ids) -> str`: it decodes a short window of recent ids
    and emits what grew, waiting while the window ends in an incomplete character.
    """

    def __init__(self, tokenizer, skip_special_tokens: bool = True) -> None:
        self._tokenizer = tokenizer
        self._skip = skip_special_tokens
        self._ids: list[int] = []
        self._prefix_offset = 0  # window start: ids before it are settled text
        self._read_offset = 0  # ids up to here have been emitted

    def _decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=self._skip)

    def push(self, token_id: int) -> str:
        """Add one id; return the new text it completes (possibly empty)."""
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix_offset:self._read_offset])
        full_text = self._decode(self._ids[self._prefix_offset:])
        if len(full_text) > len(prefix_text) and not full_text.endswith(REPLACEMENT):
            delta = full_text[len(prefix_text):]
            self._prefix_offset = self._read_offset
            self._read_offset = len(self._ids)
            return delta
        return ""

    def flush(self) -> str:
        """Whatever is still pending at the end (an incomplete character decodes as U+FFFD)."""
        prefix_text = self._decode(self._ids[self._prefix_offset:self._read_offset])
        full_text = self._decode(self._ids[self._prefix_offset:])
        self._prefix_offset = self._read_offset = len(self._ids)
        return full_text[len(prefix_text):]


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
