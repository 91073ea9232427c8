"""Document library: index time and search latency, on benchmarks/demo_docs and a generated corpus.

    .venv/bin/python benchmarks/library.py                    # demo_docs + 100 MB in 10,000 files
    .venv/bin/python benchmarks/library.py --mb 10 --files 1000

The generated corpus is Markdown and plain text made of words drawn from a Zipf-like
vocabulary (so posting lists look like real text), with one planted fact per 100 files that the
queries ask for. Everything is written under a temporary folder and removed at the end.
Prints one JSON object: index seconds (first run, unchanged re-run, re-run after changing 1%
of the files), search latency (median and p95 over the queries), the index file's size, and
whether each planted fact was ranked first.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatapp.documents.library import LibraryStore  # noqa: E402

DEMO = Path(__file__).resolve().parent / "demo_docs"
DEMO_QUERIES = ["Who founded the Lantern Guild?", "When do the boats leave?", "What do the signals mean?",
                "How are passengers trained?", "customs duties on lanterns"]


def vocabulary(rng: random.Random, size: int = 30000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(size)]


def write_corpus(folder: Path, total_mb: float, files: int, seed: int = 0) -> list[tuple[str, str]]:
    """Files of ~total_mb/files each; returns (question, planted answer) pairs."""
    rng = random.Random(seed)
    words = vocabulary(rng)
    cumulative, total = [], 0.0
    for rank in range(len(words)):
        total += 1.0 / (rank + 1)
        cumulative.append(total)
    per_file = int(total_mb * 1e6 / files)
    facts = []
    for i in range(files):
        sub = folder / f"part{i // 500:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        parts, size = [], 0
        heading = 0
        while size < per_file:
            if rng.random() < 0.15:
                heading += 1
                line = f"## Section {heading} " + " ".join(rng.choices(words, cum_weights=cumulative, k=3))
            else:
                line = " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(20, 120))) + "."
            parts.append(line)
            size += len(line) + 2
        if i % 100 == 0:
            name = f"Quorvex{i}"
            answer = f"The lighthouse of {name} was rebuilt by engineer Talmira{i} in the year {1800 + i % 200}."
            parts.insert(rng.randint(0, len(parts)), answer)
            facts.append((f"Who rebuilt the lighthouse of {name}?", f"Talmira{i}"))
        suffix = ".md" if i % 2 else ".txt"
        (sub / f"doc{i:05d}{suffix}").write_text("\n\n".join(parts), encoding="utf-8")
    return facts


def measure(store: LibraryStore, name: str, queries: list[str], repeats: int = 3) -> dict:
    latencies = []
    for _ in range(repeats):
        for query in queries:
            started = time.perf_counter()
            store.search(name, query, limit=8)
            latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    return {"search_ms_median": round(statistics.median(latencies), 2),
            "search_ms_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 2), "searches": len(latencies)}


def bench(folder: Path, db: Path, queries: list[str], facts: list[tuple[str, str]], change: int) -> dict:
    with LibraryStore(db) as store:
        store.add("bench", [folder])
        first = store.index("bench")
        again = store.index("bench")
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        for path in files[::max(1, len(files) // max(1, change))][:change]:
            with path.open("a", encoding="utf-8") as handle:
                handle.write("\n\nAn added paragraph about harbour lanterns.")
        changed = store.index("bench")
        info = store.list()[0]
        result = {
            "files": info.files, "chunks": info.chunks, "text_mb": round(info.chars / 1e6, 1),
            "index_s": round(first.seconds, 2), "reindex_unchanged_s": round(again.seconds, 2),
            f"reindex_{change}_changed_s": round(changed.seconds, 2), "changed_indexed": changed.indexed,
            **measure(store, "bench", queries + [q for q, _ in facts]),
        }
        found = []
        for question, answer in facts:
            hits = store.search("bench", question, limit=1)
            found.append(bool(hits) and answer in hits[0].text)
        if facts:
            result["planted_facts_first"] = f"{sum(found)}/{len(found)}"
    result["index_file_mb"] = round(sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 1e6, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--skip-generated", action="store_true")
    args = parser.parse_args()
    out = {}
    with tempfile.TemporaryDirectory(prefix="library-bench-") as tmp:
        tmp = Path(tmp)
        demo = shutil.copytree(DEMO, tmp / "demo_docs")  # the change step appends to a file: never the repo's
        out["demo_docs"] = bench(demo, tmp / "demo" / "library.sqlite3", DEMO_QUERIES, [], change=1)
        if not args.skip_generated:
            started = time.perf_counter()
            facts = write_corpus(tmp / "corpus", args.mb, args.files)
            out["generated"] = {"mb": args.mb, "files_written": args.files,
                                "write_s": round(time.perf_counter() - started, 1),
                                **bench(tmp / "corpus", tmp / "gen" / "library.sqlite3",
                                        ["lanterns harbour", "section engineer"], facts,
                                        change=max(1, args.files // 100))}
    out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["cpu_count"] = os.cpu_count()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
