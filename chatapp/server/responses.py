"""OpenAI's response and stream-chunk shapes, built from the model thread's events.

Chat: `chat.completion` / `chat.completion.chunk`, log-probabilities as
{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}. Completions:
`text_completion`, log-probabilities as {"tokens", "token_logprobs", "top_logprobs",
"text_offset"}, with `echo` the prompt's tokens first (the first has no log-probability:
nothing comes before it). With `documents`, the passages used are `"sources"` beside
`"choices"` (in the last chunk when streaming).
"""

from __future__ import annotations

from typing import Optional

from .jobs import Delta, Outcome
from .protocol import JobRequest


def _chat_entry(entry) -> dict:
    return {"token": entry.token, "logprob": entry.logprob, "bytes": list(entry.bytes),
            "top_logprobs": [{"token": alt.token, "logprob": alt.logprob, "bytes": list(alt.bytes)}
                             for alt in entry.top]}


class ResponseWriter:
    def __init__(self, request: JobRequest, response_id: str, created: int) -> None:
        self.request = request
        self.id = response_id
        self.created = created
        self.texts: list[str] = []
        self.entries: list = []  # TokenLogprob of the completion, in order
        self._offset = 0  # completions: text offset of the next token

    # -- non-streaming --------------------------------------------------------------------
    def add(self, delta: Delta) -> None:
        self.texts.append(delta.text)
        self.entries.extend(delta.logprobs)

    def whole(self, outcome: Outcome) -> dict:
        self.entries.extend(outcome.logprobs)
        text = "".join(self.texts)
        usage = self._usage(outcome)
        if self.request.kind == "chat":
            choice = {"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                      "logprobs": self._chat_logprobs(self.entries), "finish_reason": outcome.finish_reason}
            body = {"id": self.id, "object": "chat.completion", "created": self.created,
                    "model": self.request.model, "system_fingerprint": None, "choices": [choice], "usage": usage}
        else:
            prefix = outcome.prompt_text if self.request.echo else ""
            choice = {"index": 0, "text": prefix + text, "finish_reason": outcome.finish_reason,
                      "logprobs": self._completion_logprobs(outcome, self.entries, with_prompt=True)}
            body = {"id": self.id, "object": "text_completion", "created": self.created,
                    "model": self.request.model, "system_fingerprint": None, "choices": [choice], "usage": usage}
        if self.request.documents is not None:
            body["sources"] = [s.to_dict() for s in outcome.sources]
        return body

    # -- streaming ------------------------------------------------------------------------
    def _chunk(self, choice: dict, **extra) -> dict:
        kind = "chat.completion.chunk" if self.request.kind == "chat" else "text_completion"
        body = {"id": self.id, "object": kind, "created": self.created, "model": self.request.model,
                "system_fingerprint": None, "choices": [choice], **extra}
        if self.request.include_usage and "usage" not in body:
            body["usage"] = None
        return body

    def opening(self) -> list[dict]:
        """Chat: the assistant's role first, as OpenAI sends it. Completions: nothing (the
        echoed prompt goes with the first text)."""
        if self.request.kind == "chat":
            return [self._chunk({"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                 "finish_reason": None})]
        return []

    def chunk(self, delta: Delta, outcome: Optional[Outcome] = None) -> dict:
        if self.request.kind == "chat":
            logprobs = self._chat_logprobs(delta.logprobs)
            return self._chunk({"index": 0, "delta": {"content": delta.text}, "logprobs": logprobs,
                                "finish_reason": None})
        return self._chunk({"index": 0, "text": delta.text, "finish_reason": None,
                            "logprobs": self._completion_logprobs(outcome, delta.logprobs, with_prompt=False)})

    def closing(self, outcome: Outcome) -> list[dict]:
        chunks = []
        extra = {"sources": [s.to_dict() for s in outcome.sources]} if self.request.documents is not None else {}
        if self.request.kind == "chat":
            chunks.append(self._chunk({"index": 0, "delta": {}, "logprobs": self._chat_logprobs(outcome.logprobs),
                                       "finish_reason": outcome.finish_reason}, **extra))
        else:
            chunks.append(self._chunk({"index": 0, "text": "", "finish_reason": outcome.finish_reason,
                                       "logprobs": self._completion_logprobs(outcome, outcome.logprobs,
                                                                             with_prompt=False)}, **extra))
        if self.request.include_usage:
            body = self._chunk({}, usage=self._usage(outcome))
            body["choices"] = []
            chunks.append(body)
        return chunks

    def echo_chunk(self, outcome: Outcome) -> Optional[dict]:
        """Completions with echo, streaming: the prompt (and its log-probabilities) first."""
        if self.request.kind != "completion" or not self.request.echo:
            return None
        return self._chunk({"index": 0, "text": outcome.prompt_text, "finish_reason": None,
                            "logprobs": self._prompt_logprobs(outcome)})

    # -- pieces ---------------------------------------------------------------------------
    def _usage(self, outcome: Outcome) -> dict:
        return {"prompt_tokens": outcome.prompt_tokens, "completion_tokens": outcome.completion_tokens,
                "total_tokens": outcome.prompt_tokens + outcome.completion_tokens}

    def _chat_logprobs(self, entries) -> Optional[dict]:
        if self.request.logprobs is None:
            return None
        return {"content": [_chat_entry(e) for e in entries], "refusal": None}

    def _completion_logprobs(self, outcome: Optional[Outcome], entries, with_prompt: bool) -> Optional[dict]:
        if self.request.logprobs is None:
            return None
        result = self._prompt_logprobs(outcome) if with_prompt and outcome is not None \
            else {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        for entry in entries:
            result["tokens"].append(entry.token)
            result["token_logprobs"].append(entry.logprob)
            result["top_logprobs"].append({alt.token: alt.logprob for alt in entry.top})
            result["text_offset"].append(self._offset)
            self._offset += len(entry.token)
        return result

    def _prompt_logprobs(self, outcome: Outcome) -> dict:
        result: dict = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        if not self.request.echo or outcome is None:
            return result
        scored = [None] + list(outcome.prompt_logprobs)  # the first token: nothing predicts it
        for token_id, entry in zip(outcome.prompt_ids, scored):
            token = entry.token if entry is not None else self._first_token(outcome)
            result["tokens"].append(token)
            result["token_logprobs"].append(entry.logprob if entry is not None else None)
            result["top_logprobs"].append({alt.token: alt.logprob for alt in entry.top} if entry is not None else None)
            result["text_offset"].append(self._offset)
            self._offset += len(token)
        return result

    @staticmethod
    def _first_token(outcome: Outcome) -> str:
        """The first prompt token's text: what the whole prompt's text has before the second's."""
        rest = "".join(e.token for e in outcome.prompt_logprobs)
        text = outcome.prompt_text
        return text[:len(text) - len(rest)] if rest and text.endswith(rest) else ""
