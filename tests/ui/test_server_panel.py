"""The window's Server switch on a qasync loop, with the real backend on a tiny random model:
the API shares the chat's model, requests queue behind the window's reply (the status bar says
so), the window's Stop stops only its own reply, and neither loses a token."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
import socket
import time
import urllib.request

import pytest

pytest.importorskip("transformers")
qasync = pytest.importorskip("qasync")
pytest.importorskip("aiohttp")

from PySide6.QtWidgets import QApplication  # noqa: E402

from helpers.tiny_hf import tiny_llama_folder  # noqa: E402

from chatapp.engine.backend import ChatBackend  # noqa: E402
from chatapp.engine.sampling import SamplingSettings  # noqa: E402
from chatapp.text.prompt import render_and_encode  # noqa: E402

MESSAGES = [{"role": "user", "content": "the cat sat"}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_chat(url: str, max_tokens: int = 12) -> dict:
    body = json.dumps({"model": "model", "messages": MESSAGES, "max_tokens": max_tokens, "temperature": 0})
    request = urllib.request.Request(url + "/chat/completions", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


@pytest.fixture
def loop():
    loop = qasync.QEventLoop(QApplication.instance())
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture
def window(qtbot, make_window, tmp_path):
    model = tiny_llama_folder(tmp_path / "model", max_len=256)
    window = make_window(ChatBackend(), load=False)
    window.settings.context_len = 256
    window.settings.threads = 1
    window.settings.temperature = 0.0
    window.settings.max_new_tokens = 40
    assert window.model.load(str(model))
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=60000)
    return window


async def wait_for(condition, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.01)


def test_the_switch_is_off_by_default_and_needs_a_model(qtbot, make_window, backend):
    window = make_window(backend, load=False)
    panel = window.server_panel
    assert not panel.switch.isChecked() and not panel.address.isVisible() and window.server.server is None
    panel.switch.setChecked(True)
    assert not panel.switch.isChecked() and "Load a model first" in panel.message.text()


def test_api_and_window_share_the_model_queue_and_stop_separately(qtbot, window, loop):
    engine = window.worker_thread.worker.backend.engine
    hook = engine.model.register_forward_pre_hook(lambda *_: time.sleep(0.03))  # ~30 ms a token
    panel = window.server_panel
    panel.port.setValue(free_port())
    seen_running: list[str] = []
    clients = ThreadPoolExecutor(2)  # the API's clients: plain threads, as other programs would be

    async def scenario():
        panel.switch.setChecked(True)
        await wait_for(lambda: window.server.url)
        url = window.server.url
        assert panel.address.text() == url and panel.copy_button.isVisibleTo(panel)
        panel.copy_address()
        assert QApplication.clipboard().text() == url
        alone = await loop.run_in_executor(clients, api_chat, url)  # the API's reply with nothing else going on

        # 1. A window reply, an API request queued behind it; Stop stops only the window's reply.
        window.composer.setPlainText("hello there")
        window.send()
        await wait_for(lambda: window.streaming and window.chat.messages[-1].text)
        api = loop.run_in_executor(clients, api_chat, url)
        await wait_for(lambda: window.api_label.text())
        seen_running.append(window.api_label.text())
        window.chat_controller.stop()
        during = await api
        await wait_for(lambda: not window.streaming)
        stopped = window.store.messages(window.current_id)[-1]
        assert stopped.finish_reason == "cancelled"
        assert during["choices"][0]["message"]["content"] == alone["choices"][0]["message"]["content"]
        assert during["usage"] == alone["usage"]

        # 2. A window reply with an API request running beside it: both as they would be alone.
        api = loop.run_in_executor(clients, api_chat, url, 30)
        await wait_for(lambda: window.api_label.text())
        window.composer.setPlainText("and again")
        window.send()
        beside = await api
        await wait_for(lambda: not window.streaming, 60)
        await wait_for(lambda: not window.api_label.text())
        reply = window.store.messages(window.current_id)[-1]
        return beside, reply

    try:
        beside, reply = loop.run_until_complete(scenario())
    finally:
        hook.remove()
        clients.shutdown(wait=True)
    assert seen_running == ["API request running"]
    assert reply.finish_reason in ("length", "eos") and reply.content
    # the same conversation replayed on the backend alone gives the same reply, token for token
    backend = window.worker_thread.worker.backend
    messages = [{"role": m.role, "content": m.content} for m in window.store.messages(window.current_id)[:-1]]
    names = {f.name for f in fields(SamplingSettings)}
    settings = SamplingSettings(**{k: v for k, v in reply.settings.items() if k in names})
    assert settings.temperature == 0.0
    alone = "".join(backend.stream(messages, reply.settings.get("system_prompt", ""), settings))
    assert alone == reply.content
    api_alone = "".join(backend.engine.stream(
        render_and_encode(backend.engine.tokenizer, MESSAGES).ids,
        SamplingSettings(temperature=0.0, top_k=0, top_p=1.0, min_p=0.0, max_new_tokens=30)))
    assert beside["choices"][0]["message"]["content"] == api_alone
    panel.switch.setChecked(False)
    assert window.server.server is None and not panel.address.isVisible()


def test_a_busy_port_turns_the_switch_back_off_with_the_reason(qtbot, window, loop):
    panel = window.server_panel
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        panel.port.setValue(taken.getsockname()[1])

        async def scenario():
            panel.switch.setChecked(True)
            await wait_for(lambda: not panel.switch.isChecked())

        loop.run_until_complete(scenario())
    assert "cannot listen" in panel.message.text() and window.server.server is None
    assert not panel.address.isVisible()


def save_tiny_adapter(model_folder, out, seed: int):
    """A LoRA adapter for the tiny model that visibly changes its replies."""
    import torch

    from chatapp.engine.loader import load_model
    from chatapp.model.lora import LoRAConfig, apply_lora, lora_layers
    from chatapp.weights.peft_adapter import save_adapter

    model = load_model(model_folder, device="cpu").model
    config = LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"])
    apply_lora(model, config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.5)
    return save_adapter(model, config, out, str(model_folder))


def api_completion(url: str, model: str) -> str:
    body = json.dumps({"model": model, "prompt": "the cat sat", "max_tokens": 10, "temperature": 0})
    request = urllib.request.Request(url + "/completions", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())["choices"][0]["text"]


def api_models(url: str) -> list:
    with urllib.request.urlopen(url + "/models", timeout=30) as response:
        return [m["id"] for m in json.loads(response.read())["data"]]


def test_the_train_tabs_adapters_for_the_model_are_served_by_id(qtbot, window, loop, tmp_path):
    from chatapp.engine.backend import LoadOptions

    model_folder = window.settings.model
    adapter = save_tiny_adapter(model_folder, tmp_path / "adapters" / "tuned", seed=3)
    other_model = tiny_llama_folder(tmp_path / "other-model", max_len=256)
    save_tiny_adapter(other_model, tmp_path / "adapters" / "not-for-this-model", seed=4)  # not offered
    window.training_panel.outputs.refresh()
    qtbot.waitUntil(lambda: len(window.training_panel.outputs.adapters) == 2, timeout=30000)
    panel = window.server_panel
    panel.port.setValue(free_port())
    clients = ThreadPoolExecutor(1)

    async def scenario():
        panel.switch.setChecked(True)
        await wait_for(lambda: window.server.url)
        url = window.server.url
        ids = await loop.run_in_executor(clients, api_models, url)
        tuned = await loop.run_in_executor(clients, api_completion, url, ids[1])
        plain = await loop.run_in_executor(clients, api_completion, url, ids[0])
        return ids, tuned, plain

    try:
        ids, tuned, plain = loop.run_until_complete(scenario())
    finally:
        clients.shutdown(wait=True)
        panel.switch.setChecked(False)
    assert ids == [ids[0], f"{ids[0]}+tuned"]
    reference = ChatBackend()  # the adapter's answer from a model loaded with it
    reference.load(model_folder, LoadOptions(context_len=256, threads=1, adapter=str(adapter)))
    tokenizer = reference.engine.tokenizer
    prompt = ([tokenizer.bos_id] if tokenizer.add_bos and tokenizer.bos_id is not None else []) + \
        tokenizer.encode("the cat sat")
    greedy = SamplingSettings(temperature=0.0, top_k=0, top_p=1.0, min_p=0.0, max_new_tokens=10)
    assert tuned == "".join(reference.engine.stream(prompt, greedy)) and tuned != plain
    backend = window.worker_thread.worker.backend  # the window's model is bare again
    assert backend.worn_adapter == "" and not backend.has_adapter and window.model_info.adapter == ""


def test_the_port_and_key_are_kept_the_key_masked_and_the_switch_off_at_start(qtbot, make_window, backend):
    from PySide6.QtWidgets import QLineEdit

    window = make_window(backend, load=False)
    panel = window.server_panel
    assert panel.key.echoMode() == QLineEdit.Password
    panel.port.setValue(9123)
    panel.key.setText("s3cret")
    panel.key.editingFinished.emit()
    saved = window.settings_store.load()
    assert (saved.server_port, saved.server_api_key) == (9123, "s3cret")
    again = make_window(backend, load=False).server_panel
    assert (again.port.value(), again.key.text()) == (9123, "s3cret")
    assert again.key.echoMode() == QLineEdit.Password and not again.switch.isChecked()
    again.switch_label.clicked.emit()  # its words, beside it, work the switch too
    assert "Load a model first" in again.message.text() and not again.switch.isChecked()  # no model: off again
