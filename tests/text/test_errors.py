"""What a user sees when a tokenizer cannot be built: our error types, naming the file."""

from __future__ import annotations

import gguf
import pytest

from chatapp.errors import CorruptFileError, MissingFileError, TokenizerError
from chatapp.text import Tokenizer


def test_folder_without_tokenizer_json(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(MissingFileError) as caught:
        Tokenizer.from_hf_folder(tmp_path)
    assert caught.value.path == tmp_path
    assert str(tmp_path) in str(caught.value) and "tokenizer.json" in str(caught.value)
    assert "copy tokenizer.json" in caught.value.hint


def test_unreadable_tokenizer_json(tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"model": "nonsense"}')
    with pytest.raises(TokenizerError) as caught:
        Tokenizer.from_hf_folder(tmp_path)
    assert caught.value.path == tmp_path / "tokenizer.json"


def test_invalid_tokenizer_config(tmp_path, spm_gguf):
    Tokenizer.from_gguf(spm_gguf).backend.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(CorruptFileError) as caught:
        Tokenizer.from_hf_folder(tmp_path)
    assert caught.value.path == tmp_path / "tokenizer_config.json"


def test_unknown_tokenizer_model(write_gguf, tmp_path):
    path = write_gguf(tmp_path / "odd.gguf", model="rwkv-world", tokens=["a", "b", "ab"], types=[1, 1, 1])
    with pytest.raises(TokenizerError) as caught:
        Tokenizer.from_gguf(path)
    assert caught.value.path == path
    assert str(path) in str(caught.value) and "'rwkv-world'" in str(caught.value)
    assert "gpt2, llama" in caught.value.hint


def test_gguf_without_tokenizer(tmp_path):
    path = tmp_path / "weights-only.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(TokenizerError) as caught:
        Tokenizer.from_gguf(path)
    assert caught.value.path == path and "tokenizer.ggml.model" in str(caught.value)


def test_byte_level_gguf_without_merges(write_gguf, tmp_path):
    path = write_gguf(tmp_path / "no-merges.gguf", model="gpt2", tokens=["a", "b"], types=[1, 1])
    with pytest.raises(TokenizerError, match="merges") as caught:
        Tokenizer.from_gguf(path)
    assert caught.value.path == path


def test_inconsistent_token_types(write_gguf, tmp_path):
    path = write_gguf(tmp_path / "short-types.gguf", model="gpt2", tokens=["a", "b"], types=[1], merges=[])
    with pytest.raises(TokenizerError, match="token_type has 1 entries for 2 tokens"):
        Tokenizer.from_gguf(path)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(MissingFileError) as caught:
        Tokenizer.from_gguf(tmp_path / "absent.gguf")
    assert caught.value.path == tmp_path / "absent.gguf"
    foreign = tmp_path / "notes.gguf"
    foreign.write_bytes(b"this is not a gguf file at all")
    with pytest.raises(CorruptFileError) as caught:
        Tokenizer.from_gguf(foreign)
    assert caught.value.path == foreign


def test_out_of_range_special_ids_are_dropped(write_gguf, tmp_path, caplog):
    path = write_gguf(tmp_path / "bad-ids.gguf", model="gpt2", tokens=["a", "b", "ab"], types=[1, 1, 1],
                      merges=["a b"], bos=7, eos=2)
    tokenizer = Tokenizer.from_gguf(path)
    assert tokenizer.bos_id is None and tokenizer.eos_id == 2
    assert tokenizer.encode("ab") == [2]
    assert "bos_id 7 is outside the vocabulary" in caplog.text
