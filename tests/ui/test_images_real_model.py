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


def test_an_image_with_a_documents_library_regenerated_and_edited(make_window, qtbot, tmp_path, monkeypatch):
    """With a Documents library chosen, the image stays in the turn beside the passages (the reply
    is the backend's for that turn: image and passage in the prompt shown); Regenerate, an edit and
    going back to the first version all keep the message's images."""
    from chatapp.documents.library import LibraryStore
    from chatapp.engine.backend import DocumentsChoice

    folder, _ref, _ = tiny_llava_folder(tmp_path / "llava")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cats.md").write_text("# Cats\n\nthe cat sat on the warm mat.\n")
    with LibraryStore(tmp_path / "library.sqlite3") as store:  # beside conversations.sqlite3
        store.add("pets", [docs])
        store.index("pets")
    window = make_window(ChatBackend(), load=False)
    assert window.model.load(str(folder))
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=120000)
    window.documents_selector.choose("pets")
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(4).integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(path)
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(path)], ""))
    window.attach_button.click()
    qtbot.waitUntil(lambda: window.image_tray.image_costs() == [4], timeout=20000)
    monkeypatch.setattr(window.chat_controller, "sampling",
                        lambda: dict(temperature=0.0, repetition_penalty=1.0, max_new_tokens=5))
    window.composer.setPlainText("where did the cat sit?")
    window.send()
    qtbot.waitUntil(lambda: not window.chat_controller.streaming, timeout=120000)
    controller, conv = window.chat_controller, window.chat_controller.current_id
    reply = window.store.messages(conv)[-1]
    assert reply.state == "complete", reply.finish_reason
    assert "the cat sat on the warm mat." in reply.stats["prompt"] and "<image>" in reply.stats["prompt"]
    other = ChatBackend()
    other.load(str(folder), LoadOptions(device="cpu", context_len=window.model_info.context_len, threads=1))
    greedy = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=5)
    user = [{"role": "user", "content": "where did the cat sit?", "images": [ImageAttachment(path.read_bytes())]}]
    expected = "".join(other.stream(user, controller.system_prompt(), greedy,
                                    documents=DocumentsChoice(str(tmp_path / "library.sqlite3"), "pets")))
    assert reply.content == expected and reply.stats["prompt"] == other.finished().prompt

    controller.regenerate()  # a new version of the reply, to the same message and image
    qtbot.waitUntil(lambda: not controller.streaming, timeout=120000)
    again = window.store.messages(conv)[-1]
    assert again.id != reply.id and again.content == expected and again.stats["prompt"] == reply.stats["prompt"]

    first_user = window.store.messages(conv)[0]
    controller.edit_and_resend(0, "what is on the mat?")
    qtbot.waitUntil(lambda: not controller.streaming, timeout=120000)
    edited = window.store.messages(conv)
    assert edited[0].content == "what is on the mat?" and edited[0].id != first_user.id
    assert [a.data for a in window.store.attachments(edited[0].id)] == [path.read_bytes()]
    assert "<image>" in edited[-1].stats["prompt"]
    controller.switch_branch(0, -1)  # back to the first version: its image and replies are there
    shown = window.store.messages(conv)
    assert shown[0].id == first_user.id and [a.data for a in window.store.attachments(shown[0].id)] == [path.read_bytes()]
    assert [i.name for i in window.chat.messages[0].images_row.images] == ["photo.png"]
