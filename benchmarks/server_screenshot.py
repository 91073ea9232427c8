"""Screenshot of the window's local API server switched on, in the settings drawer.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python benchmarks/server_screenshot.py \
        --out docs/screenshots/server.png

The real window in a throw-away profile with the scripted backend of benchmarks/screenshots.py
(no model, no torch), run on a qasync loop as `chatapp` runs it. A port and a key are saved in
the profile's settings first (the panel reads them at start, the switch off); the script then
turns the switch on, waits for the server to listen, scrolls the drawer to the panel and saves
the window: address, Copy button, the key masked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from PySide6.QtWidgets import QApplication, QScrollArea  # noqa: E402

from screenshots import ScriptedBackend, close, make_window, save, settle  # noqa: E402


async def shoot(window, out: Path) -> None:
    panel = window.server_panel
    if panel.switch.isChecked():
        raise SystemExit("the switch should be off at start")
    window.set_drawer_open(True)
    panel.switch.setChecked(True)
    for _ in range(500):
        if window.server.url or not panel.switch.isChecked():
            break
        await asyncio.sleep(0.02)
    if not window.server.url:
        raise SystemExit(f"the server did not start: {panel.message.text()}")
    loop = asyncio.get_running_loop()

    def models() -> list:  # from another thread, as another program would ask
        request = urllib.request.Request(window.server.url + "/models",
                                         headers={"Authorization": "Bearer demo-key-1234"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return [m["id"] for m in json.loads(response.read())["data"]]

    with ThreadPoolExecutor(1) as pool:  # not qasync's default executor: its QThreads outlive the loop
        print("GET /v1/models:", await loop.run_in_executor(pool, models))
    scroll = window.drawer.findChild(QScrollArea)
    if scroll is not None:  # the panel in view, the drawer's left edge too
        scroll.ensureWidgetVisible(panel)
        scroll.horizontalScrollBar().setValue(0)
    await asyncio.sleep(0.3)
    settle()
    save(window, out)
    panel.switch.setChecked(False)
    await asyncio.sleep(0.2)


def main(argv=None) -> int:
    import qasync

    from chatapp.storage.settings import SettingsStore

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "screenshots" / "server.png")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp)
        store = SettingsStore(profile / "settings.json")
        settings = store.load()
        settings.server_port, settings.server_api_key = args.port, "demo-key-1234"
        store.save(settings)
        window, translators = make_window(profile, ScriptedBackend())
        try:
            loop.run_until_complete(shoot(window, args.out))
        finally:
            close(window, translators)
            loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
