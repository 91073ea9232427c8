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
