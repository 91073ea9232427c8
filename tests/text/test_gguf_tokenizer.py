"""The tokenizer built from GGUF metadata, against transformers' GGUF tokenizer.

The real default model (SmolLM2, byte-level BPE, pre "smollm") is compared on varied text;
other split families and a SentencePiece-style vocabulary use small GGUF files written here.
"""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer as HFBackend
from tokenizers import pre_tokenizers

from chatapp.text import Tokenizer
from chatapp.text.gguf_tokenizer import pre_family
from chatapp.text.gguf_vocab import _numeric_array

CORPUS = [
    "Hello, world! How are you today?",
    "The capital of France is Paris.",
    "你好，世界！今天天气很好。",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "🙂🚀👩\u200d💻 emoji 🇫🇷 ok",
    "many     spaces   here",
    "\n\n\nnewlines\n\n",
    "\ttabs\t\tand\t",
    "3.14159 1,000,000 2024-06-01 42 x = 12345678901234567890",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "Mixed 日本語 text with Ελληνικά and русский, مرحبا",
    "",
    "  leading and trailing  ",
    "don't you'll we've I'M SHOUTING",
    "a\r\nb",
    "ünïcödé café naïve",
    "<|endoftext|><not_special> <|im_end|>",
    "   \n  ",
]

# Whitespace runs right before a digit: SmolLM's tokenizer.json (and llama.cpp's "smollm")
# isolate every digit first, so the whole run is one piece; transformers' GGUF loader does not.
DIGIT_AFTER_SPACES = {
    "x  1": ["x", "ĠĠ", "1"],
    "a   123": ["a", "ĠĠĠ", "1", "2", "3"],
    "\n\n1": ["ĊĊ", "1"],
}

