"""The Train tab's documents: drag and drop, the ingestion preview, work off the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent

from chatapp.ui.training_panel import TrainingPanel


# -- documents -----------------------------------------------------------------------------------
def test_dropping_a_folder_sets_data_and_previews_skips(qtbot, make_panel, docs):
    panel = make_panel(with_docs=False)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(docs))])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    panel.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    panel.dropEvent(drop)
    assert drop.isAccepted()
    assert panel.docs.data_paths == [docs] and panel.form.name_edit.text() == "docs"
    qtbot.waitUntil(lambda: panel.docs.preview_used is not None, timeout=60000)
    # every file with its size and tokens, the skipped ones first with why (issue 19, item 19)
    notes_chars = len("# Penguins\n\nPenguins are flightless birds of the southern seas.")
    assert panel.docs.preview_label.text().startswith(
        f"1 files used ({notes_chars} B of text, about {round(notes_chars / 4)} tokens), 1 skipped.")
    table = panel.docs.files_table
    rows = [[table.item(r, c).text() for c in range(4)] for r in range(table.rowCount())]
    assert rows == [["blob.bin", "1.0 KiB", "", "no: binary: .bin file"],
                    ["notes.md", f"{(docs / 'notes.md').stat().st_size} B", f"about {round(notes_chars / 4)}", "yes"]]
    assert panel.run.start_button.isEnabled()


def test_drop_of_non_local_urls_is_refused(qtbot, make_panel):
    panel = make_panel(with_docs=False)
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.com/a.txt")])
    enter = QDragEnterEvent(QPoint(1, 1), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    enter.setAccepted(False)
    panel.dragEnterEvent(enter)
    assert not enter.isAccepted() and panel.docs.data_paths == []


def test_only_unusable_files_disable_start(qtbot, make_panel, tmp_path):
    panel = make_panel(with_docs=False)
    blob = tmp_path / "only.bin"
    blob.write_bytes(b"\x00\x01" * 10)
    panel.docs.set_data_paths([blob])
    qtbot.waitUntil(lambda: panel.docs.preview_used is not None, timeout=60000)
    assert panel.docs.preview_used == 0 and not panel.run.start_button.isEnabled()
    assert "None of these files can be used" in panel.docs.preview_label.text()


def test_background_results_arrive_in_the_gui_thread(qtbot, docs, tmp_path):
    import threading

    threads = []

    panel = TrainingPanel(adapters_dir=tmp_path / "adapters")
    qtbot.addWidget(panel)
    shown = panel.docs.show_ingest_report

    def recording(report):
        threads.append(threading.current_thread())
        shown(report)

    panel.docs.show_ingest_report = recording
    panel.docs.set_data_paths([docs])
    qtbot.waitUntil(lambda: panel.docs.preview_used is not None, timeout=60000)
    assert threads == [threading.main_thread()]
    panel.shutdown()
