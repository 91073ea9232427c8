"""Build a `tokenizers.Tokenizer` equivalent to the one a GGUF file describes.

Two vocabulary kinds (`tokenizer.ggml.model`):

- "gpt2": byte-level BPE. How text is cut before the merges run depends on the model family
  (`tokenizer.ggml.pre`); the table below follows llama.cpp (src/llama-vocab.cpp), which mirrors
  each family's own tokenizer.json. Note "smollm" (and the StarCoder family): every digit is its
  own piece before the GPT-2 split, as in SmolLM's tokenizer.json (`Digits` then `ByteLevel`).
  transformers' GGUF loader skips that step, so it differs from us (and from llama.cpp and the
  original tokenizer) on whitespace runs right before a digit, e.g. "x  1".
- "llama": SentencePiece-style BPE over "\u2581"-for-space pieces with <0xNN> byte fallback.
  Files converted from SentencePiece carry scores but no merges; the merges are recovered from
  the scores (a higher-scored piece merges first), which is what SentencePiece's BPE does.
  Gemma's files (general.architecture gemma, gemma2, gemma3) differ, as transformers' GGUF
  loader handles them: pieces made only of spaces are stored with real spaces (read as
  "\u2581" runs), and the merge order is the order of the pieces in the file, not their scores,
  every piece taking part. Its turn markers are matched whole and are special even where the file
  calls them user-defined (llama.cpp, too, makes <end_of_turn> a control token).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Optional

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from ..errors import TokenizerError
from .gguf_vocab import CONTROL, NORMAL, UNKNOWN, USER_DEFINED, GGUFVocab

log = logging.getLogger(__name__)

SPACE_MARK = "\u2581"  # SentencePiece's visible space

# Split patterns, as written in the families' own tokenizer.json files.
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# o200k's (Phi-4-mini, Llama 4): case-aware words with their contractions, digits in threes.
_GPT4O_SPLIT = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
                r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
                r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
                r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
                r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# tokenizer.ggml.pre -> how the text is cut before byte-level BPE:
#   "gpt2":   the GPT-2 pattern (ByteLevel's own regex)
#   "digits": each digit alone, then the GPT-2 pattern
#   "llama3", "qwen2", "gpt4o": the patterns above
_PRE_FAMILIES = {
    **dict.fromkeys(("default", "gpt2", "gpt-2", "mpt", "olmo", "jais", "phi-2", "trillion",
                     "exaone4", "granite-docling"), "gpt2"),
    **dict.fromkeys(("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone",
                     "minerva-7b"), "digits"),
    **dict.fromkeys(("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                     "dbrx", "smaug-bpe"), "llama3"),
    **dict.fromkeys(("qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", "hunyuan"), "qwen2"),
    **dict.fromkeys(("gpt-4o", "llama4"), "gpt4o"),
}
_SPLITS = {"llama3": _LLAMA3_SPLIT, "qwen2": _QWEN2_SPLIT, "gpt4o": _GPT4O_SPLIT}

SUPPORTED_MODELS = ("gpt2", "llama")
GEMMA_ARCHITECTURES = ("gemma", "gemma2", "gemma3")
TURN_MARKERS = ("<start_of_turn>", "<end_of_turn>")  # special whatever type the file gives them


def build_gguf_backend(vocab: GGUFVocab) -> Tokenizer:
    """The tokenizer `vocab` describes, special tokens and BOS handling included."""
    if vocab.model == "llama" and vocab.architecture in GEMMA_ARCHITECTURES:
        vocab = _gemma_spelling(vocab)
    if vocab.model == "gpt2":
        backend = _byte_level_bpe(vocab)
    elif vocab.model == "llama":
        backend = _sentencepiece_bpe(vocab)
    else:
        raise TokenizerError(vocab.path, f"tokenizer.ggml.model is {vocab.model!r}, which this app cannot read",
                             f"supported: {', '.join(SUPPORTED_MODELS)}")
    _add_special_tokens(backend, vocab)
    _set_post_processor(backend, vocab)
    return backend


def pre_family(pre: Optional[str]) -> str:
    """The split family for a `tokenizer.ggml.pre` value (GPT-2's when unknown or absent)."""
    if pre is None:
        return "gpt2"
    family = _PRE_FAMILIES.get(pre)
    if family is None:
        log.warning("unknown tokenizer.ggml.pre %r; splitting text as GPT-2 does", pre)
        return "gpt2"
    return family


def _byte_level_bpe(vocab: GGUFVocab) -> Tokenizer:
    if vocab.merges is None:
        raise TokenizerError(vocab.path, "byte-level vocabulary without tokenizer.ggml.merges")
    family = pre_family(vocab.pre)
    model = models.BPE(
        vocab=_token_ids(vocab),
        merges=[_split_merge(merge) for merge in vocab.merges],
        # Llama 3's tokenizer.json takes a piece whole when it is in the vocabulary (llama.cpp too).
        ignore_merges=family == "llama3",
    )
    backend = Tokenizer(model)
    if family == "gpt2":
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    elif family == "digits":
        backend.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ])
    else:
        split = _SPLITS[family]
        backend.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(split), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    backend.decoder = decoders.ByteLevel()
    return backend


