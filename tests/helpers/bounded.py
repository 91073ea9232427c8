"""Run a snippet in a child process with a cap on its address space and its wall-clock time,
so that a missing bound shows up as a MemoryError, a crash or a timeout in the test instead of
taking the machine down or hanging the suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PRELUDE = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))
_start = time.monotonic()
def peak_mb():
    # VmHWM is this program's peak resident memory; ru_maxrss would also count the parent's
    # pages copied at fork, so a big test process would make every child look big.
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def report(**values):
    values["seconds"] = time.monotonic() - _start
    values["max_rss_mb"] = peak_mb()
    print("RESULT " + json.dumps(values), flush=True)
"""


def run_bounded(code: str, memory: int = 1 << 30, timeout: float = 60.0) -> dict:
    """Run `code` (which calls report(**values) once) in a child; returns the values reported plus
    "seconds" and "max_rss_mb". Fails the test on a timeout, a crash or no report."""
    source = _PRELUDE.format(memory=memory) + textwrap.dedent(code)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the child ran longer than {timeout}s: {exc.stderr!r}") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"child failed (rc {done.returncode}):\n{done.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])
