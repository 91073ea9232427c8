"""Device choice and the memory estimate checked before a model is loaded."""

from __future__ import annotations

import pytest
import torch

from chatapp.engine import device as dev
from chatapp.model import ModelConfig

SMOLLM_LIKE = ModelConfig(arch="llama", vocab_size=49152, dim=576, n_layers=30, n_heads=9, n_kv_heads=3,
                          intermediate_size=1536, max_seq_len=8192, tie_embeddings=True)


def test_auto_is_cpu_here_and_explicit_cuda_is_refused_clearly():
    if torch.cuda.is_available():
        pytest.skip("this check is for machines without CUDA")
    assert dev.choose_device("auto").type in ("cpu", "mps")
    with pytest.raises(dev.DeviceError, match="CUDA was requested"):
        dev.choose_device("cuda")
    with pytest.raises(dev.DeviceError, match="unknown device 'tpu'"):
        dev.choose_device("tpu")


def test_cpu_computes_in_float32():
    assert dev.default_dtype(torch.device("cpu")) == torch.float32


def test_estimate_counts_weights_and_kv_cache():
    est = dev.estimate_memory(SMOLLM_LIKE, context_len=2048, dtype=torch.float32)
    # SmolLM2-135M has 134.5M parameters (tied embeddings)
    assert 134_000_000 * 4 < est.weights_bytes < 135_500_000 * 4
    # 2 (k,v) * 30 layers * 3 kv heads * 2048 positions * 64 dims * 4 bytes
    assert est.kv_cache_bytes == 2 * 30 * 3 * 2049 * 64 * 4  # 2048 positions and KVCache's spare slot
    assert est.total_bytes > est.weights_bytes + est.kv_cache_bytes


def test_refuses_when_it_cannot_fit(monkeypatch):
    est = dev.estimate_memory(SMOLLM_LIKE, context_len=2048, dtype=torch.float32)
    monkeypatch.setattr(dev, "available_memory", lambda device: est.total_bytes - 1)
    with pytest.raises(dev.DeviceError, match="SmolLM needs about .* GiB .* shorter context"):
        dev.check_fits(est, torch.device("cpu"), "SmolLM")
    monkeypatch.setattr(dev, "available_memory", lambda device: est.total_bytes + 1)
    dev.check_fits(est, torch.device("cpu"), "SmolLM")


def test_free_memory_is_readable_on_this_machine():
    free = dev.available_memory(torch.device("cpu"))
    assert free is not None and free > 100 * 1024**2
