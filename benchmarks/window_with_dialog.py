"""The setup the window-with-a-dialog screenshots share (images_screenshot.py,
documents_screenshot.py): a throw-away profile, the real window on a scripted backend, a shot of
the window with a dialog drawn over it, and the window closed even when the shot fails.

    def shoot(window):
        ...                                       # drive the window, open a dialog
        return dialog, QPoint(x, y)               # where the dialog goes over the window
    sys.exit(run(argv, __doc__, "images.png", Backend(), shoot, prepare=None))
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from PySide6.QtCore import QPoint  # noqa: E402
from PySide6.QtGui import QPainter, QPixmap  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from screenshots import close, make_window, settle  # noqa: E402


def save_window_with(window, dialog, at: QPoint, out: Path) -> None:
    """The window's pixels with `dialog`'s drawn over them at `at`, saved to `out` (PNG)."""
    settle(400)
    shot = window.grab()
    view = dialog.grab()
    canvas = QPixmap(shot.width(), shot.height())
    painter = QPainter(canvas)
    painter.drawPixmap(0, 0, shot)
    painter.drawPixmap(at, view)
    painter.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not canvas.save(str(out)):
        raise SystemExit(f"could not write {out}")
    print(out)


def run(argv, doc: str, default_name: str, backend, shoot: Callable,
        prepare: Optional[Callable[[Path], None]] = None, models=None) -> int:
    """Parse `--out`, make the window on `backend` in a temporary profile (`prepare(profile)` first:
    libraries to index; `models`: the model list), `shoot(window)` -> (dialog, where), save the
    composite, close the window."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "screenshots" / default_name)
    args = parser.parse_args(argv)
    _app = QApplication.instance() or QApplication(sys.argv)  # kept alive while the window runs
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp)
        if prepare is not None:
            prepare(profile)
        window, _ = make_window(profile, backend, models=models)
        try:
            dialog, at = shoot(window)
            save_window_with(window, dialog, at, args.out)
        finally:  # also on a timeout: the generation thread is stopped before the process ends
            close(window)
    return 0
