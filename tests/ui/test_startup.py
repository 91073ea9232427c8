"""The window starts without importing torch in the GUI thread.

Torch comes in with the first model work (the memory estimate, the load), in the generation
worker thread, so the window shows before it. Checked in a fresh interpreter (in the test
process other tests have long imported torch) on the real start-up path, `create_window`
(the real stores and ChatBackend, in a throw-away profile), without loading a model; the
FakeBackend of the other window tests imports chatapp.engine.generate, and torch, itself.

Torch is refused to every thread there, and each attempt is recorded with its thread: if
the worker were allowed to import it first, a later import from the GUI thread would find
it in sys.modules and go unseen.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import json, sys, threading
    from pathlib import Path

    attempts = []

    class RefuseTorch:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "torch":
                attempts.append(threading.current_thread().name)
                raise ImportError("torch refused by the start-up test")
            return None

    sys.meta_path.insert(0, RefuseTorch())
    from chatapp.ui.app import create_window

    app, window = create_window(autoload=False, profile_dir=Path(sys.argv[1]))
    window.show()
    for _ in range(50):
        app.processEvents()
        threading.Event().wait(0.01)
    print(json.dumps({"visible": window.isVisible(),
                      "attempts": sorted(set(attempts)), "main": threading.main_thread().name}))
    window.close()
    window.store.close()
""")


def test_window_starts_without_torch_in_the_gui_thread(tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(root))
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["visible"]
    assert result["main"] not in result["attempts"], result
