"""Out of memory while loading a model or generating a reply (simulated inside the loader and
inside the decode loop, and for real under RLIMIT_AS in a child): the previous model stays
loaded and usable, the message says what was needed, a reply keeps its text so far and the
KV cache is freed so that the next message works."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from helpers.tiny_hf import tiny_llama_folder

from chatapp.engine import loader as loader_module
from chatapp.engine.backend import ChatBackend, LoadOptions
from chatapp.engine.out_of_memory import NotEnoughMemoryError, is_out_of_memory
from chatapp.engine.sampling import SamplingSettings

pytest.importorskip("transformers")

OPTIONS = LoadOptions(device="cpu", context_len=64, threads=1)
GREEDY = SamplingSettings(temperature=0.0, max_new_tokens=8)
HI = [{"role": "user", "content": "hi there"}]

OOM_ERRORS = [
    MemoryError(),
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: "
                 "you tried to allocate 10000000000 bytes. Error code 12 (Cannot allocate memory)"),
]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("oom")
    return tiny_llama_folder(root / "first", seed=0), tiny_llama_folder(root / "second", seed=1, layers=3)


def test_only_allocation_failures_count_as_out_of_memory():
    assert all(is_out_of_memory(exc) for exc in OOM_ERRORS)
    assert not is_out_of_memory(RuntimeError("shape mismatch")) and not is_out_of_memory(ValueError("memory"))


@pytest.mark.parametrize("error", OOM_ERRORS, ids=["MemoryError", "torch.OutOfMemoryError", "cpu-allocator"])
def test_load_out_of_memory_keeps_the_previous_model(models, monkeypatch, error):
    first, second = models
    backend = ChatBackend()
    info = backend.load(str(first), OPTIONS)
    engine = backend.engine
    before = "".join(backend.stream(HI, "", GREEDY))

    def build_fails(*args, **kwargs):  # inside the loader: the weights are read, the model is being built
        raise error

    monkeypatch.setattr(loader_module, "build_model", build_fails)
    with pytest.raises(NotEnoughMemoryError) as caught:
        backend.load(str(second), OPTIONS)
    message = str(caught.value)
    assert message.startswith("not enough memory to load second (needs ~") and message.endswith(" GB)")
    assert caught.value.needed_bytes > 0
    assert backend.info == info and backend.engine is engine and backend.loaded.config.n_layers == 2
    monkeypatch.undo()
    assert "".join(backend.stream(HI, "", GREEDY)) == before  # the old model answers as before


def test_out_of_memory_building_the_engine_keeps_the_previous_model(models, monkeypatch):
    first, second = models
    backend = ChatBackend()
    backend.load(str(first), OPTIONS)
    engine = backend.engine
    import chatapp.engine.generate as generate

    real_init = generate.Engine.__init__

    def kv_cache_fails(self, model, *args, **kwargs):
        if model.config.n_layers == 3:  # the new model's KV cache does not fit
            raise torch.OutOfMemoryError("CUDA out of memory")
        real_init(self, model, *args, **kwargs)

    monkeypatch.setattr(generate.Engine, "__init__", kv_cache_fails)
    with pytest.raises(NotEnoughMemoryError, match="not enough memory to load second"):
        backend.load(str(second), OPTIONS)
    assert backend.engine is engine and backend.loaded.config.n_layers == 2


@pytest.mark.parametrize("error", OOM_ERRORS[:2], ids=["MemoryError", "torch.OutOfMemoryError"])
def test_reply_out_of_memory_keeps_its_text_frees_the_cache_and_the_next_reply_works(models, error):
    first, _ = models
    reference = ChatBackend()
    reference.load(str(first), OPTIONS)
    expected = "".join(reference.stream(HI, "", GREEDY))

    backend = ChatBackend()
    backend.load(str(first), OPTIONS)
    engine = backend.engine
    real_forward = engine._forward
    calls = []

    def forward_fails_in_decode(ids, start):
        calls.append(len(ids))
        if len(calls) == 4:  # prefill, then two decode steps, then no memory
            raise error
        return real_forward(ids, start)

    engine._forward = forward_fails_in_decode
    deltas = []
    with pytest.raises(NotEnoughMemoryError, match="the text so far is kept"):
        for text in backend.stream([{"role": "user", "content": "tell me more"}], "", GREEDY):
            deltas.append(text)
    assert calls[0] > 1 and calls[1:] == [1, 1, 1]  # it failed inside the decode loop
    assert len(deltas) >= 1  # text was streamed before the failure (the window keeps it)
    assert engine.cached_tokens == 0
    assert all(block.attn.kv_cache is None for block in engine.model.layers)  # the cache was freed
    del engine._forward
    assert "".join(backend.stream(HI, "", GREEDY)) == expected  # the next message works, same answer
    assert all(block.attn.kv_cache is not None for block in engine.model.layers)
    assert backend.info.name == reference.info.name


REAL_OOM_CHILD = textwrap.dedent("""
    import resource, sys
    from chatapp.engine.backend import ChatBackend, LoadOptions
    from chatapp.engine.out_of_memory import NotEnoughMemoryError
    from chatapp.engine.sampling import SamplingSettings
    options = LoadOptions(device="cpu", context_len=64, threads=1)
    greedy = SamplingSettings(temperature=0.0, max_new_tokens=8)
    backend = ChatBackend()
    backend.load(sys.argv[1], options)
    before = "".join(backend.stream([{"role": "user", "content": "hi"}], "", greedy))
    vm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize:")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + int(sys.argv[3]) * 2**20, resource.RLIM_INFINITY))
    try:
        backend.load(sys.argv[2], options)
        print("RESULT loaded")
    except NotEnoughMemoryError as exc:
        print("RESULT", exc)
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    after = "".join(backend.stream([{"role": "user", "content": "hi"}], "", greedy))
    print("SAME", before == after, backend.loaded.config.n_layers)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")
