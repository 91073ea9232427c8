"""A full disk while saving a message, a checkpoint, an adapter or the library index: the error
names the file and says to free space, nothing partial lands over what was there (temp file +
fsync + rename; SQLite transactions rolled back), and writing works again once there is room.
Full disks are made three ways: SQLite's max_page_count (SQLITE_FULL, the same code a full disk
gives), RLIMIT_FSIZE in a child (the kernel refuses the write: EFBIG), and fsync failing with
ENOSPC for one named file."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from chatapp.documents.library import LibraryError, LibraryStore
from chatapp.model.config import ModelConfig
from chatapp.model.lora import LoRAConfig, apply_lora, lora_layers
from chatapp.model.transformer import Transformer
from chatapp.paths import WriteError
from chatapp.storage.db import ConversationStore, StorageError
from chatapp.weights.peft_adapter import CONFIG_FILE, load_adapter, save_adapter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fill(conn, extra_pages: int = 0) -> None:
    """Make the database full: it may not grow beyond its pages now (SQLITE_FULL)."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + extra_pages}")


def test_message_saved_on_a_full_disk_names_the_database_and_keeps_the_history(tmp_path):
    path = tmp_path / "conversations.sqlite3"
    store = ConversationStore(path)
    try:
        conv = store.create_conversation("kept")
        store.add_message(conv.id, "user", "before the disk filled")
        _fill(store._conn)
        with pytest.raises(StorageError) as caught:
            store.add_message(conv.id, "user", "x" * 200_000)
        message = str(caught.value)
        assert str(path) in message and "full" in message and "free some disk space" in message
        assert [m.content for m in store.messages(conv.id)] == ["before the disk filled"]
        store._conn.execute("PRAGMA max_page_count = 1073741823")  # space again
        store.add_message(conv.id, "user", "after")
        assert [m.content for m in store.messages(conv.id)] == ["before the disk filled", "after"]
    finally:
        store.close()


def test_library_index_on_a_full_disk_names_the_file_and_keeps_the_index(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The lighthouse keeper logs the tides every morning.\n")
    path = tmp_path / "library.sqlite3"
    with LibraryStore(path) as store:
        store.add("notes", [docs])
        store.index("notes")
        before = [h.text for h in store.search("notes", "lighthouse")]
        assert before
        (docs / "b.txt").write_text("\n\n".join(f"Paragraph {i} about harbour cranes and tugboats." * 20
                                                for i in range(200)))
        _fill(store._conn)
        with pytest.raises(LibraryError) as caught:
            store.index("notes")
        message = str(caught.value)
        assert str(path) in message and "free some disk space" in message and "as it was" in message
        assert [h.text for h in store.search("notes", "lighthouse")] == before
        assert store.search("notes", "tugboats") == []
        store._conn.execute("PRAGMA max_page_count = 1073741823")
        store.index("notes")
        assert store.search("notes", "tugboats")


def _lora_model(seed: int) -> Transformer:
    torch.manual_seed(seed)
    model = Transformer(ModelConfig(arch="llama", vocab_size=64, dim=32, n_layers=2, n_heads=2,
                                    intermediate_size=64, max_seq_len=32))
    apply_lora(model, LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_B.normal_(0.0, 0.1)
    return model


def test_adapter_saved_on_a_full_disk_leaves_the_old_adapter_whole(tmp_path, monkeypatch):
    """The disk fills while the last of the three files is written: the old code had already
    put the new weights in place next to the old config."""
    folder = tmp_path / "adapter"
    save_adapter(_lora_model(0), LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"]), folder, "base")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real_fsync = os.fsync

    def full_at_the_config(fd):
        if CONFIG_FILE in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_at_the_config)
    with pytest.raises(WriteError) as caught:
        save_adapter(_lora_model(1), LoRAConfig(r=4, alpha=16, target_modules=["q_proj", "v_proj"]), folder, "base")
    monkeypatch.undo()
    assert str(folder / CONFIG_FILE) in str(caught.value) and "free some disk space" in str(caught.value)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no temp file, nothing mixed
    assert load_adapter(_lora_model(0), folder).config.alpha == 8


CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing us
def limit(n_bytes):
    resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, resource.RLIM_INFINITY))
"""


def _run_child(code: str, *args: str) -> list[str]:
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-c", CHILD + textwrap.dedent(code), *args], capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE and SIGXFSZ are POSIX")
def test_checkpoint_on_a_full_disk_names_it_and_the_previous_one_resumes(tmp_path):
    lines = _run_child("""
        import torch
        from pathlib import Path
        from chatapp.paths import WriteError
        from chatapp.training.checkpoint import latest_readable_checkpoint, load_checkpoint, save_checkpoint
        root = Path(sys.argv[1])
        def save(step, size):
            w = {"w": torch.full((size,), float(step))}
            opt = torch.optim.SGD([torch.nn.Parameter(w["w"].clone())], lr=0.1)
            return save_checkpoint(root, step, w, opt.state_dict(), [["w"]],
                                   {"torch": torch.get_rng_state(), "python": (3, tuple(range(625)), None)},
                                   {"epoch": 0}, {"lr": 0.1}, keep=2)
        save(10, 1000)
        limit(64 * 1024)
        try:
            save(20, 1_000_000)
            print("SAVED")
        except WriteError as exc:
            print("ERROR", exc)
        latest = latest_readable_checkpoint(root)
        print("LATEST", latest.name, load_checkpoint(latest).step)
        print("LEFT", sorted(p.name for p in root.iterdir()))
    """, str(tmp_path))
    error = next(line for line in lines if line.startswith(("ERROR", "SAVED")))
    assert error.startswith(f"ERROR cannot write {tmp_path / 'step-00000020'}: File too large (free some disk space")
    assert "LATEST step-00000010 10" in lines
    assert "LEFT ['step-00000010']" in lines  # no temp folder, no half checkpoint


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE and SIGXFSZ are POSIX")
def test_atomic_file_on_a_full_disk_keeps_the_old_file(tmp_path):
    lines = _run_child("""
        from pathlib import Path
        from chatapp.paths import WriteError, atomic_write_text
        path = Path(sys.argv[1]) / "index.json"
        atomic_write_text(path, "old")
        limit(4096)
        try:
            atomic_write_text(path, "n" * 100_000)
        except WriteError as exc:
            print("ERROR", exc)
        print("CONTENT", path.read_text(), sorted(p.name for p in path.parent.iterdir()))
    """, str(tmp_path))
    assert lines[0].startswith(f"ERROR cannot write {tmp_path / 'index.json'}: File too large (free some disk space")
    assert lines[1] == "CONTENT old ['index.json']"
