"""What training runs leave behind: adapters listed (damaged ones too), checkpoints found."""

from __future__ import annotations

from chatapp.training.outputs import find_checkpoint, scan_adapters


def test_scan_adapters_reports_damaged_folders(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{not json")
    (folder / "adapter_model.safetensors").write_bytes(b"")
    rows = scan_adapters(tmp_path)
    assert len(rows) == 1 and rows[0].kind == "adapter" and "not valid JSON" in rows[0].error
    assert scan_adapters(tmp_path / "missing") == []


def test_find_checkpoint_picks_the_newest(tmp_path):
    for step in (10, 200, 30):
        (tmp_path / "checkpoints" / f"step-{step:08d}").mkdir(parents=True)
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step-00000200"
    assert find_checkpoint(tmp_path / "none") is None
