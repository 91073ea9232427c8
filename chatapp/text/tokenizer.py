"""The app's tokenizer: a `tokenizers.Tokenizer` plus what the engine needs around it (BOS/EOS
ids, the stop set, whether BOS is prepended, the chat template).

Built from a Hugging Face folder (tokenizer.json and its side files) or from a GGUF file's
metadata (see gguf_tokenizer). `encode` reads its input as text: a special token written in it,
like "<|im_start|>", is spelled out in ordinary tokens, so user and document text can never
forge a turn. Only `encode_markup`, for a chat template's own output (see prompt.py), turns
special-token strings into their ids.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import gguf
import tokenizers

from ..errors import MissingFileError, TokenizerError
from .chat_template import ChatTemplateError, render_chat
from .gguf_tokenizer import build_gguf_backend, default_add_bos
from .gguf_vocab import open_reader, read_gguf_vocab
from .hf_files import read_hf_tokenizer_settings

log = logging.getLogger(__name__)

PathLike = Union[str, Path]

# Tokens that end an assistant turn in common chat formats; each joins the stop set when the
# vocabulary has it as a special token.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|endoftext|>", "<|end_of_text|>",
                      "<|end|>", "<end_of_turn>")


class Tokenizer:
    """Text <-> ids for one model. `backend` is the underlying `tokenizers.Tokenizer` (for
    `tokenizers.decoders.DecodeStream` and the like)."""

    def __init__(self, backend: tokenizers.Tokenizer, *, bos_id: Optional[int] = None,
                 eos_id: Optional[int] = None, extra_eos_ids: Iterable[int] = (),
                 add_bos: bool = False, add_eos: bool = False, chat_template: Optional[str] = None,
                 source: Optional[Path] = None) -> None:
        self.backend = backend
        self.source = source
        self.chat_template = chat_template or None
        self.special_ids: frozenset[int] = frozenset(
            token_id for token_id, token in backend.get_added_tokens_decoder().items() if token.special)
        self.bos_id = bos_id
        self.eos_id = eos_id
        self.add_bos = bool(add_bos and bos_id is not None)
        self.add_eos = bool(add_eos and eos_id is not None)
        stops = {token_id for token_id in (eos_id, *extra_eos_ids) if token_id is not None}
        for text in END_OF_TURN_TOKENS:
            token_id = backend.token_to_id(text)
            if token_id is not None and token_id in self.special_ids:
                stops.add(token_id)
        self.eos_ids: frozenset[int] = frozenset(stops)
        # Longest first: what prompt.render_and_encode escapes in message contents.
        self.marker_strings: tuple[str, ...] = tuple(sorted(
            {token.content for token in backend.get_added_tokens_decoder().values() if token.special and token.content},
            key=lambda text: (-len(text), text)))
        self._text_backend: Optional[tokenizers.Tokenizer] = None
        self._text_backend_lock = threading.Lock()

    # -- constructors -------------------------------------------------------------------

    @classmethod
    def from_hf_folder(cls, folder: PathLike) -> "Tokenizer":
        """A Hugging Face model folder: tokenizer.json, plus tokenizer_config.json,
        special_tokens_map.json, chat_template.jinja and generation_config.json when present."""
        folder = Path(folder)
        tokenizer_file = folder / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise MissingFileError(folder, "no tokenizer.json in the model folder",
                                   "copy tokenizer.json from the model's repository into this folder")
        try:
            backend = tokenizers.Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # the Rust side raises plain Exception for a malformed file
            raise TokenizerError(tokenizer_file, f"cannot be read as a tokenizer: {exc}") from exc
        settings = read_hf_tokenizer_settings(folder)

        bos_id = _lookup(backend, settings.bos_token, tokenizer_file, "bos_token")
        if bos_id is None:
            bos_id = settings.bos_id
        eos_id = _lookup(backend, settings.eos_token, tokenizer_file, "eos_token")
        if eos_id is None and settings.eos_ids:
            eos_id = settings.eos_ids[0]
        add_bos = settings.add_bos
        add_eos = settings.add_eos
        if add_bos is None or add_eos is None:
            # The folder does not say: do what tokenizer.json's post-processor does.
            plain = backend.encode("a", add_special_tokens=False).ids
            full = backend.encode("a", add_special_tokens=True).ids
            if add_bos is None:
                add_bos = bos_id is not None and full[:1] == [bos_id] and plain[:1] != [bos_id]
            if add_eos is None:
                add_eos = eos_id is not None and full[-1:] == [eos_id] and plain[-1:] != [eos_id]
        return cls(backend, bos_id=bos_id, eos_id=eos_id, extra_eos_ids=settings.eos_ids,
                   add_bos=add_bos, add_eos=add_eos, chat_template=settings.chat_template,
                   source=folder)

    @classmethod
    def from_gguf(cls, path: PathLike, reader: Optional[gguf.GGUFReader] = None) -> "Tokenizer":
        """The tokenizer stored in a GGUF file's metadata. Pass the `reader` the weights were
        read with: opening a GGUF parses all its metadata, which takes seconds."""
        path = Path(path)
        start = time.perf_counter()
        if reader is None:
            reader = open_reader(path)
        vocab = read_gguf_vocab(reader, path)
        backend = build_gguf_backend(vocab)
        tokenizer = cls(backend, bos_id=vocab.bos_id, eos_id=vocab.eos_id, extra_eos_ids=vocab.extra_eos_ids,
                        add_bos=default_add_bos(vocab), add_eos=bool(vocab.add_eos),
                        chat_template=vocab.chat_template, source=path)
        log.info("tokenizer from %s: %s/%s, %d tokens, in %.2f s", path.name, vocab.model, vocab.pre,
                 tokenizer.vocab_size, time.perf_counter() - start)
        return tokenizer

    # -- text <-> ids -------------------------------------------------------------------

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Ids for `text` read as text: special-token strings in it are spelled out, never their
        ids. With add_special_tokens, BOS (and EOS) are added as the model expects (`add_bos`)."""
        ids = self._text_encoder().encode(text, add_special_tokens=False).ids
        return self._with_bos_eos(ids) if add_special_tokens else ids

    def encode_markup(self, text: str) -> list[int]:
        """Ids for text a chat template wrote: special-token strings become their ids. Only for
        a template's output with message contents escaped (prompt.render_and_encode)."""
        return self.backend.encode(text, add_special_tokens=False).ids

    def _text_encoder(self) -> tokenizers.Tokenizer:
        # `tokenizers` matches added special tokens even with add_special_tokens=False; a copy
        # with encode_special_tokens set splits them like any text. The flag lives on the
        # object, so the copy keeps it for good (no toggling while another thread encodes).
        if self._text_backend is None:
            with self._text_backend_lock:
                if self._text_backend is None:
                    if self.marker_strings:
                        copy = tokenizers.Tokenizer.from_str(self.backend.to_str())
                        copy.encode_special_tokens = True
                    else:
                        copy = self.backend
                    self._text_backend = copy
        return self._text_backend

    def __getstate__(self) -> dict:  # copy/pickle: the lock cannot travel, the text copy is remade
        state = dict(self.__dict__)
        state["_text_backend"] = state["_text_backend_lock"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._text_backend_lock = threading.Lock()

    def _with_bos_eos(self, ids: list[int]) -> list[int]:
        if self.add_bos and (not ids or ids[0] != self.bos_id):
            ids.insert(0, self.bos_id)
        if self.add_eos:
            ids.append(self.eos_id)
        return ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def token_to_id(self, token: str) -> Optional[int]:
        return self.backend.token_to_id(token)

    def id_to_token(self, token_id: int) -> Optional[str]:
        return self.backend.id_to_token(token_id)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    @property
    def bos_token(self) -> Optional[str]:
        return self.id_to_token(self.bos_id) if self.bos_id is not None else None

    @property
    def eos_token(self) -> Optional[str]:
        return self.id_to_token(self.eos_id) if self.eos_id is not None else None

    # -- chat -----------------------------------------------------------------------------

    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True,
                            **variables: Any) -> str:
        """The prompt text for `messages` in this model's chat format (ChatML if it has none).
        ChatTemplateError, naming the model file, when the template fails or exceeds its limits."""
        try:
            return render_chat(self.chat_template, messages, add_generation_prompt=add_generation_prompt,
                               bos_token=self.bos_token or "", eos_token=self.eos_token or "", **variables)
        except ChatTemplateError as exc:
            if self.source is None or exc.source is not None:
                raise
            raise exc.with_source(str(self.source)) from exc

    def __repr__(self) -> str:
        return (f"Tokenizer(source={str(self.source)!r}, vocab_size={self.vocab_size}, bos_id={self.bos_id}, "
                f"eos_ids={sorted(self.eos_ids)}, add_bos={self.add_bos})")


def _lookup(backend: tokenizers.Tokenizer, token: Optional[str], file: Path, name: str) -> Optional[int]:
    if token is None:
        return None
    token_id = backend.token_to_id(token)
    if token_id is None:
        log.warning("%s: %s %r is not in the vocabulary; ignoring it", file, name, token)
    return token_id
