"""Render resources/icons/chatapp.svg into the icon files the app and its packages use.

    .venv/bin/python packaging/make_icons.py            # PNGs only (needs PySide6's QtSvg)
    PYTHONPATH=/tmp/pillow .venv/bin/python packaging/make_icons.py   # + .ico and .icns

Writes resources/icons/chatapp-<size>.png for every size in PNG_SIZES (Qt's SVG renderer,
antialiased), then, when Pillow can be imported, chatapp.ico (Windows, 16-256 px) and
chatapp.icns (macOS, 16-512 px) built from those same PNGs rather than from Pillow's resizing.
Pillow is not an app dependency: install it into a throw-away folder, e.g.
`pip install --target /tmp/pillow pillow`. The generated files are committed, so a build
never needs this script; run it again only when the SVG changes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
SVG = ICONS / "chatapp.svg"
PNG_SIZES = (16, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 32, 48, 64, 128, 256)  # the ICO format stops at 256
ICNS_SIZES = (16, 32, 64, 128, 256, 512)


def render_pngs() -> dict[int, Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (kept alive)
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"error: {SVG} is not a valid SVG")
    written = {}
    for size in PNG_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        renderer.render(painter)
        painter.end()
        path = ICONS / f"chatapp-{size}.png"
        if not image.save(str(path), "PNG"):
            raise SystemExit(f"error: could not write {path}")
        written[size] = path
    return written


def write_ico_icns(pngs: dict[int, Path]) -> list[Path]:
    try:
        from PIL import Image
    except ImportError:
        print("Pillow is not importable: skipped chatapp.ico and chatapp.icns "
              "(pip install --target /tmp/pillow pillow; PYTHONPATH=/tmp/pillow ...)")
        return []
    images = {size: Image.open(path).convert("RGBA") for size, path in pngs.items()}
    ico = ICONS / "chatapp.ico"
    largest = images[max(ICO_SIZES)]
    largest.save(ico, format="ICO", sizes=[(s, s) for s in ICO_SIZES],
                 append_images=[images[s] for s in ICO_SIZES if s != max(ICO_SIZES)])
    icns = ICONS / "chatapp.icns"
    images[max(ICNS_SIZES)].save(icns, format="ICNS",
                                 append_images=[images[s] for s in ICNS_SIZES if s != max(ICNS_SIZES)])
    return [ico, icns]


def main() -> int:
    pngs = render_pngs()
    extra = write_ico_icns(pngs)
    for path in [*pngs.values(), *extra]:
        print(f"{path.relative_to(ICONS.parent.parent)}  {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
