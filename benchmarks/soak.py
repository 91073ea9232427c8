"""Soak: many chat turns and rapid stop-and-regenerate cycles with the window open (offscreen).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/soak.py            # the real default model
    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/soak.py --fake     # a scripted backend, quick

1,000 turns over 50 conversations (20 each; replies capped at --max-tokens), and 200
regenerate-then-stop cycles spread over them (4 per conversation, each stopped at a random
moment of the new reply). Reported: resident memory after the first reply and at the end,
the largest gap of a 10 ms GUI-thread heartbeat (how long the window was unresponsive),
every message checked in the database afterwards (count, text, final state), and the Python
threads and OS threads at the start and the end (a leak grows them).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEventLoop, QObject, QThread, QTimer, Slot  # noqa: E402

from chatapp.engine.backend import ModelEstimate, ModelInfo, ReplyFinished  # noqa: E402
from chatapp.ui.app import create_window  # noqa: E402


class ScriptedBackend:
    """--fake: a reply of `words` words, one every `delay` seconds, from the worker thread."""

    def __init__(self, words: int, delay: float = 0.002) -> None:
        self.words, self.delay = words, delay
        self.reply, self.streamed = None, 0

    def load(self, spec, options, progress=None):
        return ModelInfo(name="scripted", path=spec, kind="fake", device="cpu", dtype="float32",
                         context_len=options.context_len, n_params=0, load_s=0.0, memory="0 MB")

    def estimate(self, spec, options):
        return ModelEstimate(name="scripted", n_params=0, context_len=options.context_len, device="cpu",
                             dtype="float32", memory="0 MB", memory_bytes=0)

    has_adapter = False

    def set_adapter_enabled(self, enabled):
        raise RuntimeError("no LoRA adapter is loaded")

    def stream(self, messages, system_prompt, settings, cancel=None, continue_last=False, documents=None,
               enable_thinking=None, logprobs=None, forced=()):
        shown, reason = [], "length"
        self.streamed = 0
        for i in range(min(self.words, settings.max_new_tokens)):
            if cancel is not None and cancel.is_set():
                reason = "cancelled"
                break
            time.sleep(self.delay)
            shown.append(f" w{i}")
            self.streamed += 1
            yield shown[-1]
        self.reply = ReplyFinished(text="".join(shown), finish_reason=reason,
                                   stats={"new_tokens": len(shown)}, context_used=self.context_used())

    def streamed_logprobs(self):
        return []

    def finished(self):
        return self.reply

    def context_used(self):
        return 10 + self.streamed

    def image_cost(self, image) -> int:
        from chatapp.engine.vision import NoVisionError

        raise NoVisionError("this scripted model cannot see images")


class Heartbeat(QObject):
    """A 10 ms timer in the GUI thread; the largest gap between its ticks is the worst stall.
    Each of the worst gaps comes with the GUI thread's own CPU time in it: near the gap, the
    thread was computing; near zero, it was blocked (a lock, a disk write) or not scheduled."""

    def __init__(self) -> None:
        super().__init__()
        self.last = None
        self.last_cpu = 0.0
        self.max_gap = 0.0
        self.ticks = 0
        self.phase = ""  # what the driver was doing: the worst gaps are reported with it
        self.worst: list[tuple[float, str, float]] = []  # gap, phase, GUI-thread CPU seconds in it
        self.timer = QTimer(self, interval=10)
        self.timer.timeout.connect(self.tick)

    @Slot()
    def tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        if self.last is not None:
            gap = now - self.last
            self.max_gap = max(self.max_gap, gap)
            if gap > 0.05:
                self.worst = sorted(self.worst + [(gap, self.phase, cpu - self.last_cpu)], reverse=True)[:5]
        self.last, self.last_cpu = now, cpu
        self.ticks += 1


def rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    except (OSError, StopIteration):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def qthreads() -> int:
    """Live QThread objects (the generation worker's and any other)."""
    import gc
    return sum(1 for obj in gc.get_objects() if isinstance(obj, QThread))


def os_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return -1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fake", action="store_true", help="a scripted backend instead of the default model")
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--turns", type=int, default=1000, help="chat turns in all")
    parser.add_argument("--regenerations", type=int, default=200, help="regenerate-then-stop cycles in all")
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: the app's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--max-seconds", type=float, default=0.0,
                        help="start no new conversation after this long (0: no limit); the report says how far it got")
    parser.add_argument("--progress", action="store_true", help="a line on stderr after each conversation")
    args = parser.parse_args()
    if args.conversations < 1 or args.turns < args.conversations:
        parser.error("need at least one turn per conversation")
    rng = random.Random(args.seed)
    per_conv = args.turns // args.conversations
    regen_per_conv = args.regenerations // args.conversations

    with tempfile.TemporaryDirectory() as profile:
        (Path(profile) / "settings.json").write_text(json.dumps(
            {"max_new_tokens": args.max_tokens, "threads": args.threads, "context_len": 2048}))
        backend = ScriptedBackend(args.max_tokens) if args.fake else None
        app, window = create_window(autoload=False, profile_dir=Path(profile), backend=backend)
        window.show()
        loop = QEventLoop()

        def pump(ms: int) -> None:
            QTimer.singleShot(ms, loop.quit)
            loop.exec()

        def wait(predicate, limit_s: float, what: str) -> None:
            deadline = time.perf_counter() + limit_s
            while not predicate():
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"timed out waiting for {what}")
                pump(5)

        window.model.load("default")
        wait(lambda: window.model_info is not None, 600, "the model")
        sent: dict[int, list[str]] = {}
        stopped = 0

        heartbeat = Heartbeat()

        def turn(text: str) -> None:
            heartbeat.phase = "send"
            window.composer.setPlainText(text)
            window.send()
            heartbeat.phase = "reply"
            wait(lambda: not window.streaming, 600, "a reply")

        # first reply before measuring: torch's threads and caches exist from here on
        window.new_conversation()
        turn("Warm up: say hello.")
        start_rss, start_py, start_os = rss_mb(), threading.active_count(), os_threads()
        start_qthreads = qthreads()
        heartbeat.timer.start()
        started = time.perf_counter()
        regen_s: list[float] = []
        for c in range(args.conversations):
            if args.max_seconds and time.perf_counter() - started > args.max_seconds:
                break
            heartbeat.phase = "new conversation"
            window.new_conversation()
            texts: list[str] = []
            regen_at = set(rng.sample(range(1, per_conv + 1), min(regen_per_conv, per_conv)))
            for t in range(1, per_conv + 1):
                text = f"Conversation {c} turn {t}: name one colour."
                turn(text)
                texts.append(text)
                if t in regen_at:
                    t0 = time.perf_counter()
                    heartbeat.phase = "regenerate"
                    window.regenerate_action.trigger()
                    wait(lambda: window.streaming, 60, "the regenerated reply to start")
                    pump(rng.randint(0, 30))  # stop at a random moment of the new reply
                    heartbeat.phase = "stop"
                    window.stop_action.trigger()
                    wait(lambda: not window.streaming, 60, "the stop")
                    regen_s.append(time.perf_counter() - t0)
                    stopped += 1
            sent[window.current_id] = texts
            if args.progress:
                print(f"conversation {c + 1}/{args.conversations}: {sum(len(t) for t in sent.values())} turns, "
                      f"{stopped} regenerations, {time.perf_counter() - started:.0f} s, RSS {rss_mb():.0f} MB, "
                      f"worst stall {heartbeat.max_gap * 1000:.0f} ms", file=sys.stderr, flush=True)
        elapsed = time.perf_counter() - started
        heartbeat.timer.stop()
        pump(200)  # let the last queued signals land
        end_rss, end_py, end_os = rss_mb(), threading.active_count(), os_threads()
        end_qthreads = qthreads()

        # every message in the database
        problems = []
        n_messages = 0
        for conv_id, texts in sent.items():
            messages = window.store.messages(conv_id)
            n_messages += len(messages)
            users = [m.content for m in messages if m.role == "user"]
            replies = [m for m in messages if m.role == "assistant"]
            if users != texts or len(replies) != len(texts):
                problems.append(f"conversation {conv_id}: {len(users)} user, {len(replies)} replies")
            bad = [m.state for m in messages if m.state not in ("complete", "cancelled")]
            if bad:
                problems.append(f"conversation {conv_id}: states {bad}")
        result = {
            "backend": "scripted" if args.fake else window.model_info.name, "max_tokens": args.max_tokens,
            "conversations": len(sent), "turns": sum(len(t) for t in sent.values()),
            "stop_regenerate_cycles": stopped, "seconds": round(elapsed, 1),
            "messages_in_db": n_messages, "messages_expected": 2 * sum(len(t) for t in sent.values()),
            "db_problems": problems[:10],
            "rss_mb_start": round(start_rss, 1), "rss_mb_end": round(end_rss, 1),
            "max_gui_stall_ms": round(heartbeat.max_gap * 1000, 1), "heartbeat_ticks": heartbeat.ticks,
            # [gap, phase, the GUI thread's CPU time in the gap] in ms
            "worst_stalls_ms": [(round(gap * 1000, 1), phase, round(cpu * 1000, 1))
                                for gap, phase, cpu in heartbeat.worst],
            "python_threads": [start_py, end_py], "os_threads": [start_os, end_os],
            "qthreads": [start_qthreads, end_qthreads],
            "regenerate_stop_s_max": round(max(regen_s), 3) if regen_s else None,
        }
        result["ok"] = (not problems and n_messages == result["messages_expected"]
                        and end_py <= start_py and end_qthreads <= start_qthreads)
        window.close()
        window.store.close()
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