@pytest.mark.parametrize("headroom_mb", [5, 40])  # 5: the weights' tensors; 40: safetensors' memory map
def test_real_out_of_memory_under_rlimit_keeps_the_previous_model(models, tmp_path, headroom_mb):
    """No simulation: a 40 MB model loaded with less address space left than it needs. With 40 MB
    the memory map itself is refused (safetensors calls it an unreadable file: still memory)."""
    first, _ = models
    big = tiny_llama_folder(tmp_path / "big", seed=2, dim=512, layers=4)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, "-c", REAL_OOM_CHILD, str(first), str(big), str(headroom_mb)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "RESULT not enough memory to load big (needs ~0.1 GB)" in lines, done.stdout
    assert "SAME True 2" in lines  # the first model still loaded, answering exactly as before


def test_window_keeps_chatting_through_a_load_and_a_reply_out_of_memory(qtbot, tmp_path, models, monkeypatch):
    """pytest-qt, the real backend in the window's worker: a load that runs out of memory leaves
    the old model chatting; a reply that runs out of memory is kept (failed) and the next works."""
    pytest.importorskip("PySide6")
    from PySide6.QtCore import Qt

    from chatapp.storage.db import ConversationStore
    from chatapp.storage.settings import SettingsStore
    from chatapp.ui.main_window import MainWindow

    first, second = models
    store = ConversationStore(tmp_path / "conversations.sqlite3")
    settings = SettingsStore(tmp_path / "settings.json")
    backend = ChatBackend()
    window = MainWindow(store, settings, backend, list_models=lambda: [("First", str(first))], autoload=False,
                        adapters_dir=tmp_path / "adapters")
    qtbot.addWidget(window)
    try:
        window.settings.context_len, window.settings.threads, window.settings.device = 256, 1, "cpu"
        window.settings.temperature, window.settings.max_new_tokens = 0.0, 8
        assert window.model.load(str(first))
        qtbot.waitUntil(lambda: window.model_info is not None, timeout=60000)
        first_name = window.model_info.name

        def build_fails(*args, **kwargs):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

        monkeypatch.setattr(loader_module, "build_model", build_fails)
        assert window.model.load(str(second))
        qtbot.waitUntil(lambda: window.loading_spec is None, timeout=60000)
        status = window.header.model_status.text()
        assert "not enough memory to load second (needs ~" in status
        assert f"The previous model ({first_name}) is still loaded." in status
        assert "not enough memory to load second" in window.statusBar().currentMessage()
        assert window.model_info.name == first_name and backend.loaded.config.n_layers == 2
        monkeypatch.undo()

        def send(text):
            window.composer.setPlainText(text)
            qtbot.keyClick(window.composer, Qt.Key_Return)
            qtbot.waitUntil(lambda: not window.streaming, timeout=60000)
            return window.store.messages(window.current_id)[-1]

        ok = send("hello after the failed load")
        assert ok.state == "complete" and ok.content

        real_forward = backend.engine._forward
        calls = []

        def forward_fails_in_decode(ids, start):
            calls.append(len(ids))
            if len(calls) == 4:
                raise MemoryError()
            return real_forward(ids, start)

        backend.engine._forward = forward_fails_in_decode
        failed = send("this reply runs out of memory")
        del backend.engine._forward
        assert failed.state == "failed" and failed.content  # the text so far is kept
        assert "not enough memory to go on with this reply" in window.statusBar().currentMessage()
        assert all(block.attn.kv_cache is None for block in backend.engine.model.layers)
        after = send("and this one works")
        assert after.state == "complete" and after.content
        assert [m.state for m in window.store.messages(window.current_id)] == [
            "complete", "complete", "complete", "failed", "complete", "complete"]
    finally:
        window.close()
        store.close()
