"""ChatBackend hands its loader every argument of the ModelLoader protocol, `weights` included."""

from __future__ import annotations

import pytest

from chatapp.engine.backend import ChatBackend, LoadOptions


class Refused(Exception):
    pass


@pytest.mark.parametrize("weights", ["auto", "int8"])
def test_the_loader_gets_every_argument(weights):
    seen = []

    def loader(spec, *, device, context_len, progress, adapter, weights):
        seen.append(dict(spec=spec, device=device, context_len=context_len, adapter=adapter, weights=weights))
        raise Refused("a test loader loads nothing")

    backend = ChatBackend(loader)
    with pytest.raises(Refused):
        backend.load("m.gguf", LoadOptions(device="cpu", context_len=64, threads=1, weights=weights))
    assert seen == [dict(spec="m.gguf", device="cpu", context_len=64, adapter=None, weights=weights)]
    assert backend.info is None and backend.engine is None  # nothing half-loaded stays
