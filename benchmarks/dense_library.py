"""Dense retrieval cost: embedding time, vectors' size, hybrid search latency and memory.

    .venv/bin/python benchmarks/dense_library.py --mb 10 --files 1000
    .venv/bin/python benchmarks/dense_library.py                 # 100 MB in 10,000 files

The corpus is benchmarks/library.py's (Zipf-like words, one planted fact per 100 files); the
embedding model is a static model2vec-layout folder generated here over the same vocabulary
(random vectors, `--dim`, float32), so the numbers are the cost of the machinery, not of a
trained model's quality. Prints one JSON object: words-only index seconds, embedding seconds
(all passages, then after changing 1% of the files), the index file's size with and without
vectors, search latency words-only vs hybrid (median, p95), the process's peak memory before
and after the hybrid searches, and how many planted facts each ranking puts first.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from chatapp.documents.library import LibraryStore  # noqa: E402
from helpers.static_embeddings import write_static_model  # noqa: E402


def _library_bench():
    spec = importlib.util.spec_from_file_location("library_bench", HERE / "library.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _db_mb(db: Path) -> float:
    return round(sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--dim", type=int, default=256)
    args = parser.parse_args()
    bench = _library_bench()
    out: dict = {"mb": args.mb, "files": args.files, "dim": args.dim}
    with tempfile.TemporaryDirectory(prefix="dense-bench-") as tmp:
        tmp = Path(tmp)
        facts = bench.write_corpus(tmp / "corpus", args.mb, args.files)
        words = bench.vocabulary(random.Random(0))  # the corpus's own vocabulary (same seed)
        extra = [f"quorvex{i}" for i in range(0, args.files, 100)] + [f"talmira{i}" for i in range(0, args.files, 100)]
        vocab = list(dict.fromkeys(words + extra + ["lighthouse", "rebuilt", "engineer", "who"]))
        vectors = np.random.default_rng(0).standard_normal((len(vocab) + 1, args.dim)).astype(np.float32)
        model = write_static_model(tmp / "model", vocab, vectors)
        db = tmp / "index" / "library.sqlite3"
        queries = ["lanterns harbour", "section engineer"] + [q for q, _ in facts]
        with LibraryStore(db) as store:
            store.add("bench", [tmp / "corpus"])
            out["index_words_s"] = round(store.index("bench").seconds, 2)
            out["db_words_mb"] = _db_mb(db)
            words_only = bench.measure(store, "bench", queries)
            out["words_first"] = sum(bool(h) and a in h[0].text for (q, a) in facts
                                     for h in [store.search("bench", q, limit=1)])
            store.set_embedding_model("bench", model)
            started = time.perf_counter()
            report = store.index("bench")
            out["embed_all_s"] = round(time.perf_counter() - started, 2)
            out["embedded"] = report.embedded
            out["db_with_vectors_mb"] = _db_mb(db)
            files = sorted(p for p in (tmp / "corpus").rglob("*") if p.is_file())
            change = max(1, len(files) // 100)
            for path in files[::max(1, len(files) // change)][:change]:
                with path.open("a", encoding="utf-8") as handle:
                    handle.write("\n\nAn added paragraph about harbour lanterns.")
            changed = store.index("bench")
            out.update({"reindex_changed_files": changed.indexed, "reindex_embedded": changed.embedded,
                        "reindex_s": round(changed.seconds, 2)})
            out["rss_before_hybrid_search_mb"] = _rss_mb()
            hybrid = bench.measure(store, "bench", queries)
            out["rss_after_hybrid_search_mb"] = _rss_mb()
            out["hybrid_first"] = sum(bool(h) and a in h[0].text for (q, a) in facts
                                      for h in [store.search("bench", q, limit=1)])
        out["facts"] = len(facts)
        out["search_words_ms"] = [words_only["search_ms_median"], words_only["search_ms_p95"]]
        out["search_hybrid_ms"] = [hybrid["search_ms_median"], hybrid["search_ms_p95"]]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
