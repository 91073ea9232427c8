"""The window with the real ChatBackend on a tiny random LLaVA made here: an attached image goes
through the worker's vision path, the reply equals the engine's own on the same conversation, and
the next turn (the image read back from the database) still sees it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QFileDialog

pytest.importorskip("transformers")

from helpers.tiny_llava import tiny_llava_folder  # noqa: E402

from chatapp.engine.backend import ChatBackend, LoadOptions  # noqa: E402
from chatapp.engine.sampling import SamplingSettings  # noqa: E402
from chatapp.engine.vision import ImageAttachment  # noqa: E402


def test_send_an_image_to_a_real_vision_model(make_window, qtbot, tmp_path, monkeypatch):
    folder, _ref, _ = tiny_llava_folder(tmp_path / "llava")
    window = make_window(ChatBackend(), load=False)
    assert window.model.load(str(folder))
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=120000)
    info = window.model_info
    assert info.vision and info.image_tokens == 4
    path = tmp_path / "photo.png"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(path)
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(path)], ""))
    window.attach_button.click()
    qtbot.waitUntil(lambda: len(window.image_tray.images) == 1, timeout=10000)
    qtbot.waitUntil(lambda: window.image_tray.image_costs() == [4], timeout=10000)  # the worker's image_cost
    assert "1 of at most" in window.image_tray.info_label.text()
    assert "4 context tokens in all" in window.image_tray.info_label.text()
    monkeypatch.setattr(window.chat_controller, "sampling",
                        lambda: dict(temperature=0.0, repetition_penalty=1.0, max_new_tokens=5))
    window.composer.setPlainText("what is it?")
    window.send()
    qtbot.waitUntil(lambda: not window.chat_controller.streaming, timeout=120000)
    conv = window.chat_controller.current_id
    reply = window.store.messages(conv)[-1]
    assert reply.state == "complete", reply.finish_reason
    # the same conversation through a second backend, as a script would send it
    other = ChatBackend()
    other.load(str(folder), LoadOptions(device="cpu", context_len=info.context_len, threads=1))
    greedy = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=5)
    user = [{"role": "user", "content": "what is it?", "images": [ImageAttachment(path.read_bytes())]}]
    expected = "".join(other.stream(user, window.chat_controller.system_prompt(), greedy))
    assert reply.content == expected
    assert reply.stats["prompt_tokens"] == other.reply.stats.prompt_tokens
    # a second turn: the image comes back from the database into the prompt
    window.composer.setPlainText("and now?")
    window.send()
    qtbot.waitUntil(lambda: not window.chat_controller.streaming, timeout=120000)
    second = window.store.messages(conv)[-1]
    history = user + [{"role": "assistant", "content": expected}, {"role": "user", "content": "and now?"}]
    assert second.content == "".join(other.stream(history, window.chat_controller.system_prompt(), greedy))
