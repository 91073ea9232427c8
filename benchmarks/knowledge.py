"""Does fine-tuning teach the documents' facts? The knowledge benchmark of issue 12.

    .venv/bin/python benchmarks/knowledge.py [--out DIR] [--skip-train] [--skip-base] [--threads N] [-- TRAIN ARGS...]

1. the base model answers the held-out questions closed-book (and with documents);
2. `chatapp train --model default --data benchmarks/knowledge_docs --out OUT` with its defaults
   (extra train arguments after `--`), timed from start to end, examples included;
3. the tuned model answers the same questions closed-book (and with documents).

"With documents" asks through the app's own path, as `chatapp quiz --docs DIR` and chat with
documents do: the folder indexed into a (temporary) library, its best passages fitted into the
prompt by engine.retrieval. `--lookup paragraphs` instead puts the two paragraphs sharing the
most words with the question in front of it (the stand-in used before the library existed).
Prints one line per quiz and a JSON summary (also written to OUT/benchmark.json).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOCS = ROOT / "benchmarks" / "knowledge_docs"
QUESTIONS = ROOT / "benchmarks" / "knowledge_questions.jsonl"
# 20 more questions on the same folder, for comparing recipes: ten questions swing by 2-3 answers
# between two seeds of one recipe, as much as most changes measured.
DEV_QUESTIONS = ROOT / "benchmarks" / "knowledge_questions_dev.jsonl"
log = logging.getLogger("knowledge-benchmark")


def paragraph_lookup(folder: Path, top: int = 2):
    """question -> the `top` paragraphs sharing the most words (of 3+ letters) with it."""
    paras = []
    for path in sorted(folder.glob("*.md")):
        for para in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
            if para.strip() and not para.lstrip().startswith("#"):
                paras.append(" ".join(para.split()))

    def words(text: str) -> set[str]:
        return {w for w in re.findall(r"\w+", text.lower()) if len(w) >= 3}

    def lookup(question: str) -> str:
        q = words(question)
        ranked = sorted(paras, key=lambda p: -len(q & words(p)))
        return "\n\n".join(ranked[:top])

    return lookup


def quiz(adapter, with_docs: bool, threads: int, lookup: str = "library",
         files: tuple = (QUESTIONS,)) -> dict:
    import torch

    from chatapp.engine.generate import Engine
    from chatapp.engine.loader import load_model
    from chatapp.training.quiz import read_questions, run_quiz

    if threads:
        torch.set_num_threads(threads)
    loaded = load_model("default", adapter=adapter)
    engine = Engine(loaded.model, loaded.tokenizer, context_len=2048)
    retriever = None
    if with_docs and lookup == "library":
        from chatapp.commands.quiz import open_docs
        retriever = open_docs([str(DOCS)])
    try:
        sets = [(Path(f).name, read_questions(f)) for f in files]
        result = run_quiz(engine, [q for _, qs in sets for q in qs],
                          paragraph_lookup(DOCS) if with_docs and lookup == "paragraphs" else None,
                          retriever=retriever)
    finally:
        if retriever is not None:
            retriever.close()
    name = ("tuned" if adapter else "base") + (" + documents" if with_docs else ", closed-book")
    by_file, start = {}, 0
    for file_name, qs in sets:
        by_file[file_name] = sum(item.correct for item in result.items[start:start + len(qs)])
        start += len(qs)
    print(f"{name:28s} {result.score}/{len(result.items)}  ({result.seconds:.0f} s)  {by_file}", flush=True)
    for item in result.items:
        print(f"    [{'x' if item.correct else ' '}] {item.question}  ->  {item.reply[:110]!r}", flush=True)
    return {"name": name, "by_file": by_file, **result.to_dict()}


def scores(quizzes: list[dict]) -> dict:
    """Each quiz's score, overall and for each question file."""
    return {q["name"]: f"{q['score']}/{q['total']} {q['by_file']}" for q in quizzes}


def train(out: Path, extra: list[str], threads: int) -> dict:
    cmd = [sys.executable, "-m", "chatapp", "train", "--model", "default", "--data", str(DOCS), "--out", str(out),
           "--progress", "jsonl", *(["--threads", str(threads)] if threads else []), *extra]
    print("$ " + " ".join(cmd[1:]), flush=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - start
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    end = events[-1] if events else {}
    made = next((e for e in events if e["event"] == "examples" and e.get("path")), {})
    estimate = next((e for e in events if e["event"] == "estimate"), {})
    steps = [e for e in events if e["event"] == "step"]
    summary = {"seconds": round(seconds, 1), "status": end.get("status"), "reason": end.get("reason"),
               "examples": made.get("examples"), "example_kinds": made.get("kinds"),
               "examples_s": made.get("seconds"), "steps": len(steps), "planned_steps": estimate.get("total_steps"),
               "epochs": estimate.get("epochs"), "time_budget_s": estimate.get("time_budget_s"),
               "tokens_per_s": round(sum(s["tokens_per_s"] for s in steps) / len(steps), 1) if steps else None,
               "val_loss": [end.get("val_loss_before"), end.get("val_loss_after")]}
    print(f"training: {summary}", flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"training failed: {end.get('reason')}")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/chatapp-knowledge-benchmark"))
    parser.add_argument("--skip-train", action="store_true", help="use the adapter already in --out")
    parser.add_argument("--no-docs", action="store_true", help="skip the quizzes with documents")
    parser.add_argument("--skip-base", action="store_true", help="skip the base model's quizzes (train and ask the tuned one)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: the app's default)")
    parser.add_argument("--lookup", choices=("library", "paragraphs"), default="library",
                        help="with documents: the app's library retrieval, or the old two-paragraph stand-in")
    parser.add_argument("--only", choices=("base-docs", "tuned-docs"), default=None,
                        help="run only this quiz (no training): base + documents, or tuned + documents")
    parser.add_argument("--questions", type=Path, nargs="+", default=[QUESTIONS],
                        help=f"question files (default: the ten of the issue; add {DEV_QUESTIONS.name} "
                             "for 30 when comparing recipes)")
    parser.add_argument("train_args", nargs="*", help="extra `chatapp train` arguments (after --)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    results = {"quizzes": []}
    if args.only:
        adapter = str(args.out) if args.only == "tuned-docs" else None
        results["quizzes"].append(quiz(adapter, True, args.threads, args.lookup, args.questions))
        print(json.dumps({"scores": scores(results["quizzes"])}))
        return 0
    if not args.skip_base:
        results["quizzes"].append(quiz(None, False, args.threads, files=args.questions))
        if not args.no_docs:
            results["quizzes"].append(quiz(None, True, args.threads, args.lookup, args.questions))
    if not args.skip_train:
        if args.out.exists():
            import shutil
            shutil.rmtree(args.out)
        results["training"] = train(args.out, args.train_args, args.threads)
    results["quizzes"].append(quiz(str(args.out), False, args.threads, files=args.questions))
    if not args.no_docs:
        results["quizzes"].append(quiz(str(args.out), True, args.threads, args.lookup, args.questions))
    print(json.dumps({"training": results.get("training"),
                      "scores": scores(results["quizzes"])}, indent=1))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark.json").write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