def _gemma_spelling(vocab: GGUFVocab) -> GGUFVocab:
    """Gemma's vocabulary as its merges expect it: space-only pieces spelled with "\u2581" (plain
    vocabulary then, not added tokens), and scores replaced by file order (see the module doc)."""
    tokens, types = list(vocab.tokens), list(vocab.token_types)
    for index, token in enumerate(tokens):
        if " " in token and not token.strip():
            tokens[index], types[index] = SPACE_MARK * len(token), NORMAL
    return replace(vocab, tokens=tokens, token_types=types, scores=[-float(i) for i in range(len(tokens))])


def _sentencepiece_bpe(vocab: GGUFVocab) -> Tokenizer:
    token_ids = _token_ids(vocab)
    gemma = vocab.architecture in GEMMA_ARCHITECTURES
    merges = ([_split_merge(merge) for merge in vocab.merges] if vocab.merges
              else _merges_from_scores(vocab, token_ids, every_piece=gemma))
    unk = vocab.tokens[vocab.unk_id] if vocab.unk_id is not None else None
    backend = Tokenizer(models.BPE(vocab=token_ids, merges=merges, unk_token=unk, fuse_unk=True,
                                   byte_fallback=True))
    add_prefix = vocab.add_space_prefix if vocab.add_space_prefix is not None else True
    if vocab.architecture == "phi3" and add_prefix:
        # Phi-3's own tokenizer.json (and llama.cpp): every stretch of text between special tokens
        # gets the space mark, not only the first ("<|user|>\nHi" -> "<|user|>", "\u2581\nHi").
        backend.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE_MARK),
                                                   normalizers.Replace(" ", SPACE_MARK)])
        backend.decoder = decoders.Sequence([decoders.Replace(SPACE_MARK, " "), decoders.ByteFallback(),
                                             decoders.Fuse(), decoders.Strip(content=" ", left=1, right=0)])
        return backend
    # "first": the space mark goes before the text's first piece only, as transformers' Llama
    # tokenizer does (llama.cpp also adds one after each special token written in the text).
    backend.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=SPACE_MARK, prepend_scheme="first" if add_prefix else "never", split=False)
    steps = [decoders.Replace(SPACE_MARK, " "), decoders.ByteFallback(), decoders.Fuse()]
    if add_prefix:
        steps.append(decoders.Strip(content=" ", left=1, right=0))
    backend.decoder = decoders.Sequence(steps)
    return backend


