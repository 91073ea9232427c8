"""Images in the window (a fake backend): attach (file dialog), paste, drop, remove, send;
thumbnails in the conversation; a text-only model refuses at send and nothing typed is lost."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from fake_backend import FakeBackend


def _png(path, size=(40, 30), seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _attach(window, monkeypatch, *paths):
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(p) for p in paths], ""))
    window.attach_button.click()


def test_attach_remove_and_send(make_window, qtbot, tmp_path, monkeypatch):
    backend = FakeBackend(vision=True)
    window = make_window(backend)
    tray = window.image_tray
    a, b = _png(tmp_path / "a.png"), _png(tmp_path / "b.jpg", (300, 200), 1)
    _attach(window, monkeypatch, a, b)
    qtbot.waitUntil(lambda: len(tray.images) == 2 and not tray.pending, timeout=20000)
    assert [i.name for i in tray.images] == ["a.png", "b.jpg"]
    assert (tray.images[1].width, tray.images[1].height) == (300, 200)
    qtbot.waitUntil(lambda: None not in tray.image_costs(), timeout=60000)  # torch loads first
    assert "1472 context tokens in all" in tray.info_label.text()
    assert "at most 4 images" in tray.info_label.text()
    assert tray.isVisibleTo(window)
    from PySide6.QtWidgets import QToolButton
    removes = tray.findChildren(QToolButton, "removeImage")
    assert [b.accessibleName() for b in removes] == ["Remove image a.png", "Remove image b.jpg"]
    removes[0].click()
    assert [i.name for i in tray.images] == ["b.jpg"]
    window.composer.setPlainText("what is in it?")
    window.send()
    assert tray.error_label.isHidden(), tray.error_label.text()
    assert backend.calls or window.chat_controller.streaming, window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not window.chat_controller.streaming and bool(backend.calls), timeout=60000)  # torch loads first
    sent = backend.calls[-1]["messages"][-1]
    assert sent["content"] == "what is in it?" and [i.name for i in sent["images"]] == ["b.jpg"]
    assert sent["images"][0].data == b.read_bytes()
    assert tray.images == [] and window.composer.toPlainText() == ""
    # stored with the message, shown as a thumbnail, and shown again when the conversation is reopened
    conv = window.chat_controller.current_id
    user = window.store.messages(conv)[0]
    assert [i.data for i in window.store.attachments(user.id)] == [b.read_bytes()]
    row = window.chat.messages[0].images_row
    qtbot.waitUntil(lambda: not row.buttons[0].icon().isNull(), timeout=20000)
    window.chat_controller.open(conv)
    assert [i.name for i in window.chat.messages[0].images_row.images] == ["b.jpg"]
    dialog = window.chat.messages[0].images_row.open(0)
    qtbot.waitUntil(lambda: dialog.shown, timeout=20000)
    assert dialog.label.pixmap().width() == 300  # not enlarged, not shrunk below its size
    # edit and resend: the new version keeps the message's images, and sends them again
    window.chat_controller.edit_and_resend(0, "and now?")
    qtbot.waitUntil(lambda: not window.chat_controller.streaming and len(backend.calls) == 2, timeout=10000)
    edited = window.store.messages(conv)[0]
    assert edited.content == "and now?" and edited.id != user.id
    assert [i.data for i in window.store.attachments(edited.id)] == [b.read_bytes()]
    assert [i.name for i in backend.calls[-1]["messages"][-1]["images"]] == ["b.jpg"]


def test_each_image_shows_its_own_cost_and_the_total(make_window, qtbot, tmp_path, monkeypatch):
    """The cost of each image is asked of the worker (never the GUI thread); Idefics3-like costs
    that grow with the image: 40x30 -> 128, 300x200 -> 1344 (FakeBackend.image_cost)."""
    from PySide6.QtWidgets import QLabel

    backend = FakeBackend(vision=True)
    window = make_window(backend)
    tray = window.image_tray
    backend.thread_names.clear()
    _attach(window, monkeypatch, _png(tmp_path / "small.png"), _png(tmp_path / "big.png", (300, 200), 1))
    qtbot.waitUntil(lambda: len(tray.images) == 2 and None not in tray.image_costs(), timeout=60000)
    by_name = dict(zip([i.name for i in tray.images], tray.image_costs()))
    assert by_name == {"small.png": 128, "big.png": 1344}
    assert backend.thread_names == {"worker"} and sorted(backend.costed) == ["big.png", "small.png"]
    labels = sorted(label.text() for label in tray.findChildren(QLabel, "imageCost"))
    assert labels == ["128 tokens", "1344 tokens"]
    assert tray.info_label.text() == "2 of at most 4 images, 1472 context tokens in all"
    # removing one takes its cost out of the total
    tray.remove([i.name for i in tray.images].index("big.png"))
    assert tray.image_costs() == [128]
    assert tray.info_label.text() == "1 of at most 4 images, 128 context tokens in all"
    assert [label.text() for label in tray.findChildren(QLabel, "imageCost")] == ["128 tokens"]


def test_a_failed_cost_is_shown_and_a_stale_answer_dropped(make_window, qtbot, tmp_path, monkeypatch):
    window = make_window(FakeBackend(vision=True))
    tray = window.image_tray
    _attach(window, monkeypatch, _png(tmp_path / "a.png"))
    qtbot.waitUntil(lambda: tray.image_costs() == [128], timeout=60000)
    token = tray._cost_tokens[0]
    tray.set_cost(token + 1000, 5)  # not an image of the tray: ignored
    assert tray.image_costs() == [128]
    tray.set_model("Other", True, 4, 576)  # a new model: asked again, the old answer is stale
    assert tray.image_costs() == [None] and "counting 1…" in tray.info_label.text()
    tray.set_cost(token, 7)
    assert tray.image_costs() == [None]
    tray.cost_failed(tray._cost_tokens[0], "the image cannot be read")
    from PySide6.QtWidgets import QLabel
    label = tray.findChild(QLabel, "imageCost")
    assert label.text() == "? tokens" and label.toolTip() == "the image cannot be read"
    qtbot.waitUntil(lambda: tray.image_costs() == [128], timeout=10000)  # the worker's answer, for this model


def test_paste_and_drop_images(make_window, qtbot, tmp_path):
    window = make_window(FakeBackend(vision=True))
    tray = window.image_tray
    image = QImage(50, 20, QImage.Format_RGB32)
    image.fill(0xFF3366)
    mime = QMimeData()
    mime.setImageData(image)
    assert window.composer.canInsertFromMimeData(mime)
    window.composer.insertFromMimeData(mime)  # what Ctrl+V does with an image on the clipboard
    dropped = QMimeData()
    dropped.setUrls([QUrl.fromLocalFile(str(_png(tmp_path / "drop.png")))])
    window.composer.insertFromMimeData(dropped)  # what a drop of a file does
    qtbot.waitUntil(lambda: len(tray.images) == 2, timeout=20000)
    names = sorted(i.name for i in tray.images)
    assert names == sorted(["drop.png", "pasted image"])
    pasted = next(i for i in tray.images if i.name == "pasted image")
    assert Image.open(io.BytesIO(pasted.data)).size == (50, 20)
    text = QMimeData()
    text.setText("plain words")
    window.composer.insertFromMimeData(text)
    assert window.composer.toPlainText() == "plain words"


def test_bad_image_is_a_clear_error_in_the_composer(make_window, qtbot, tmp_path, monkeypatch):
    window = make_window(FakeBackend(vision=True))
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    _attach(window, monkeypatch, bad)
    tray = window.image_tray
    qtbot.waitUntil(lambda: not tray.pending, timeout=20000)
    assert tray.images == [] and not tray.error_label.isHidden()
    assert "photo.png" in tray.error_label.text() and "damaged or truncated" in tray.error_label.text()


def test_text_only_model_refuses_at_send_and_keeps_everything(make_window, qtbot, tmp_path, monkeypatch):
    backend = FakeBackend()
    window = make_window(backend)
    _attach(window, monkeypatch, _png(tmp_path / "a.png"))
    tray = window.image_tray
    qtbot.waitUntil(lambda: len(tray.images) == 1, timeout=20000)
    assert "cannot see images" in tray.info_label.text()
    window.composer.setPlainText("look at this")
    window.send()
    assert backend.calls == []
    assert window.composer.toPlainText() == "look at this" and len(tray.images) == 1
    assert tray.error_label.text() == (f"This model cannot see images ({window.model_info.name}); "
                                       "remove them or load a vision model.")
    # the controller refuses too (headless callers)
    assert not window.chat_controller.send("look", images=list(tray.images))
    tray.remove(0)
    window.send()
    qtbot.waitUntil(lambda: bool(backend.calls), timeout=60000)
    assert "images" not in backend.calls[-1]["messages"][-1]


def test_a_decompression_bomb_and_a_wrong_extension_in_the_composer(make_window, qtbot, tmp_path, monkeypatch):
    """A real decompression bomb (a few kilobytes, 400 M pixels) is an error under the composer,
    refused in bounded time without decoding; the image already attached, the text typed and a
    JPEG named .png (read for what it is) all stay."""
    import time

    from helpers.tiny_llava import bomb_png

    window = make_window(FakeBackend(vision=True))
    tray = window.image_tray
    good = _png(tmp_path / "good.png")
    _attach(window, monkeypatch, good)
    qtbot.waitUntil(lambda: len(tray.images) == 1 and not tray.pending, timeout=20000)
    window.composer.setPlainText("keep me")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png())
    jpeg = tmp_path / "photo.png"
    Image.new("RGB", (30, 20), "red").save(jpeg, format="JPEG")
    start = time.monotonic()
    _attach(window, monkeypatch, bomb, jpeg)
    qtbot.waitUntil(lambda: not tray.pending, timeout=20000)
    assert time.monotonic() - start < 10
    assert not tray.error_label.isHidden()
    assert "bomb.png" in tray.error_label.text() and "too large to decode safely" in tray.error_label.text()
    assert [i.name for i in tray.images] == ["good.png", "photo.png"]
    assert (tray.images[1].width, tray.images[1].height) == (30, 20)
    assert window.composer.toPlainText() == "keep me"


def _send_two_images(window, qtbot, monkeypatch, tmp_path, backend):
    tray = window.image_tray
    _attach(window, monkeypatch, _png(tmp_path / "a.png"), _png(tmp_path / "b.png", (50, 40), 1))
    qtbot.waitUntil(lambda: len(tray.images) == 2 and not tray.pending, timeout=20000)
    window.composer.setPlainText("compare them")
    window.send()
    qtbot.waitUntil(lambda: not window.chat_controller.streaming and len(backend.calls) == 1, timeout=60000)
    return window.chat_controller.current_id


def test_editing_a_message_can_leave_its_images_out(make_window, qtbot, tmp_path, monkeypatch):
    """Edit shows a Remove toggle under each of the message's images; the new version keeps the
    others (stored and sent), the earlier version keeps all of them, and Cancel changes nothing."""
    from PySide6.QtWidgets import QPushButton

    backend = FakeBackend(vision=True)
    window = make_window(backend)
    conv = _send_two_images(window, qtbot, monkeypatch, tmp_path, backend)
    original = window.store.messages(conv)[0]
    message = window.chat.messages[0]
    row = message.images_row
    assert all(t.isHidden() for t in row.remove_toggles)
    message.edit_button.click()
    assert [t.isVisibleTo(message) for t in row.remove_toggles] == [True, True]
    assert [t.accessibleName() for t in row.remove_toggles] == ["Leave image a.png out of the edited message",
                                                                 "Leave image b.png out of the edited message"]
    row.remove_toggles[0].click()
    assert [i.name for i in row.chosen()] == ["b.png"] and not row.buttons[0].isEnabled()
    assert row.remove_toggles[0].text() == "Keep"
    message._editor.setPlainText("only the second")
    save = next(b for b in message.findChildren(QPushButton) if b.text() == "Save && resend")
    save.click()
    qtbot.waitUntil(lambda: not window.chat_controller.streaming and len(backend.calls) == 2, timeout=60000)
    edited = window.store.messages(conv)[0]
    assert edited.id != original.id and edited.content == "only the second"
    assert [a.name for a in window.store.attachments(edited.id)] == ["b.png"]
    assert [i.name for i in backend.calls[-1]["messages"][-1]["images"]] == ["b.png"]
    assert [i.name for i in window.chat.messages[0].images_row.images] == ["b.png"]
    assert [a.name for a in window.store.attachments(original.id)] == ["a.png", "b.png"]  # the earlier version
    # Cancel: the toggles go, nothing is marked, no new version
    message = window.chat.messages[0]
    message.edit_button.click()
    message.images_row.remove_toggles[0].click()
    cancel = next(b for b in message.findChildren(QPushButton) if b.text() == "Cancel")
    cancel.click()
    assert [i.name for i in message.images_row.chosen()] == ["b.png"] and message.images_row.remove_toggles[0].isHidden()
    assert len(window.store.siblings(edited.id)) == 2 and len(backend.calls) == 2


def test_a_text_only_model_edits_once_the_images_are_left_out(make_window, qtbot, tmp_path, monkeypatch):
    from dataclasses import replace

    backend = FakeBackend(vision=True)
    window = make_window(backend)
    conv = _send_two_images(window, qtbot, monkeypatch, tmp_path, backend)
    controller = window.chat_controller
    monkeypatch.setattr(controller.model, "info", replace(controller.model.info, vision=False))  # as if reloaded
    controller.edit_and_resend(0, "text only now")  # keeping the images: refused, nothing made
    assert len(window.store.siblings(window.store.messages(conv)[0].id)) == 1 and len(backend.calls) == 1
    assert "cannot see images" in window.statusBar().currentMessage()
    controller.edit_and_resend(0, "text only now", [])  # both images left out
    qtbot.waitUntil(lambda: not controller.streaming and len(backend.calls) == 2, timeout=60000)
    assert "images" not in backend.calls[-1]["messages"][-1]
    assert window.store.attachments(window.store.messages(conv)[0].id) == []


def test_editing_a_message_can_add_images(make_window, qtbot, tmp_path, monkeypatch):
    """"Add image…" while editing: files are read and checked off the GUI thread (a bad one is an
    error under the row, the others stay), shown with the message's, and go with the new version;
    a text-only message can gain an image too. Cancel drops what was added."""
    from PySide6.QtWidgets import QPushButton

    backend = FakeBackend(vision=True)
    window = make_window(backend)
    conv = _send_two_images(window, qtbot, monkeypatch, tmp_path, backend)
    message = window.chat.messages[0]
    message.edit_button.click()
    row = message.images_row
    c = _png(tmp_path / "c.png", (20, 60), 2)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(c), str(bad)], ""))
    add = next(b for b in message.findChildren(QPushButton) if b.text() == "Add image…")
    add.click()
    qtbot.waitUntil(lambda: row.pending == 0, timeout=20000)
    assert [i.name for i in row.images] == ["a.png", "b.png", "c.png"]
    assert not row.error_label.isHidden() and "bad.png" in row.error_label.text()
    assert not row.buttons[2].icon().isNull()  # its thumbnail, made when it was read
    row.remove_toggles[0].click()
    save = next(b for b in message.findChildren(QPushButton) if b.text() == "Save && resend")
    row.pending = 1  # as while another added image is being read: Save waits and says so
    save.click()
    assert message.is_editing() and "still being read" in row.error_label.text() and len(backend.calls) == 1
    row.pending = 0
    save.click()
    qtbot.waitUntil(lambda: not window.chat_controller.streaming and len(backend.calls) == 2, timeout=60000)
    edited = window.store.messages(conv)[0]
    assert [a.name for a in window.store.attachments(edited.id)] == ["b.png", "c.png"]
    assert window.store.attachments(edited.id)[1].data == c.read_bytes()
    assert [i.name for i in backend.calls[-1]["messages"][-1]["images"]] == ["b.png", "c.png"]
    # Cancel drops what was added
    message = window.chat.messages[0]
    message.edit_button.click()
    message.images_row.add_paths([str(c)])
    qtbot.waitUntil(lambda: message.images_row.pending == 0, timeout=20000)
    assert len(message.images_row.images) == 3
    next(b for b in message.findChildren(QPushButton) if b.text() == "Cancel").click()
    assert [i.name for i in message.images_row.images] == ["b.png", "c.png"]
    # the reply's own message (text only) gains an image through a new question
    window.composer.setPlainText("just text")
    window.send()
    qtbot.waitUntil(lambda: not window.chat_controller.streaming and len(backend.calls) == 3, timeout=60000)
    text_only = window.chat.messages[2]
    assert getattr(text_only, "images_row", None) is None
    text_only.edit_button.click()
    text_only.images_row.add_paths([str(c)])
    qtbot.waitUntil(lambda: text_only.images_row.pending == 0 and len(text_only.images_row.images) == 1,
                    timeout=20000)
    next(b for b in text_only.findChildren(QPushButton) if b.text() == "Save && resend").click()
    qtbot.waitUntil(lambda: not window.chat_controller.streaming and len(backend.calls) == 4, timeout=60000)
    assert [i.name for i in backend.calls[-1]["messages"][-1]["images"]] == ["c.png"]
    assert backend.calls[-1]["messages"][-1]["content"] == "just text"
