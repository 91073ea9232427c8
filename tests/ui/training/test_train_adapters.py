"""The Train tab's adapters list: listed, chosen, compared, damaged, exported merged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from chatapp.engine.side_by_side import PaneSource
from chatapp.ui.training_panel import TrainingPanel


# -- adapters ------------------------------------------------------------------------------------
def _fake_adapter(root: Path, name: str, ppl_after: float) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "SmolLM2-135M-Instruct",
        "r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"], "bias": "none"}))
    (folder / "adapter_model.safetensors").write_bytes(b"")  # read_adapter_info does not open it
    (folder / "chatapp_adapter.json").write_text(json.dumps({
        "format": "chatapp-lora-adapter", "version": 1, "base_model": "SmolLM2-135M-Instruct",
        "metadata": {"eval_before": {"step": 0, "val_loss": 3.69, "val_ppl": 40.0},  # as chatapp train writes
                     "eval_after": {"step": 10, "val_loss": 2.5, "val_ppl": ppl_after}}}))
    return folder


def test_adapters_listed_and_chosen(qtbot, make_panel, tmp_path):
    root = tmp_path / "adapters"
    adapter = _fake_adapter(root, "notes-20250101-120000", 12.5)
    (root / "half-written").mkdir()  # no adapter_config.json: not listed
    panel = make_panel(with_docs=False)
    qtbot.waitUntil(lambda: panel.outputs.table.rowCount() == 1, timeout=120000)  # the scan imports torch
    cells = [panel.outputs.table.item(0, c).text() for c in range(4)]
    assert cells[0] == "notes-20250101-120000" and cells[1] == "SmolLM2-135M-Instruct" and cells[3] == "12.50"
    assert not panel.outputs.chat_button.isEnabled()
    panel.outputs.table.selectRow(0)
    assert panel.outputs.chat_button.isEnabled() and panel.outputs.chat_button.text() == "Chat with this adapter"
    with qtbot.waitSignal(panel.use_adapter, timeout=1000) as blocker:
        qtbot.mouseClick(panel.outputs.chat_button, Qt.LeftButton)
    assert blocker.args == [str(adapter)]
    assert not panel.outputs.off_button.isEnabled()  # no adapter in use: nothing to switch off
    panel.set_active_adapter(str(adapter))
    assert panel.outputs.table.item(0, 0).text().endswith("(in use)")
    with qtbot.waitSignal(panel.adapter_off, timeout=1000):
        qtbot.mouseClick(panel.outputs.off_button, Qt.LeftButton)


def test_compare_view_round_trip(qtbot, make_panel, tmp_path):
    adapter = _fake_adapter(tmp_path / "adapters", "a-1", 10.0)
    panel = make_panel(with_docs=False)
    qtbot.waitUntil(lambda: panel.outputs.table.rowCount() == 1, timeout=120000)  # the scan imports torch
    panel.outputs.table.selectRow(0)
    qtbot.mouseClick(panel.outputs.compare_button, Qt.LeftButton)
    view = panel.compare_view
    assert view.isVisible() and view.sources() == (PaneSource(), PaneSource("adapter", str(adapter)))
    view.prompt.setPlainText("What are penguins?")
    view.seed.setValue(7)
    with qtbot.waitSignal(panel.compare_requested, timeout=1000) as blocker:
        qtbot.mouseClick(view.run_button, Qt.LeftButton)
    assert blocker.args == ["What are penguins?", 7, (PaneSource(), PaneSource("adapter", str(adapter)))]
    assert not view.run_button.isEnabled()
    for delta in ("Birds", " of the", " south."):
        view.append(0, delta)
    view.show_text(1, "Flightless seabirds.")
    view.append(1, " Indeed.")
    view.set_running(False)
    assert view.left_text.toPlainText() == "Birds of the south."
    assert view.right_text.toPlainText() == "Flightless seabirds. Indeed."
    assert view.run_button.isEnabled()


def test_damaged_adapter_is_listed_but_not_offered(qtbot, make_panel, tmp_path):
    folder = tmp_path / "adapters" / "broken"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA"}')  # no r, no target_modules
    (folder / "adapter_model.safetensors").write_bytes(b"")
    panel = make_panel(with_docs=False)
    qtbot.waitUntil(lambda: panel.outputs.table.rowCount() == 1, timeout=120000)  # the scan imports torch
    panel.outputs.table.selectRow(0)
    assert panel.outputs.table.item(0, 0).text() == "broken (damaged)"
    assert "target_modules" in panel.outputs.table.item(0, 0).toolTip()
    assert not panel.outputs.chat_button.isEnabled() and not panel.outputs.compare_button.isEnabled()


# -- export of a merged model --------------------------------------------------------------------
def _trained_adapter(tmp_path: Path) -> tuple[Path, Path]:
    """(tiny base model folder, adapters root holding one LoRA adapter trained on it)."""
    import contextlib
    import io

    from helpers.tiny_hf import tiny_llama_folder, write_corpus

    from chatapp.cli import main
    base = tiny_llama_folder(tmp_path / "base")
    docs = write_corpus(tmp_path / "docs")
    root = tmp_path / "adapters"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["train", "--model", str(base), "--data", str(docs), "--out", str(root / "notes"),
                     "--max-steps", "2", "--lr", "5e-2", "--block-size", "32", "--batch-size", "4",
                     "--lora-targets", "q_proj,v_proj", "--threads", "1", "--progress", "jsonl"])
    assert code == 0
    return base, root


def _export(qtbot, panel, folder: Path) -> list[Path]:
    """Export the first row into `folder`, as named in the dialog; the folder the dialog proposed."""
    qtbot.waitUntil(lambda: panel.outputs.table.rowCount() >= 1, timeout=120000)
    panel.outputs.table.selectRow(0)
    assert panel.outputs.export_button.isEnabled()
    proposed = []
    panel.outputs.choose_export_folder = lambda suggested: proposed.append(suggested) or folder
    qtbot.mouseClick(panel.outputs.export_button, Qt.LeftButton)
    assert panel.outputs.exporter is not None and not panel.outputs.export_button.isEnabled()
    qtbot.waitUntil(lambda: panel.outputs.exporter is None, timeout=120000)
    return proposed


def test_export_writes_the_merged_model_and_lists_it(qtbot, tmp_path):
    pytest.importorskip("transformers")
    import torch

    from chatapp.engine.loader import load_model
    base, root = _trained_adapter(tmp_path)
    panel = TrainingPanel(model=str(base), adapters_dir=root)
    qtbot.addWidget(panel)
    try:
        # a new folder name is the destination itself (issue 19, item 8): no subfolder made inside it
        out = root / "my merged model"
        proposed = _export(qtbot, panel, out)
        assert proposed == [root / "notes-merged"]
        assert panel.run.status_label.text().startswith(f"Exported to {out}."), panel.run.status_label.text()
        assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
        # the merged model computes what the base model with the adapter computes
        tokens = torch.arange(5, 30)[None]
        with torch.inference_mode():
            merged = load_model(out, device="cpu").model(tokens)
            adapted = load_model(base, device="cpu", adapter=root / "notes").model(tokens)
        assert (merged - adapted).abs().max() < 1e-4
        qtbot.waitUntil(lambda: panel.outputs.table.rowCount() == 2, timeout=120000)  # now listed too
        kinds = sorted(entry.kind for entry in panel.outputs.adapters)
        assert kinds == ["adapter", "model"]
        # a second export does not overwrite the first: a folder holding files is refused, in words
        panel.outputs.table.selectRow(next(i for i, e in enumerate(panel.outputs.adapters) if e.kind == "adapter"))
        panel.outputs.choose_export_folder = lambda suggested: out
        panel.outputs.export_selected()
        assert panel.outputs.exporter is None
        assert panel.run.status_label.text() == (f"Cannot export to {out}: the folder is not empty; choose a new "
                                                 "folder name")
    finally:
        panel.shutdown(timeout_s=5.0)


def test_export_failure_is_said_plainly(qtbot, tmp_path):
    pytest.importorskip("transformers")
    import shutil

    base, root = _trained_adapter(tmp_path)
    shutil.rmtree(base)  # the base model is gone
    panel = TrainingPanel(model="default", adapters_dir=root)
    qtbot.addWidget(panel)
    try:
        _export(qtbot, panel, tmp_path / "notes-merged")
        text = panel.run.status_label.text()
        assert text.startswith("Export failed: ") and str(base) in text, text
        assert not (tmp_path / "notes-merged" / "model.safetensors").exists()
        assert panel.outputs.export_button.isEnabled()  # ready for another try
    finally:
        panel.shutdown(timeout_s=5.0)
