"""Server fixtures: a tiny random model (and a LoRA adapter for it) served from a background
event loop, as `chatapp serve` does, on a free port."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch

pytest.importorskip("transformers")  # the tiny model is written with save_pretrained
pytest.importorskip("aiohttp")

from helpers.tiny_hf import tiny_llama_folder  # noqa: E402

from chatapp.server.app import ApiServer, ServerConfig, model_ids_for  # noqa: E402
from chatapp.server.jobs import ModelThread  # noqa: E402


@pytest.fixture(scope="session")
def model_folder(tmp_path_factory):
    return tiny_llama_folder(tmp_path_factory.mktemp("server") / "model", max_len=256)


def make_adapter(model_folder, out, seed: int, r: int = 4, targets=("q_proj", "v_proj", "o_proj", "down_proj")):
    from chatapp.engine.loader import load_model
    from chatapp.model.lora import LoRAConfig, apply_lora, lora_layers
    from chatapp.weights.peft_adapter import save_adapter

    model = load_model(model_folder, device="cpu").model
    config = LoRAConfig(r=r, alpha=2 * r, target_modules=list(targets))
    apply_lora(model, config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # a visible change: the adapter's replies differ from the base model's
        for _, layer in lora_layers(model):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.5)
    return save_adapter(model, config, out, str(model_folder))


@pytest.fixture(scope="session")
def adapter_folder(model_folder, tmp_path_factory):
    return make_adapter(model_folder, tmp_path_factory.mktemp("server") / "tuned", seed=3)


@pytest.fixture(scope="session")
def second_adapter_folder(model_folder, tmp_path_factory):
    """Another adapter for the same model, not the one it wears (and shaped otherwise: the LoRA
    layers are rebuilt to swap them): served by putting it on per request."""
    return make_adapter(model_folder, tmp_path_factory.mktemp("server") / "other", seed=11, r=2,
                        targets=("k_proj", "up_proj"))


@pytest.fixture(scope="session")
def backend(model_folder, adapter_folder):
    from chatapp.engine.backend import ChatBackend, LoadOptions

    backend = ChatBackend()
    backend.info_loaded = backend.load(str(model_folder), LoadOptions(context_len=256, threads=1,
                                                                      adapter=str(adapter_folder)))
    return backend


class RunningServer:
    """An ApiServer on its own event loop thread, over a ModelThread for `backend`."""

    def __init__(self, backend, **config) -> None:
        self.backend = backend
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.model_thread = ModelThread(backend)
        self.ids = model_ids_for(backend.info, config.pop("adapters", ())) if backend is not None else None
        self.activity: list[int] = []
        self.server = ApiServer(ServerConfig(port=config.pop("port", 0), **config), self.model_thread.submit,
                                lambda: self.ids, on_activity=self.activity.append)
        self.url = self.call(self.server.start())

    def call(self, coroutine, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def idle(self, timeout: float = 60) -> None:
        """Wait until the model thread has run everything submitted so far."""
        done = threading.Event()
        self.model_thread.submit(lambda _backend: done.set())
        assert done.wait(timeout), "the model thread did not get idle"

    def close(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.model_thread.close()


@pytest.fixture
def serve(backend):
    servers = []

    def start(**config) -> RunningServer:
        server = RunningServer(config.pop("backend", backend), **config)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def server(serve):
    return serve()
