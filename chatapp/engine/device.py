"""Where a model runs: device and dtype choice, thread count, and a memory check before loading."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Optional

import torch

from ..model.config import ModelConfig

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


class DeviceError(RuntimeError):
    """The requested device is not available, or the model will not fit in its memory."""


def choose_device(preference: str = "auto") -> torch.device:
    """CUDA if present, then Apple MPS, then CPU; or the user's explicit choice, checked."""
    if preference not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {preference!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if preference == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if preference == "cuda" and not cuda:
        raise DeviceError("CUDA was requested but no CUDA GPU is available to this PyTorch build")
    if preference == "mps" and not mps:
        raise DeviceError("MPS was requested but Apple Metal is not available on this machine")
    return torch.device(preference)


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA GPUs that support it; float32 elsewhere (bf16 matmuls are slow on most CPUs)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if device.type == "cuda":
        return torch.float16
    return torch.float32


def default_threads() -> int:
    """All physical-ish cores but never more than 8: torch's CPU kernels stop scaling beyond."""
    return max(1, min(8, os.cpu_count() or 1))


def available_memory(device: torch.device) -> Optional[int]:
    """Free bytes on the device (RAM for CPU/MPS), or None when it cannot be told."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


@dataclass
class MemoryEstimate:
    weights_bytes: int
    kv_cache_bytes: int
    overhead_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.overhead_bytes

    def parts(self) -> dict[str, int]:
        """Bytes by part, for a UI to word in its own language."""
        return {"total": self.total_bytes, "weights": self.weights_bytes, "kv_cache": self.kv_cache_bytes,
                "working": self.overhead_bytes}

    def describe(self) -> str:
        gib = 1024**3
        return (f"{self.total_bytes / gib:.2f} GiB (weights {self.weights_bytes / gib:.2f}, "
                f"KV cache {self.kv_cache_bytes / gib:.2f}, working memory {self.overhead_bytes / gib:.2f})")


def estimate_memory(config: ModelConfig, context_len: int, dtype: torch.dtype,
                    batch_size: int = 1) -> MemoryEstimate:
    """Weights in the compute dtype, the KV cache for `context_len`, and activations for a prefill."""
    item = torch.tensor([], dtype=dtype).element_size()
    weights = config.n_params * item
    kv = config.kv_cache_bytes(context_len, batch_size, item)
    # Largest activations: the vocabulary logits for one position and a prefill chunk's MLP.
    overhead = (config.vocab_size * 4 + context_len * (config.intermediate_size * 3 + config.dim * 4) * item)
    return MemoryEstimate(weights, kv, overhead)


def check_fits(estimate: MemoryEstimate, device: torch.device, model_name: str = "the model") -> None:
    """Refuse clearly, before loading, when the estimate exceeds free memory."""
    free = available_memory(device)
    if free is None:
        log.warning("cannot tell free memory on %s; loading %s anyway", device, model_name)
        return
    if estimate.total_bytes > free:
        raise DeviceError(
            f"{model_name} needs about {estimate.describe()} but only {free / 1024**3:.2f} GiB is free on "
            f"{device.type}; choose a shorter context length, a smaller model, or close other programs")
