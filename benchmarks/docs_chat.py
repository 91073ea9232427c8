"""Chat with documents on benchmarks/demo_docs: how many of ten questions the default model answers
closed-book and with the library's best passages in the prompt (greedy).

    .venv/bin/python benchmarks/docs_chat.py [--top 0 3] [--model default]

A reply counts when it contains an accepted answer (case-insensitive). Prints one JSON object:
per setting, the score, the mean prompt tokens and seconds per answer, and whether the
passage holding the answer was among the sources.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEMO = Path(__file__).resolve().parent / "demo_docs"
QUESTIONS = [
    ("Who founded the Lantern Guild?", ["Orla Membrane", "Membrane"]),
    ("How long does the Reed Route take?", ["forty minutes", "40 minutes"]),
    ("Where does the Council of Beacons meet?", ["Tallow Island", "oil-house"]),
    ("What colour is the flame of the Council lantern?", ["green"]),
    ("How many Beacons must vote to raise a Flame to Beacon?", ["five", "5"]),
    ("Which family builds the guild's lantern boats?", ["Kessane"]),
    ("What colour are the lantern boats painted?", ["black"]),
    ("Which lighthouse guards the gap in the sand bar?", ["Cape Sorrel"]),
    ("How many stone steps are the Fish Market steps?", ["twenty-two", "22"]),
    ("What was the name of the salt barge wrecked near Low Harran?", ["Patience"]),
]


def main() -> None:
    from chatapp.documents.chunking import ChunkOptions
    from chatapp.documents.library import LibraryStore
    from chatapp.engine.backend import ChatBackend, LoadOptions
    from chatapp.engine.retrieval import LibraryRetriever, send_with_documents
    from chatapp.engine.sampling import SamplingSettings
    from chatapp.engine.session import ChatSession

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--top", type=int, nargs="+", default=[0, 3], help="passages; 0 = closed book")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--chunk-chars", type=int, default=None, help="chunk size (default: the library's)")
    args = parser.parse_args()
    backend = ChatBackend()
    backend.load(args.model, LoadOptions(threads=args.threads, context_len=4096))
    settings = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=48)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        chunking = ChunkOptions(max_chars=args.chunk_chars, overlap_chars=min(120, args.chunk_chars // 4)) \
            if args.chunk_chars else None
        store = LibraryStore(Path(tmp) / "library.sqlite3", chunk_options=chunking)
        store.add("demo", [DEMO])
        store.index("demo")
        retriever = LibraryRetriever(store, "demo")
        for top in args.top:
            rows, started = [], time.perf_counter()
            for question, answers in QUESTIONS:
                session = ChatSession(backend.engine, system_prompt="You are a helpful assistant.")
                backend.engine.reset()
                if top:
                    reply = send_with_documents(session, question, settings, retriever, limit=top)
                    text = "".join(reply)
                    sources = " ".join(s.text for s in reply.result.sources).lower()
                    found = any(a.lower() in sources for a in answers)
                    tokens = reply.result.prompt_tokens
                else:
                    text = "".join(session.send(question, settings))
                    found, tokens = None, len(session.render_ids(session.messages[:-1]))
                rows.append({"question": question, "reply": text.strip(), "prompt_tokens": tokens,
                             "answer_in_sources": found,
                             "correct": any(a.lower() in text.lower() for a in answers)})
            seconds = time.perf_counter() - started
            out[f"top{top}" if top else "closed_book"] = {
                "score": f"{sum(r['correct'] for r in rows)}/{len(rows)}",
                "answer_in_sources": (f"{sum(bool(r['answer_in_sources']) for r in rows)}/{len(rows)}"
                                      if top else None),
                "mean_prompt_tokens": round(sum(r["prompt_tokens"] for r in rows) / len(rows)),
                "seconds_per_answer": round(seconds / len(rows), 2), "answers": rows}
            print(f"{top or 'closed'}: {out[f'top{top}' if top else 'closed_book']['score']}", file=sys.stderr)
        store.close()
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
