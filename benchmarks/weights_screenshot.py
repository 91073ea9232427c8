"""Screenshot of the model picker's weights choice: each option's memory and fit for this machine.

    Xvfb :7 -screen 0 1400x900x24 & DISPLAY=:7 QT_QPA_PLATFORM=xcb \
        .venv/bin/python benchmarks/weights_screenshot.py --out docs/screenshots/weights.png

The real window in a throw-away profile. Estimates are the real backend's (config only, in the
worker thread, with this machine's free memory); replies and loads are the scripted backend's
of benchmarks/screenshots.py (no weights read). The list holds the bundled model and an 8B
Llama-3-shaped model given by its config.json alone (the estimate reads nothing else), chosen
so that float32 does not fit a 16-32 GB machine and the compact options do. The script picks
that model, opens its weights list and grabs the screen (window and list).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from PySide6.QtCore import QRect  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from screenshots import ScriptedBackend, close, settle, wait_until  # noqa: E402

LLAMA_8B = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
            "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
            "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 8192,
            "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": False}


class EstimatingBackend(ScriptedBackend):
    """Scripted replies; the real config-only estimate."""

    def estimate(self, spec, options):
        from chatapp.engine.backend import ChatBackend

        return ChatBackend().estimate(spec, options)


def model_folder(root: Path) -> Path:
    """An 8B model folder holding its config (empty weight and tokenizer files: never read here)."""
    folder = root / "Llama-3-8B-Instruct"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(LLAMA_8B))
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "tokenizer.json").write_text("{}")
    return folder


def shoot(profile: Path, out: Path, language: str) -> None:
    from chatapp.storage.db import ConversationStore
    from chatapp.storage.settings import SettingsStore
    from chatapp.ui.i18n import install_translator
    from chatapp.ui.main_window import MainWindow
    from chatapp.ui.theme import apply_theme

    app = QApplication.instance()
    apply_theme(app, "light")
    translators = install_translator(app, language) if language else []
    big = str(model_folder(profile))
    window = MainWindow(ConversationStore(profile / "conversations.sqlite3"), SettingsStore(profile / "settings.json"),
                        EstimatingBackend(), autoload=True, adapters_dir=profile / "adapters",
                        list_models=lambda: [("SmolLM2-135M-Instruct", "default"), ("Llama-3-8B-Instruct", big)])
    try:
        window.resize(1200, 700)
        window.show()
        wait_until(lambda: window.model_info is not None, 30, "the model to load")
        header = window.header
        header.model_combo.setCurrentIndex(1)
        combo = header.weights_combo
        wait_until(lambda: "GiB" in combo.itemText(combo.findData("float32")), 60, "the 8B model's estimate")
        settle(300)
        for i in range(combo.count()):
            print(f"  {combo.itemText(i)}")
        print("  estimate:", header.estimate_label.text())
        combo.showPopup()
        settle(400)
        popup = combo.view().window()
        area = window.frameGeometry().united(popup.frameGeometry())
        screen = window.screen()
        area = area.intersected(screen.geometry())
        if QApplication.platformName() == "xcb":
            pixmap = screen.grabWindow(0, area.x(), area.y(), area.width(), area.height())
        else:  # no real screen: the window, then the list drawn over it where it stands
            pixmap = window.grab()
            from PySide6.QtGui import QPainter
            painter = QPainter(pixmap)
            top_left = window.mapFromGlobal(popup.pos())
            painter.drawPixmap(top_left, popup.grab())
            painter.end()
            pixmap = pixmap.copy(QRect(0, 0, window.width(), min(window.height(), top_left.y() + popup.height() + 20)))
        if not pixmap.save(str(out)):
            raise SystemExit(f"could not write {out}")
        print(f"{out}  {out.stat().st_size // 1024} KB")
        combo.hidePopup()
    finally:
        close(window, translators)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "screenshots" / "weights.png")
    parser.add_argument("--language", default="", help="e.g. zh_CN")
    args = parser.parse_args(argv)
    QApplication.instance() or QApplication(sys.argv)
    with tempfile.TemporaryDirectory() as tmp:
        shoot(Path(tmp), args.out, args.language)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