@pytest.mark.slow
@pytest.mark.parametrize("text", CORPUS)
def test_ids_match_transformers(smollm, hf_smollm, text):
    # Template output: special-token strings become their ids, as transformers encodes them.
    assert smollm.encode_markup(text) == hf_smollm.encode(text, add_special_tokens=False)
    # User text: they are spelled out, as transformers' split_special_tokens does.
    assert smollm.encode(text) == hf_smollm(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


@pytest.mark.slow
@pytest.mark.parametrize("text", CORPUS)
def test_decode_inverts_encode(smollm, hf_smollm, text):
    ids = smollm.encode(text)
    assert smollm.decode(ids) == text
    assert smollm.decode(ids) == hf_smollm.decode(ids)


@pytest.mark.slow
def test_known_ids_and_special_tokens(smollm):
    ids = smollm.encode_markup("<|im_start|>user\nHi there<|im_end|>\n")
    assert ids == [1, 4093, 198, 26843, 665, 2, 198]
    as_text = smollm.encode("<|im_start|>user\nHi there<|im_end|>\n")
    assert not smollm.special_ids & set(as_text) and smollm.decode(as_text) == "<|im_start|>user\nHi there<|im_end|>\n"
    assert [smollm.id_to_token(i) for i in ids] == ["<|im_start|>", "user", "Ċ", "Hi", "Ġthere", "<|im_end|>", "Ċ"]
    assert smollm.encode("Hello world! 123") == [19556, 905, 17, 216, 33, 34, 35]
    assert smollm.decode(ids, skip_special_tokens=True) == "user\nHi there\n"


@pytest.mark.slow
def test_metadata_of_default_model(smollm):
    assert smollm.vocab_size == 49152
    assert (smollm.bos_id, smollm.eos_id) == (1, 2)
    assert smollm.eos_ids == {0, 2}  # <|im_end|> and <|endoftext|>
    assert smollm.add_bos is False
    assert smollm.special_ids == set(range(17))
    assert smollm.token_to_id("<|im_end|>") == 2 and smollm.id_to_token(0) == "<|endoftext|>"
    assert (smollm.bos_token, smollm.eos_token) == ("<|im_start|>", "<|im_end|>")
    assert smollm.chat_template.startswith("{% for message in messages %}")
    assert smollm.encode("Hi", add_special_tokens=True) == smollm.encode("Hi")  # no BOS for SmolLM2


@pytest.mark.slow
@pytest.mark.parametrize("text", sorted(DIGIT_AFTER_SPACES))
def test_digits_split_alone_as_in_smollm_tokenizer_json(smollm, hf_smollm, text):
    assert [smollm.id_to_token(i) for i in smollm.encode(text)] == DIGIT_AFTER_SPACES[text]
    # transformers' vocabulary and merges with the pre-tokenizer of SmolLM2's tokenizer.json
    original = HFBackend.from_str(hf_smollm.backend_tokenizer.to_str())
    original.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    for sample in [text, *CORPUS]:
        assert smollm.encode_markup(sample) == original.encode(sample, add_special_tokens=False).ids


@pytest.mark.slow
def test_backend_is_a_tokenizers_tokenizer_for_streaming(smollm):
    from tokenizers.decoders import DecodeStream

    stream = DecodeStream(skip_special_tokens=False)
    text = "café 🙂 done"
    pieces = [stream.step(smollm.backend, token_id) for token_id in smollm.encode(text)]
    assert "".join(piece for piece in pieces if piece) == text


@pytest.mark.slow
def test_numeric_array_fast_path_equals_reader_contents(default_reader):
    for key in ("tokenizer.ggml.token_type",):
        field = default_reader.fields[key]
        assert _numeric_array(default_reader, key).tolist() == field.contents()


def test_pre_families():
    assert pre_family("smollm") == "digits"
    assert pre_family("llama-bpe") == pre_family("llama3") == "llama3"
    assert pre_family("qwen2") == "qwen2"
    assert pre_family("gpt-4o") == "gpt4o"  # Phi-4-mini
    assert pre_family("gpt2") == pre_family("default") == pre_family(None) == "gpt2"
    assert pre_family("some-future-model") == "gpt2"


@pytest.mark.slow
@pytest.mark.parametrize("pre", ["gpt2", "llama-bpe", "qwen2", "gpt-4o"])
def test_split_families_match_transformers(transformers, smollm_vocab, write_gguf, tmp_path, pre):
    """SmolLM2's vocabulary relabelled with another family's split pattern."""
    path = write_gguf(tmp_path / f"{pre}.gguf", model="gpt2", pre=pre, tokens=smollm_vocab.tokens,
                      types=smollm_vocab.token_types, merges=smollm_vocab.merges, bos=1, eos=2, add_bos=False)
    ours = Tokenizer.from_gguf(path)
    reference = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=path.name)
    extra = ["x  1", "abc123456def", "I'LL we'Re", "line\n\n\n  indented", "a.b,c;d", "CamelCaseWord HTTPServer's",
             "path/to/file/\nnext"]
    for text in CORPUS + extra:
        assert ours.encode_markup(text) == reference.encode(text, add_special_tokens=False), text
        assert ours.encode(text) == reference(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        assert ours.decode(ours.encode(text)) == text


SPM_SAMPLES = ["the quick brown fox", "hello world", "  spaced   out", " leading space",
               "café 12345 zebra🙂 日本", "the</s>", "a <think> b", "", "\n\ttab", "Ünïcödé thé"]


@pytest.fixture(scope="module")
def spm_reference(transformers, spm_gguf):
    return transformers.AutoTokenizer.from_pretrained(str(spm_gguf.parent), gguf_file=spm_gguf.name)


@pytest.mark.parametrize("text", SPM_SAMPLES)
def test_sentencepiece_vocab_matches_transformers(spm_gguf, spm_reference, text):
    ours = Tokenizer.from_gguf(spm_gguf)
    reference = spm_reference
    assert ours.encode_markup(text) == reference.encode(text, add_special_tokens=False)
    assert ours.encode(text) == reference(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    assert ours.encode(text, add_special_tokens=True) == reference(text, split_special_tokens=True)["input_ids"]
    ids = ours.encode(text)
    assert ours.decode(ids) == reference.decode(ids)


def test_sentencepiece_vocab_details(spm_gguf):
    ours = Tokenizer.from_gguf(spm_gguf)
    assert (ours.bos_id, ours.eos_id, ours.add_bos) == (1, 2, True)
    assert ours.special_ids == {0, 1, 2}
    assert ours.eos_ids == {2}
    think = ours.token_to_id("<think>")
    assert ours.encode("a<think>b")[1] == think
    assert think not in ours.special_ids  # user-defined: matched whole, kept by skip_special_tokens
    assert ours.decode(ours.encode("a<think>b"), skip_special_tokens=True) == "a<think>b"
    # "日" is not in the vocabulary: its UTF-8 bytes fall back to <0xE6> <0x97> <0xA5>
    assert [ours.id_to_token(i) for i in ours.encode("日")][-3:] == ["<0xE6>", "<0x97>", "<0xA5>"]
    assert ours.decode(ours.encode("the 日 fox")) == "the 日 fox"
    assert ours.encode("hello", add_special_tokens=True)[0] == 1
    assert ours.encode("<s>hello", add_special_tokens=True).count(1) == 1  # no second BOS


def test_sentencepiece_without_space_prefix(spm_vocab, spm_gguf, write_gguf, tmp_path):
    path = write_gguf(tmp_path / "no-prefix.gguf", model="llama", bos=1, eos=2, unk=0, add_bos=False,
                      add_space_prefix=False, **spm_vocab)
    ours = Tokenizer.from_gguf(path)
    assert ours.add_bos is False
    assert "".join(ours.id_to_token(i) for i in ours.encode("hello world")) == "hello\u2581world"
    assert "".join(ours.id_to_token(i) for i in ours.encode(" hello")) == "\u2581hello"
    with_prefix = Tokenizer.from_gguf(spm_gguf)
    assert "".join(with_prefix.id_to_token(i) for i in with_prefix.encode("hello world")) == "\u2581hello\u2581world"
    for text in ("hello world", " leading", "the 日"):
        assert ours.decode(ours.encode(text)) == text


@pytest.fixture
def phi3_spm(transformers, spm_vocab, write_gguf, tmp_path_factory):
    """The small SentencePiece vocabulary in a GGUF whose architecture is phi3, and transformers' reading."""
    path = write_gguf(tmp_path_factory.mktemp("phi3-spm") / "phi3.gguf", model="llama", bos=1, eos=2, unk=0,
                      add_space_prefix=True, arch="phi3", **spm_vocab)
    return Tokenizer.from_gguf(path), transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


@pytest.mark.parametrize("text", SPM_SAMPLES + ["<think>\nthe fox", "the <think>  spaced</s> out"])
def test_phi3_sentencepiece_marks_every_stretch_between_special_tokens(phi3_spm, text):
    """Phi-3's prefix space comes from a normalizer: text after a special token and text that
    starts with a space get it too (transformers' phi3 GGUF tokenizer, Phi-3's tokenizer.json)."""
    ours, reference = phi3_spm
    assert ours.encode_markup(text) == reference.encode(text, add_special_tokens=False)
    ids = ours.encode_markup(text)
    assert ours.decode(ids) == reference.decode(ids)


def test_phi3_and_llama_headers_cut_a_leading_space_differently(phi3_spm, spm_gguf):
    assert Tokenizer.from_gguf(spm_gguf).encode("  the") != phi3_spm[0].encode("  the")