def _token_ids(vocab: GGUFVocab) -> dict[str, int]:
    ids: dict[str, int] = {}
    for index, token in enumerate(vocab.tokens):
        # A duplicated spelling keeps its first id; the later one is unreachable, as in llama.cpp.
        ids.setdefault(token, index)
    if len(ids) != len(vocab.tokens):
        log.warning("%s: %d token spellings repeat", vocab.path, len(vocab.tokens) - len(ids))
    return ids


def _split_merge(merge: str) -> tuple[str, str]:
    left, _, right = merge.partition(" ")
    return left, right


def _merges_from_scores(vocab: GGUFVocab, token_ids: dict[str, int],
                        every_piece: bool = False) -> list[tuple[str, str]]:
    """Every (left, right) split of a normal token (every_piece: of any token) into two
    vocabulary pieces, best score first.

    SentencePiece's BPE merges the adjacent pair whose joined piece scores highest; ordering the
    merges by that score makes `tokenizers`' rank-based BPE pick the same pairs. Among splits
    of equal score the longer left piece goes first (as transformers orders them).
    """
    scores = vocab.scores if vocab.scores is not None else [-float(i) for i in range(len(vocab.tokens))]
    candidates: list[tuple[float, int, int, str, str]] = []
    for index, (token, kind) in enumerate(zip(vocab.tokens, vocab.token_types)):
        if (kind != NORMAL and not every_piece) or len(token) < 2 or token_ids.get(token) != index:
            continue
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in token_ids and right in token_ids:
                candidates.append((-scores[index], -len(left), -len(right), left, right))
    candidates.sort(key=lambda c: c[:3])  # stable: equal keys keep vocabulary order
    return [(left, right) for *_, left, right in candidates]


def _add_special_tokens(backend: Tokenizer, vocab: GGUFVocab) -> None:
    """Control tokens (and the unknown token) become special, user-defined ones plain added
    tokens: both are matched whole in the text; only special ones are dropped by
    decode(skip_special_tokens=True), as llama.cpp and transformers do."""
    special, added = [], []
    for token, kind in zip(vocab.tokens, vocab.token_types):
        if kind in (CONTROL, UNKNOWN) or (kind == USER_DEFINED and token in TURN_MARKERS):
            special.append(AddedToken(token, special=True, normalized=False))
        elif kind == USER_DEFINED:
            added.append(AddedToken(token, special=False, normalized=False))
    if special:
        backend.add_special_tokens(special)
    if added:
        backend.add_tokens(added)
    for name in ("bos_id", "eos_id"):
        token_id = getattr(vocab, name)
        if token_id is not None and vocab.token_types[token_id] not in (CONTROL, UNKNOWN):
            # A BOS/EOS stored as a normal token must still be matched whole in a template.
            backend.add_special_tokens([AddedToken(vocab.tokens[token_id], special=True, normalized=False)])


def _set_post_processor(backend: Tokenizer, vocab: GGUFVocab) -> None:
    """BOS (and EOS) around encode(..., add_special_tokens=True), as the file asks."""
    bos = vocab.tokens[vocab.bos_id] if default_add_bos(vocab) and vocab.bos_id is not None else None
    eos = vocab.tokens[vocab.eos_id] if vocab.add_eos and vocab.eos_id is not None else None
    if bos is None and eos is None:
        return
    first = ([bos] if bos else []) + ["$A"] + ([eos] if eos else [])
    second = ([f"{bos}:1"] if bos else []) + ["$B:1"] + ([f"{eos}:1"] if eos else [])
    special = {token: token_id for token, token_id in ((bos, vocab.bos_id), (eos, vocab.eos_id)) if token}
    backend.post_processor = processors.TemplateProcessing(
        single=first, pair=first + second, special_tokens=list(special.items()))


def default_add_bos(vocab: GGUFVocab) -> bool:
    """Whether BOS goes first: the file's flag, else llama.cpp's default for the vocabulary."""
    if vocab.add_bos is not None:
        return vocab.add_bos
    return vocab.model == "llama" or pre_family(vocab.pre) == "llama3"
