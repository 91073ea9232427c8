"""kill -9 in the middle of a streaming reply loses nothing that was committed.

A child process writes finished exchanges, then streams a reply with update_reply in a tight
loop; the parent SIGKILLs it at a random moment after it says it is mid-stream. The same file
is crashed several times over, so recovered history must also survive later crashes.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chatapp.storage.db import ConversationStore

REPO = Path(__file__).resolve().parents[2]
EXCHANGES = 5
MID_STREAM_AFTER = 50  # update_reply calls before the child reports it is mid-stream

CHILD = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from chatapp.storage.db import ConversationStore

    store = ConversationStore(sys.argv[2])
    conv = store.create_conversation("crash " + sys.argv[3])
    for i in range({exchanges}):
        store.add_message(conv.id, "user", f"question {{i}}")
        reply = store.begin_reply(conv.id, "mock", {{"i": i}})
        store.update_reply(reply, f"answer {{i}} (partial)")
        store.finish_reply(reply, f"answer {{i}}", "complete", "stop", {{"new_tokens": i}})
    reply = store.begin_reply(conv.id, "mock", {{"temperature": 0.5}})
    print(json.dumps({{"conversation": conv.id, "reply": reply}}), flush=True)
    text, k = "", 0
    while True:
        text += f"tok{{k}} "
        store.update_reply(reply, text)
        k += 1
        if k == {mid}:
            print("mid-stream", flush=True)
""").format(exchanges=EXCHANGES, mid=MID_STREAM_AFTER)


def _readline(proc: subprocess.Popen, deadline: float) -> str:
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            return line.decode().strip()
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"child did not report in time: {proc.stderr.read().decode()[-2000:]}")


def _streamed_prefix_length(content: str) -> int:
    tokens = content.split(" ")
    assert tokens[-1] == "", f"reply cut mid-token: {content[-40:]!r}"  # each save is a whole string
    assert tokens[:-1] == [f"tok{k}" for k in range(len(tokens) - 1)]
    return len(tokens) - 1


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_sigkill_mid_stream_loses_nothing_committed(tmp_path):
    db = tmp_path / "conversations.sqlite3"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    expected: dict[int, int] = {}  # conversation id -> reply message id
    started = time.monotonic()
    for iteration in range(5):
        # bufsize=0: select() sees the pipe, so no line may hide in a Python-side read buffer.
        proc = subprocess.Popen([sys.executable, str(script), str(REPO), str(db), str(iteration)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        try:
            deadline = time.monotonic() + 30
            ids = json.loads(_readline(proc, deadline))
            assert _readline(proc, deadline) == "mid-stream"
            time.sleep(rng.uniform(0.0, 0.25))
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        expected[ids["conversation"]] = ids["reply"]

        raw = sqlite3.connect(db)  # before the store's own recovery touches it
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)], f"seed {seed}"
        raw.close()
        with ConversationStore(db) as store:
            assert store.recovered_replies == 1, f"seed {seed}"
            assert {c.id for c in store.list_conversations()} == set(expected)
            for conv_id, reply_id in expected.items():
                messages = store.messages(conv_id)
                assert len(messages) == 2 * EXCHANGES + 1
                for i in range(EXCHANGES):
                    question, answer = messages[2 * i], messages[2 * i + 1]
                    assert (question.role, question.content, question.state) == ("user", f"question {i}", "complete")
                    assert (answer.role, answer.content, answer.state, answer.finish_reason, answer.stats,
                            answer.settings) == ("assistant", f"answer {i}", "complete", "stop", {"new_tokens": i},
                                                 {"i": i})
                last = messages[-1]
                assert (last.id, last.role, last.state, last.finish_reason, last.settings) == (
                    reply_id, "assistant", "cancelled", "interrupted", {"temperature": 0.5})
                streamed = _streamed_prefix_length(last.content)
                assert streamed >= MID_STREAM_AFTER, f"seed {seed}"
                if conv_id == ids["conversation"]:  # shown with -s: where the kill landed
                    print(f"kill {iteration} (seed {seed}): {streamed} streamed tokens kept")
            assert store.check_integrity() == "ok"
    assert time.monotonic() - started < 60
