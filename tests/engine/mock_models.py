"""Mock models with scripted logits and a byte-level tokenizer for engine tests (no weights)."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from chatapp.text.byte_level import byte_to_char

EOS = 256  # id of "<eos>"; ids 0..255 are the bytes (byte-level, so UTF-8 spans tokens)


class ByteTokenizer:
    """Every UTF-8 byte is one token, through the real `tokenizers` byte-level decoder."""

    def __init__(self) -> None:
        byte_chars = pre_tokenizers.ByteLevel.alphabet()
        # ByteLevel maps byte b to a printable char; order the vocab by byte value.
        table = [None] * 256
        mapping = byte_to_char()
        for b, ch in mapping.items():
            table[b] = ch
        assert set(table) == set(byte_chars)
        vocab = {ch: b for b, ch in enumerate(table)}
        vocab["<eos>"] = EOS
        self.backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
        self.backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        self.backend.decoder = decoders.ByteLevel()
        self.backend.add_special_tokens(["<eos>"])
        self.eos_ids = {EOS}

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def apply_chat_template(self, messages, add_generation_prompt: bool = True) -> str:
        text = "".join(f"[{m['role']}]{m['content']}\n" for m in messages)
        return text + ("[assistant]" if add_generation_prompt else "")


class ScriptedModel(torch.nn.Module):
    """Stands in for the Transformer: the next token is `script[position]`, by a wide margin.

    Positions past the script make EOS likeliest. Records how many tokens each call ran.
    """

    def __init__(self, script: list[int], vocab: int = 257, max_seq_len: int = 64,
                 margin: float = 10.0) -> None:
        super().__init__()
        self.config = SimpleNamespace(max_seq_len=max_seq_len, vocab_size=vocab)
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.script = script
        self.margin = margin
        self.calls: list[int] = []  # tokens per forward call
        self.fed: dict[int, int] = {}  # position -> token id written to the "cache"
        self.cache_len = 0

    def prepare_for_inference(self) -> None:
        """Like the Transformer's, which picks its fast paths; a mock has none."""

    def setup_cache(self, batch_size: int, max_seq_len: int) -> None:
        self.cache_len = max_seq_len

    def forward(self, tokens, input_pos, last_only=False):
        self.calls.append(tokens.shape[1])
        for tok, pos in zip(tokens[0].tolist(), input_pos.tolist()):
            self.fed[pos] = tok
        next_pos = int(input_pos[-1]) + 1
        logits = torch.zeros(self.config.vocab_size)
        index = next_pos - self.prompt_len if hasattr(self, "prompt_len") else next_pos
        target = self.script[index] if 0 <= index < len(self.script) else EOS
        logits[target] = self.margin
        return logits.view(1, 1, -1)


class ContextModel(torch.nn.Module):
    """Next token is a function of every token fed so far, read back from its own "cache".

    A wrongly reused or skipped cache position changes what it says, like a real model.
    Emits lowercase letters; EOS once `reply_len` tokens follow the last "\n[assistant]".
    """

    def __init__(self, max_seq_len: int = 256, reply_len: int = 6) -> None:
        super().__init__()
        self.config = SimpleNamespace(max_seq_len=max_seq_len, vocab_size=257)
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.reply_len = reply_len
        self.cache: dict[int, int] = {}
        self.calls: list[int] = []

    def prepare_for_inference(self) -> None:
        """Like the Transformer's, which picks its fast paths; a mock has none."""

    def setup_cache(self, batch_size: int, max_seq_len: int) -> None:
        self.cache = {}

    def forward(self, tokens, input_pos, last_only=False):
        self.calls.append(tokens.shape[1])
        for tok, pos in zip(tokens[0].tolist(), input_pos.tolist()):
            self.cache[pos] = tok
        end = int(input_pos[-1]) + 1
        context = [self.cache[p] for p in range(end)]
        marker = list(b"[assistant]")
        since = end
        for i in range(end - len(marker), -1, -1):
            if context[i:i + len(marker)] == marker:
                since = end - (i + len(marker))
                break
        logits = torch.zeros(257)
        if since >= self.reply_len:
            logits[EOS] = 10.0
        else:
            logits[ord("a") + (sum(t * (i + 1) for i, t in enumerate(context)) % 26)] = 10.0
        return logits.view(1, 1, -1)
