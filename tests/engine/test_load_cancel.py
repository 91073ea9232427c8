"""A model load stopped by its progress callback leaves the loaded model as it was."""

from __future__ import annotations

import pytest

from helpers.tiny_hf import tiny_llama_folder

from chatapp.engine.backend import ChatBackend, LoadOptions  # noqa: E402
from chatapp.engine.sampling import SamplingSettings  # noqa: E402
from chatapp.errors import Cancelled  # noqa: E402

pytest.importorskip("transformers")


def test_cancelled_load_keeps_the_previous_model(tmp_path):
    first = tiny_llama_folder(tmp_path / "first", seed=0)
    second = tiny_llama_folder(tmp_path / "second", seed=1, layers=3)
    backend = ChatBackend()
    info = backend.load(str(first), LoadOptions(device="cpu", context_len=64, threads=1))
    engine = backend.engine
    stages = []

    def cancel_during_weights(stage, fraction):
        stages.append(stage)
        if stage == "weights" and fraction > 0:  # after the first tensor
            raise Cancelled("stopped by the test")

    with pytest.raises(Cancelled):
        backend.load(str(second), LoadOptions(device="cpu", context_len=64, threads=1),
                     progress=cancel_during_weights)
    assert stages[0] == "config" and "tokenizer" not in stages  # stopped in the middle of the weights
    assert backend.info == info and backend.engine is engine and backend.loaded.config.n_layers == 2
    greedy = SamplingSettings(temperature=0.0, max_new_tokens=4)
    reply = "".join(backend.stream([{"role": "user", "content": "hi"}], "", greedy))
    assert backend.reply.stats.new_tokens == 4 and isinstance(reply, str)
