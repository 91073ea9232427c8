"""The Documents view, built standalone: index off the GUI thread with progress, cancel, search."""

from __future__ import annotations

import threading
import time

import pytest

from chatapp.documents import library as library_module
from chatapp.documents.library import LibraryStore
from chatapp.ui.documents_view import DocumentsView


@pytest.fixture
def folder(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guild.md").write_text("# Guild\n\n## Founding\n\nThe guild was founded by Orla Membrane.",
                                   encoding="utf-8")
    (docs / "boats.txt").write_text("Boats are painted blue every spring.", encoding="utf-8")
    return docs


@pytest.fixture
def view(qtbot, tmp_path):
    widget = DocumentsView(tmp_path / "index" / "library.sqlite3")
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()


def test_add_index_and_search(qtbot, view, folder, monkeypatch):
    threads = []
    real = library_module.read_file

    def recording(path, *args, **kwargs):
        threads.append(threading.current_thread())
        return real(path, *args, **kwargs)

    monkeypatch.setattr(library_module, "read_file", recording)
    assert view.libraries.count() == 0 and not view.reindex_button.isEnabled()
    view.add_to_library("notes", [folder])
    assert not view.progress.isHidden() or view.indexing is None
    qtbot.waitUntil(lambda: view.indexing is None, timeout=10000)
    assert threads and threading.main_thread() not in threads  # read off the GUI thread
    assert view.last_report.indexed == 2
    assert view.libraries.count() == 1 and view.libraries.item(0).text() == "notes (2 files)"
    assert view.selected_library() == "notes" and view.reindex_button.isEnabled()
    assert "2 indexed" in view.status.text()

    view.search_box.setText("who founded the guild")
    view.search_box.returnPressed.emit()
    qtbot.waitUntil(lambda: view.results.rowCount() > 0, timeout=5000)
    assert view.results.item(0, 0).text() == "guild.md"
    assert view.results.item(0, 1).text() == "Guild > Founding"
    assert "Orla Membrane" in view.results.item(0, 2).text()

    view.remove_selected()
    assert view.libraries.count() == 0 and view.results.rowCount() == 0


def test_progress_and_cancel(qtbot, view, tmp_path, monkeypatch):
    docs = tmp_path / "many"
    docs.mkdir()
    for i in range(60):
        (docs / f"f{i:02d}.txt").write_text(f"file number {i} talks about lanterns", encoding="utf-8")
    real = library_module.read_file

    def slow(path, *args, **kwargs):
        time.sleep(0.03)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(library_module, "read_file", slow)
    view.add_to_library("many", [docs])
    qtbot.waitUntil(lambda: view.progress.maximum() == 60 and view.progress.value() >= 3, timeout=10000)
    assert not view.cancel_button.isHidden()
    view.cancel_button.click()
    qtbot.waitUntil(lambda: view.indexing is None, timeout=10000)
    report = view.last_report
    assert report.cancelled and 0 < report.indexed < 60
    assert "cancelled" in view.status.text()
    assert view.progress.isHidden() and view.cancel_button.isHidden()
    with LibraryStore(view.db_path) as store:  # what was indexed is whole and searchable
        assert store.list()[0].files == report.indexed
    view.reindex()
    qtbot.waitUntil(lambda: view.indexing is None, timeout=20000)
    assert view.last_report.indexed == 60 - report.indexed and not view.last_report.cancelled


def test_a_missing_path_is_reported_in_the_view(qtbot, view, tmp_path):
    view.add_to_library("ghost", [tmp_path / "nowhere"])
    qtbot.waitUntil(lambda: view.indexing is None, timeout=5000)
    assert "Cannot index ghost" in view.status.text() and "no such file or folder" in view.status.text()
    assert view.libraries.count() == 0


def test_pick_an_embedding_model_folder_and_search_by_meaning(qtbot, view, folder, tmp_path, monkeypatch):
    import re

    from helpers.static_embeddings import synonym_model

    from chatapp.ui import documents_view as view_module

    words = {w for p in folder.iterdir() for w in re.findall(r"\w+", p.read_text(encoding="utf-8").lower())}
    model = synonym_model(tmp_path / "potion", [("founded", "established"), ("guild", "society")], sorted(words))
    view.add_to_library("notes", [folder])
    qtbot.waitUntil(lambda: view.indexing is None, timeout=10000)
    assert view.ranking.text() == "Ranked by words" and not view.words_only_button.isEnabled()

    loads = []
    real_load = library_module.load_static_embedder
    monkeypatch.setattr(library_module, "load_static_embedder",
                        lambda path: loads.append(threading.current_thread()) or real_load(path))
    monkeypatch.setattr(view_module.QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(model)))
    view.embedding_button.click()
    assert view.indexing == "notes"
    qtbot.waitUntil(lambda: view.indexing is None, timeout=10000)
    assert loads and threading.main_thread() not in loads  # checked and embedded off the GUI thread
    assert view.last_report.embedded == 3 and "3 passages embedded" in view.status.text()
    assert view.ranking.text() == "Ranked by words and meaning (potion)"
    assert "(3 of 3 passages embedded)" in view.libraries.item(0).toolTip()

    view.search_box.setText("Who established the society?")  # no word in common with the passage
    view.search_box.returnPressed.emit()
    qtbot.waitUntil(lambda: view.results.rowCount() > 0, timeout=5000)
    assert view.results.item(0, 0).text() == "guild.md"

    assert view.words_only_button.isEnabled()
    view.words_only_button.click()
    qtbot.waitUntil(lambda: view.indexing is None, timeout=10000)
    assert view.ranking.text() == "Ranked by words" and view.libraries.item(0).toolTip() == str(folder.resolve())


def test_a_wrong_embedding_folder_is_one_line_in_the_status(qtbot, view, folder, tmp_path):
    view.add_to_library("notes", [folder])
    qtbot.waitUntil(lambda: view.indexing is None, timeout=10000)
    (tmp_path / "empty").mkdir()
    view.set_embedding_model("notes", tmp_path / "empty")
    qtbot.waitUntil(lambda: view.indexing is None, timeout=10000)
    assert view.status.text().startswith("Cannot index notes: ") and "config.json is missing" in view.status.text()
    assert view.ranking.text() == "Ranked by words"
