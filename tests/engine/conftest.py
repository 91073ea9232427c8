"""Engine fixtures (the mocks live in mock_models.py, a uniquely named module)."""

from __future__ import annotations

import pytest

from mock_models import ByteTokenizer


@pytest.fixture
def byte_tokenizer() -> ByteTokenizer:
    return ByteTokenizer()
