"""Side by side on the real backend: two panes advanced in turn, each writing what its source
writes alone with the same seed (its own KV cache and adapter put in before each step), and the
backend left as it was; another model only when the estimate says it fits."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("transformers")  # the tiny models are written with save_pretrained

from helpers.tiny_hf import tiny_llama_folder  # noqa: E402

from chatapp.engine.backend import ChatBackend, LoadOptions  # noqa: E402
from chatapp.engine.out_of_memory import NotEnoughMemoryError  # noqa: E402
from chatapp.engine.sampling import SamplingSettings  # noqa: E402
from chatapp.engine.side_by_side import PaneSource, interleave  # noqa: E402
from test_backend_adapters import adapter  # noqa: E402

MESSAGES = [{"role": "user", "content": "the river and the hill"}]
SETTINGS = SamplingSettings(temperature=1.0, top_p=1.0, top_k=0, seed=11, max_new_tokens=12)


def alone(model, adapter_folder="") -> str:
    backend = ChatBackend()
    backend.load(str(model), LoadOptions(context_len=128, threads=1, adapter=adapter_folder or None))
    return "".join(backend.stream(MESSAGES, "", SETTINGS))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("side")
    model = tiny_llama_folder(root / "model", max_len=128)
    other = tiny_llama_folder(root / "other", seed=5, max_len=128)
    return model, other, adapter(model, root / "a", seed=1), adapter(model, root / "b", seed=2)


def run(backend, sources):
    order = list(backend.compare(sources, MESSAGES, "", SETTINGS))
    texts = ["".join(t for i, t in order if i == pane) for pane in range(len(sources))]
    return order, texts


def test_interleave_takes_a_step_of_each_in_turn():
    assert list(interleave([iter("abc"), iter("x")])) == [(0, "a"), (1, "x"), (0, "b"), (0, "c")]


@pytest.mark.parametrize("bad", [("nope", ""), ("adapter", ""), ("model", ""), ("base", "/x")])
def test_a_source_says_what_is_wrong(bad):
    with pytest.raises(ValueError):
        PaneSource(*bad)


def test_panes_stream_in_turn_and_each_writes_what_its_source_writes_alone(models):
    model, _other, a, b = models
    expected = {"": alone(model), a: alone(model, a), b: alone(model, b)}
    assert len(set(expected.values())) == 3  # the adapters do change the reply
    backend = ChatBackend()
    backend.load(str(model), LoadOptions(context_len=128, threads=1, adapter=a))
    before = "".join(backend.stream(MESSAGES, "", SETTINGS))
    for left, right in [(PaneSource(), PaneSource()), (PaneSource(), PaneSource("adapter", a)),
                        (PaneSource("adapter", b), PaneSource("adapter", a))]:
        order, texts = run(backend, (left, right))
        assert texts == [expected[left.path], expected[right.path]]
        first_done = max(i for i, (pane, _) in enumerate(order) if pane == 0)
        assert any(pane == 1 for pane, _ in order[:first_done]), "the right pane waited for the left one"
        assert [c["text"] for c in backend.compared()] == texts
        assert backend.worn_adapter == a
        assert "".join(backend.stream(MESSAGES, "", SETTINGS)) == before  # the chat's model and adapter as before


def test_another_model_streams_beside_the_loaded_one_then_is_released(models):
    model, other, a, _b = models
    backend = ChatBackend()
    backend.load(str(model), LoadOptions(context_len=128, threads=1))
    _, texts = run(backend, (PaneSource("adapter", a), PaneSource("model", str(other))))
    assert texts == [alone(model, a), alone(other)]
    assert backend.worn_adapter == "" and not backend.has_adapter


def test_another_model_that_does_not_fit_is_refused_with_the_numbers(models, monkeypatch):
    model, other, _a, _b = models
    backend = ChatBackend()
    backend.load(str(model), LoadOptions(context_len=128, threads=1))
    real = backend.estimate

    def short_of_memory(spec, options):
        need = real(spec, options)
        return dataclasses.replace(need, free_bytes=need.memory_bytes // 2, fits=False)

    monkeypatch.setattr(backend, "estimate", short_of_memory)
    with pytest.raises(NotEnoughMemoryError, match=r"does not fit beside the loaded model: it needs 0\.\d\d GiB"):
        run(backend, (PaneSource(), PaneSource("model", str(other))))
    assert "".join(backend.stream(MESSAGES, "", SETTINGS)) == alone(model)  # the loaded model still answers
