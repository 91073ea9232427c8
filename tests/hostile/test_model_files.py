"""Hostile model files (GGUF headers, config.json, safetensors indexes) end in our ModelLoadError
naming the file, within bounded time and memory: never a traceback, a hang or gigabytes."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from chatapp import limits
from chatapp.errors import CorruptFileError, ModelLoadError
from chatapp.weights.gguf_loader import load_gguf, open_gguf
from tests.helpers.bounded import run_bounded
from tests.weights.gguf_writing import llama_metadata, tiny_llama_tensors, write_gguf

CHILD_MEMORY = 1 << 30  # the child's baseline (torch, numpy, gguf imported) is ~300 MB
GGUF_STRING, GGUF_ARRAY, GGUF_UINT32 = 8, 9, 4


def gguf_with_array(path, item_type: int, items: bytes, count: int, extra_kvs: int = 0) -> None:
    """A GGUF file holding one metadata array (items already encoded) and no tensors."""
    key = b"tokenizer.ggml.tokens"
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, 1 + extra_kvs)
    kv = struct.pack("<Q", len(key)) + key + struct.pack("<IIQ", GGUF_ARRAY, item_type, count) + items
    path.write_bytes(head + kv)


def open_in_child(path, memory: int = CHILD_MEMORY) -> dict:
    return run_bounded(f"""
        from chatapp.weights.gguf_loader import open_gguf
        from chatapp.errors import ModelLoadError
        try:
            open_gguf({str(path)!r})
            report(error=None)
        except ModelLoadError as exc:
            report(error=str(exc))
    """, memory=memory, timeout=120)


def test_two_million_item_array_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "bomb.gguf"
    gguf_with_array(path, GGUF_STRING, bytes(8 * 2_000_000), 2_000_000)  # 16 MB of empty strings
    result = open_in_child(path)
    assert str(path) in result["error"] and "more than 1,000,000 items" in result["error"]
    assert result["seconds"] < 10 and result["max_rss_mb"] < 600


def test_arrays_over_the_limit_together_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "GGUF_MAX_ARRAY_ITEMS", 1000)
    path = tmp_path / "many.gguf"
    one = struct.pack("<IIQ", GGUF_ARRAY, GGUF_UINT32, 600) + bytes(4 * 600)
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, 2)
    kvs = b"".join(struct.pack("<Q", 5) + name + one for name in (b"key.a", b"key.b"))
    path.write_bytes(head + kvs)
    with pytest.raises(CorruptFileError, match="more than 1,000 items in all"):
        open_gguf(path)


def test_deeply_nested_arrays_are_refused(tmp_path):
    path = tmp_path / "nested.gguf"
    depth = 100_000  # each level is 12 bytes: a 1.2 MB file, far deeper than Python's recursion
    items = struct.pack("<IQ", GGUF_ARRAY, 1) * depth + struct.pack("<IQ", GGUF_UINT32, 0)
    gguf_with_array(path, GGUF_ARRAY, items, 1)
    with pytest.raises(CorruptFileError, match="nested more than 2 deep"):
        open_gguf(path)


@pytest.mark.parametrize("tensors, kvs, words", [(10**7, 0, "tensors"), (0, 10**7, "metadata keys")])
def test_absurd_counts_are_refused(tmp_path, tensors, kvs, words):
    path = tmp_path / "counts.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, tensors, kvs) + bytes(64))
    with pytest.raises(CorruptFileError, match=words):
        open_gguf(path)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    tensors = tiny_llama_tensors(np.random.default_rng(0))
    write_gguf(path, tensors, llama_metadata())
    data = path.read_bytes()
    # The header (metadata and tensor table) ends where the first tensor's data begins.
    reader = open_gguf(path)
    header_len = min(t.data_offset for t in reader.tensors)
    return data, header_len


@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(st.data())
def test_mutated_gguf_headers_end_in_our_error(tmp_path, tiny_gguf, data):
    original, header_len = tiny_gguf
    raw = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, header_len - 1))
        raw[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    path = tmp_path / "mutated.gguf"
    path.write_bytes(bytes(raw))
    try:
        load_gguf(path)
    except ModelLoadError as exc:
        assert str(path) in str(exc)
