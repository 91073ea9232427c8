"""`chatapp library add|update|list|remove|search`: document libraries from the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..arg_types import bounded_int

EXIT_OK, EXIT_ERROR = 0, 1


def register(subparsers) -> None:
    p = subparsers.add_parser("library", help="document libraries for chat with documents",
                              description="Named libraries of folders and files, indexed for search "
                                          "(SQLite FTS5 in the user data dir).")
    p.add_argument("--db", default=None, metavar="FILE", help="the index file (default: in the user data dir)")
    sub = p.add_subparsers(dest="library_command", metavar="ACTION", required=True)

    add = sub.add_parser("add", help="create a library (or add paths to one) and index it")
    add.add_argument("name")
    add.add_argument("paths", nargs="+", metavar="PATH")
    add.add_argument("--json", action="store_true", help="print the index report as JSON")
    add.add_argument("--embedding-model", metavar="DIR", default=None,
                     help="a static-embedding model folder (model2vec: config.json, model.safetensors, "
                          "tokenizer.json): rank by words and by meaning (hybrid)")
    add.set_defaults(func=cmd_library_add)

    update = sub.add_parser("update", help="re-index a library (only changed files are read)")
    update.add_argument("name")
    update.add_argument("--json", action="store_true")
    model = update.add_mutually_exclusive_group()
    model.add_argument("--embedding-model", metavar="DIR", default=None,
                       help="rank by meaning too, with this static-embedding model folder")
    model.add_argument("--no-embedding-model", action="store_true", help="rank by words only from now on")
    update.set_defaults(func=cmd_library_update)

    ls = sub.add_parser("list", help="the libraries, their paths and sizes")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_library_list)

    rm = sub.add_parser("remove", help="forget a library (the files themselves are not touched)")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_library_remove)

    search = sub.add_parser("search", help="the passages that best match a query")
    search.add_argument("name")
    search.add_argument("query")
    search.add_argument("--limit", type=bounded_int(1, 100), default=5, help="how many passages (1-100)")
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=cmd_library_search)


def _store(args):
    from ..documents.library import LibraryStore
    return LibraryStore(args.db)


def _guard(run):
    """Library and ingest errors become one `error:` line and exit status 1."""
    def wrapped(args: argparse.Namespace) -> int:
        from ..documents.embeddings import EmbeddingModelError
        from ..documents.library import LibraryError
        from ..documents.reading import IngestError
        try:
            return run(args)
        except (LibraryError, IngestError, EmbeddingModelError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_ERROR
    return wrapped


class _ProgressLine:
    """A progress line on stderr at most every half second, and the problems as they happen."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, progress) -> None:
        if progress.status == "vanished":
            print(f"warning: {progress.path}: {progress.detail}", file=sys.stderr)
        now = time.monotonic()
        if now - self.last >= 0.5 or progress.done == progress.total:
            self.last = now
            what = "embedding passages" if progress.status == "embedding" else "indexing"
            print(f"{what} {progress.done}/{progress.total}", file=sys.stderr)


def _index(args, store) -> int:
    report = store.index(args.name, progress=_ProgressLine())
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print(f"{args.name}: {report.summary()}")
        for path, problem in report.problems:
            print(f"  {path}: {problem}")
    return EXIT_OK


@_guard
def cmd_library_add(args: argparse.Namespace) -> int:
    with _store(args) as store:
        if args.embedding_model is not None:
            store.embedder(args.embedding_model)  # a wrong folder: one error, and no library made
        store.add(args.name, args.paths)
        if args.embedding_model is not None:
            store.set_embedding_model(args.name, args.embedding_model)
        return _index(args, store)


@_guard
def cmd_library_update(args: argparse.Namespace) -> int:
    with _store(args) as store:
        if args.embedding_model is not None or args.no_embedding_model:
            store.set_embedding_model(args.name, None if args.no_embedding_model else args.embedding_model)
        return _index(args, store)


@_guard
def cmd_library_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        infos = store.list()
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], ensure_ascii=False, indent=2))
    elif not infos:
        print("no libraries yet: chatapp library add NAME PATH...")
    for info in [] if args.json else infos:
        print(f"{info.name}: {info.files} files, {info.chunks} passages, {info.chars:,} characters")
        if info.embedding_model:
            print(f"  embedding model: {info.embedding_model} ({info.vectors} of {info.chunks} passages embedded)")
        for path in info.paths:
            print(f"  {path}")
    return EXIT_OK


@_guard
def cmd_library_remove(args: argparse.Namespace) -> int:
    with _store(args) as store:
        store.remove(args.name)
    print(f"removed library {args.name!r} (its files were not touched)")
    return EXIT_OK


@_guard
def cmd_library_search(args: argparse.Namespace) -> int:
    if args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return EXIT_ERROR
    started = time.perf_counter()
    with _store(args) as store:
        hits = store.search(args.name, args.query, limit=args.limit)
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps({"query": args.query, "seconds": round(seconds, 4),
                          "results": [h.to_dict() for h in hits]}, ensure_ascii=False))
        return EXIT_OK
    if not hits:
        print("no matching passages")
    hybrid = any(hit.dense_rank is not None for hit in hits)
    for number, hit in enumerate(hits, start=1):
        where = f"{hit.path}" + (f" > {hit.heading}" if hit.heading else "") + f" [{hit.start}:{hit.end}]"
        if hybrid:  # which ranking found it
            where += f" (words #{hit.bm25_rank or '-'}, meaning #{hit.dense_rank or '-'})"
        print(f"[{number}] {where}\n    {hit.snippet}")
    return EXIT_OK
