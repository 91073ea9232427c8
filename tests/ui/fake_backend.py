"""A fake chat backend for window tests: scripted replies from the worker thread, no model."""

from __future__ import annotations

import threading
import time

from chatapp.documents.library import LibraryStore
from chatapp.engine.backend import ModelEstimate, ModelInfo, ReplyFinished, logprob_entry
from chatapp.engine.retrieval import SEARCH_LIMIT, Source, build_query, with_passages


def _fit(need: float, free: int) -> str:
    """engine.weights_option.fit_word, without importing torch."""
    return "fits" if need <= 0.7 * free else "tight" if need <= free else "does not fit"


class FakeBackend:
    """Streams a scripted reply word by word from the worker thread; no model, no torch.

    It satisfies `chatapp.engine.backend.Backend` like the real `ChatBackend` (a test checks).

    The reply names the last user message and counts replies, so a regenerated reply
    differs. `delay` is seconds per word; `words` how many words a reply has; `recommended`
    the sampling values the loaded model recommends (ModelInfo.sampling_defaults).

    With `documents` it searches the real library (its own store, in the worker thread, as
    ChatBackend does), keeps the first `passages_that_fit` hits as numbered sources and counts
    the rest as left out; `prompt` is the conversation as a ChatML template would render it.
    """

    def __init__(self, words: int = 6, delay: float = 0.01, passages_that_fit: int = 3,
                 recommended: dict | None = None, thinking_switch: bool = False, vision: bool = False) -> None:
        self.words = words
        self.vision = vision  # a vision model: ModelInfo says so (images: 4 at most, 576 tokens each)
        # a Qwen3-like model: ModelInfo.thinking_switch, and a reply that reasons first when asked
        self.thinking_switch = thinking_switch
        self.recommended = dict(recommended or {})  # the sampling values the loaded model recommends
        self.delay = delay
        self.passages_that_fit = passages_that_fit
        self.calls: list[dict] = []
        self.loads: list[str] = []
        self.load_options: list = []  # the LoadOptions of each load
        self.estimate_options: list = []  # the LoadOptions of each estimate
        self.reply: ReplyFinished | None = None
        self.streamed = 0  # pieces of the reply in progress so far
        self.loaded_name = None
        self.adapter = ""
        self.adapter_enabled = True
        self.thread_names: set[str] = set()
        self.recorded: list = []  # the token entries of the reply streaming (with logprobs)
        self.compare_calls: list[dict] = []
        self._compared: list[dict] = []
        self.costed: list[str] = []  # the names of the images image_cost was asked about

    def load(self, spec, options, progress=None):
        self.thread_names.add("main" if threading.current_thread() is threading.main_thread() else "worker")
        self.loads.append(spec)
        self.load_options.append(options)
        if spec == "staged":  # the real loader's stages, each starting again at 0
            for stage, fraction in (("config", 0.0), ("weights", 0.5), ("weights", 1.0), ("tokenizer", 0.0),
                                    ("ready", 1.0)):
                time.sleep(0.05)
                progress(stage, fraction)
        elif progress:
            progress("weights", 0.5)
        if spec == "slow":  # a large model: many tensors, progress after each
            for i in range(500):
                time.sleep(0.01)
                progress("weights", i / 500)
        if spec == "broken":
            raise ValueError("broken: not a model file (a test stand-in)")
        time.sleep(0.02)
        self.loaded_name = f"Fake-{spec}"
        self.adapter = options.adapter or ""
        weights = "float32" if options.weights == "auto" else options.weights
        reason = ("auto picked float32: 0.56 GiB fits comfortably" if options.weights == "auto"
                  else f"weights {weights} as asked")
        return ModelInfo(name=self.loaded_name, path=spec, kind="gguf", device="cpu", dtype="float32",
                         context_len=options.context_len, n_params=1_000_000, load_s=0.02, memory="1 MB",
                         adapter=self.adapter, sampling_defaults=dict(self.recommended),
                         thinking_switch=self.thinking_switch, weights=weights, weights_reason=reason,
                         vision=self.vision, max_images=4 if self.vision else 0,
                         image_tokens=576 if self.vision else 0)

    def estimate(self, spec, options):
        if spec == "broken":
            raise ValueError("broken: not a model file (a test stand-in)")
        self.estimate_options.append(options)
        self.thread_names.add("main" if threading.current_thread() is threading.main_thread() else "worker")
        # float32's need, and each option's share of it (the real ratios of a small model, roughly)
        base = 64 * 1024**3 if spec == "huge" else 600 * 1024**2
        shares = {"float32": 1.0, "bf16": 0.55, "float16": 0.55, "int8": 0.3, "int4": 0.2}
        free = 8 * 1024**3
        table = {option: {"bytes": int(base * share), "fit": _fit(base * share, free)}
                 for option, share in shares.items()}
        auto = next((o for o in ("float32", "int8") if table[o]["fit"] == "fits"), "int4")
        chosen = auto if options.weights == "auto" else options.weights
        need = table[chosen]["bytes"]
        return ModelEstimate(name=f"Fake-{spec}", n_params=135_000_000, context_len=options.context_len,
                             device="cpu", dtype="float32", memory=f"{need / 1024**3:.2f} GiB",
                             memory_bytes=need, free_bytes=free, fits=need <= free, weights=chosen,
                             fit=table[chosen]["fit"], options=table, auto_weights=auto)

    @property
    def has_adapter(self) -> bool:
        return bool(self.adapter)

    def set_adapter_enabled(self, enabled: bool) -> None:
        if not self.adapter:
            raise RuntimeError("no LoRA adapter is loaded")
        self.adapter_enabled = enabled

    def _retrieve(self, messages, documents):
        with LibraryStore(documents.db_path) as store:
            hits = store.search(documents.name, build_query(messages), limit=SEARCH_LIMIT)
        sources = tuple(Source(i + 1, h.path, h.heading, h.start, h.end, h.text)
                        for i, h in enumerate(hits[:self.passages_that_fit]))
        seen = [dict(m) for m in messages]
        seen[-1]["content"] = with_passages(messages[-1]["content"], sources)
        return sources, len(hits) - len(sources), seen

    def stream(self, messages, system_prompt, settings, cancel=None, continue_last=False, documents=None,
               enable_thinking=None, logprobs=None, forced=()):
        self.thread_names.add("main" if threading.current_thread() is threading.main_thread() else "worker")
        self.calls.append({"messages": [dict(m) for m in messages], "system": system_prompt,
                           "settings": settings, "continue_last": continue_last, "documents": documents,
                           "enable_thinking": enable_thinking, "logprobs": logprobs, "forced": tuple(forced)})
        self.recorded = []
        sources, left_out, seen = (), 0, messages
        if documents is not None and not continue_last:
            sources, left_out, seen = self._retrieve(messages, documents)
        turns = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + list(seen)
        prompt = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in turns)
        prompt += "<|im_start|>assistant\n"
        last_user = messages[-1]["content"]
        tag = " (tuned)" if self.adapter and self.adapter_enabled else ""
        if continue_last:
            pieces = [" and", " more"]
        else:
            pieces = [f"Reply{len(self.calls)}{tag}", " to", f" '{last_user}'"] + [f" w{i}" for i in range(self.words)]
            if enable_thinking:
                pieces = ["<think>\n", "weighing", " it", "\n</think>\n\n"] + pieces
        if forced:  # a reply that starts with given tokens: FakeBackend's token id i is piece "t{i}"
            pieces = [f"t{i}" for i in forced] + pieces[1:]
        if settings.max_new_tokens < len(pieces):  # the token limit, one piece a token
            pieces = pieces[:settings.max_new_tokens]
        shown = []
        reason = "eos" if len(pieces) < settings.max_new_tokens else "length"
        self.streamed = 0
        for piece in pieces:
            if cancel is not None and cancel.is_set():
                reason = "cancelled"
                break
            time.sleep(self.delay)
            shown.append(piece)
            self.streamed = len(shown)
            if logprobs is not None:
                self.recorded.append(self._entry(len(shown) - 1, piece, logprobs, forced))
            yield piece
        stats = {"prompt_tokens": 10, "new_tokens": len(shown), "decode_tok_s": 42.0}
        markers = any("<|im_" in str(m.get("content", "")) for m in messages)  # as ChatBackend reports them
        self.reply = ReplyFinished(text="".join(shown), finish_reason=reason, stats=stats,
                                   context_used=self.context_used(), contained_markers=markers, prompt=prompt,
                                   folded_system=bool(getattr(self, "refuses_system_turn", False) and system_prompt),
                                   sources=sources, left_out=left_out,
                                   library=documents.name if documents is not None and not continue_last else "",
                                   logprobs=tuple(logprob_entry(e) for e in self.recorded) if logprobs is not None
                                   else ())

    @staticmethod
    def _entry(position, piece, k, forced):
        """Piece n is token id 100 + n with probability 0.9 ** n; its alternatives are ids 1..k,
        the first the token itself (a fake "greedy"). A forced piece keeps its own id."""
        import math
        from types import SimpleNamespace

        token_id = forced[position] if position < len(forced) else 100 + position
        logprob = math.log(0.9 ** position) if position else math.log(0.95)
        top = [SimpleNamespace(id=token_id, token=piece, logprob=logprob)]
        top += [SimpleNamespace(id=i, token=f"t{i}", logprob=math.log(0.01 * (k + 1 - i))) for i in range(1, k)]
        return SimpleNamespace(id=token_id, token=piece, logprob=logprob,
                               sampled_prob=None if position < len(forced) else min(1.0, 2 * math.exp(logprob)),
                               top=top)

    def compare(self, sources, messages, system_prompt, settings, cancel=None):
        """Each pane's reply names its source and the seed, then words drawn from both, one word
        a step, the panes in turn (engine.side_by_side.interleave, as ChatBackend does): the same
        source and seed write the same text. Another model is refused when its estimate does not fit."""
        from chatapp.engine.backend import LoadOptions
        from chatapp.engine.out_of_memory import NotEnoughMemoryError
        from chatapp.engine.side_by_side import does_not_fit_message, interleave

        self.thread_names.add("main" if threading.current_thread() is threading.main_thread() else "worker")
        self.compare_calls.append({"sources": tuple(sources), "messages": [dict(m) for m in messages],
                                   "system": system_prompt, "settings": settings})
        for source in sources:
            if source.kind == "model":
                need = self.estimate(source.path, LoadOptions())
                if not need.fits:
                    raise NotEnoughMemoryError(does_not_fit_message(need), need.memory_bytes)
        self._compared = [{} for _ in sources]
        yield from interleave([self._lane(i, s, settings, cancel) for i, s in enumerate(sources)])

    def _lane(self, index, source, settings, cancel):
        import zlib

        name = source.path.rstrip("/").rsplit("/", 1)[-1] if source.path else "base"
        salt = zlib.crc32(f"{source.kind}:{source.path}:{settings.seed}".encode())
        pieces = [f"[{name}]", f" seed {settings.seed}:"] + [f" w{(salt >> i) % 97}" for i in range(self.words)]
        pieces = pieces[:settings.max_new_tokens]
        shown, reason = [], "eos"
        for piece in pieces:
            if cancel is not None and cancel.is_set():
                reason = "cancelled"
                break
            time.sleep(self.delay)
            shown.append(piece)
            yield piece
        self._compared[index] = {"text": "".join(shown), "finish_reason": reason,
                                 "stats": {"new_tokens": len(shown), "decode_tok_s": 42.0}}

    def compared(self):
        return list(self._compared)

    def image_cost(self, image) -> int:
        """Like Idefics3, the cost grows with the image: 64 positions per started 64-pixel tile,
        plus 64 for the whole image (a 40x30 image: 128; 300x200: 1344). From the worker thread."""
        import io
        import math

        from PIL import Image

        self.thread_names.add("main" if threading.current_thread() is threading.main_thread() else "worker")
        self.costed.append(image.name)
        if not self.vision:
            raise ValueError(f"{self.loaded_name} cannot see images")
        width, height = Image.open(io.BytesIO(image.data)).size
        return 64 * math.ceil(width / 64) * math.ceil(height / 64) + 64

    def streamed_logprobs(self):
        return list(self.recorded)

    def finished(self) -> ReplyFinished:
        return self.reply

    def context_used(self) -> int:
        """A 10-token prompt and one token a piece."""
        return 10 + self.streamed
