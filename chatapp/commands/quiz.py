"""`chatapp quiz`: ask a model questions about documents and count the right answers.

    chatapp quiz --model default [--adapter DIR] [--docs LIB] --questions FILE|auto [--data DIR] --json

`--questions auto` makes questions from the documents given with --data (chatapp.training.knowledge:
worded differently from the training examples) and writes them beside the result when asked
(--save-questions) so the user can review and reuse them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

EXIT_OK, EXIT_FAILED = 0, 1


def add_quiz_parser(subparsers) -> None:
    from .common import add_model_options

    p = subparsers.add_parser("quiz", help="ask a model questions about your documents and score the answers",
                              description="Ask each question of a JSONL file ({\"question\": ..., \"answers\": "
                                          "[...]} per line) greedily; a reply is right when it contains one of "
                                          "the accepted answers (case, punctuation and number formats aside).")
    add_model_options(p)
    p.add_argument("--questions", required=True, metavar="FILE|auto",
                   help="a JSONL question file, or 'auto': questions made from the documents in --data")
    p.add_argument("--data", nargs="+", default=None, metavar="PATH", help="documents, for --questions auto")
    p.add_argument("--docs", nargs="+", default=None, metavar="LIB|PATH",
                   help="answer with passages retrieved from this document library (or these files and "
                        "folders, indexed now into a temporary library) in front of each question")
    p.add_argument("--save-questions", default=None, metavar="FILE", help="write the auto questions here")
    p.add_argument("--max-new-tokens", type=int, default=80)
    p.add_argument("--system", default="", help="system prompt (default: the chat template's own)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--progress", action="store_true",
                   help="with --json: first one JSON line per question as it is answered "
                        "({\"kind\": \"quiz_item\", \"done\": ..., \"total\": ..., \"correct\": ...})")
    p.set_defaults(func=cmd_quiz)


def open_docs(specs: list[str]):
    """The retriever for `--docs`: a library by name, or these files and folders indexed now into
    a temporary library. The quiz asks through it exactly as chat with documents does
    (chatapp.engine.retrieval); `close()` it when done."""
    import tempfile

    from ..documents.library import index_paths_into_temporary
    from ..engine.retrieval import LibraryRetriever, open_documents

    if len(specs) == 1:
        return open_documents(specs[0])
    missing = [s for s in specs if not Path(s).expanduser().exists()]
    if missing:
        raise LookupError(f"--docs: no such file or folder: {', '.join(missing)}")
    folder = tempfile.TemporaryDirectory(prefix="chatapp-docs-")
    store, name, _report = index_paths_into_temporary([Path(s).expanduser() for s in specs], folder.name)
    return LibraryRetriever(store, name, owned_folder=folder)


def _questions(args: argparse.Namespace):
    from ..training.quiz import read_questions, write_questions

    if args.questions != "auto":
        return read_questions(args.questions)
    if not args.data:
        raise ValueError("--questions auto makes questions from documents: give them with --data PATH")
    from ..training.knowledge import quiz_questions
    from ..training.prepare import read_sources

    sources = read_sources(args.data)
    if sources.kind != "documents":
        raise ValueError("--questions auto needs documents in --data, not a conversation file")
    questions = quiz_questions([(e.source, e.text or "") for e in sources.examples])
    if not questions:
        raise ValueError("no questions could be made from these documents (no names, dates or numbers found)")
    if args.save_questions:
        write_questions(questions, args.save_questions)
    return questions


def cmd_quiz(args: argparse.Namespace) -> int:
    from ..training.dataset import DatasetError
    from ..documents.reading import IngestError
    from ..training.quiz import QuizError

    try:
        questions = _questions(args)
        retriever = open_docs(args.docs) if args.docs else None
    except (QuizError, DatasetError, IngestError, ValueError, LookupError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        return _run(args, questions, retriever)
    finally:
        if retriever is not None:
            retriever.close()


def _run(args: argparse.Namespace, questions, retriever) -> int:
    from ..training.quiz import run_quiz
    from .common import load_from_args

    backend, info = load_from_args(args)
    done = 0

    def show(item) -> None:
        nonlocal done
        done += 1
        if args.json and args.progress:
            print(json.dumps({"kind": "quiz_item", "done": done, "total": len(questions), "correct": item.correct,
                              "question": item.question}, ensure_ascii=False), flush=True)
        elif not args.json:
            mark = "right" if item.correct else "wrong"
            print(f"[{mark}] {item.question}\n        {item.reply[:200]!r}", flush=True)

    result = run_quiz(backend.engine, questions, system_prompt=args.system, max_new_tokens=args.max_new_tokens,
                      on_item=show, retriever=retriever)
    summary = {"model": info.name, "adapter": args.adapter, "docs": args.docs, **result.to_dict()}
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(f"{result.score} of {len(result.items)} right ({result.seconds:.1f} s)")
    return EXIT_OK


def register(subparsers) -> None:
    add_quiz_parser(subparsers)
