"""Chat with documents, retrieval variants measured on both benchmark folders in one run.

    .venv/bin/python benchmarks/docs_variants.py [VARIANT ...] [--threads 1] [--out FILE.jsonl]
        [--dev] [--instruction TEXT]

A variant is `name` (one of VARIANTS below) or `name=key:value,key:value` with the fields of
engine.retrieval.RetrievalOptions (passages, draft_tokens, rerank_candidates, best_last).
Each question is asked exactly as the two official measurements ask it:
- benchmarks/knowledge_docs with benchmarks/knowledge_questions.jsonl, as `chatapp quiz --docs`
  does (no system prompt, 80 new tokens, scored by training.quiz.matched_answer);
- benchmarks/demo_docs with docs_chat.py's ten questions, as `benchmarks/docs_chat.py --top 3`
  does ("You are a helpful assistant.", 48 new tokens, an accepted answer inside the reply).
`--dev` adds benchmarks/knowledge_questions_dev.jsonl's twenty to the knowledge folder's ten;
`--instruction` puts another sentence in place of engine.retrieval.INSTRUCTION for the whole run.
Greedy. Prints per question the passages (in prompt order), the draft, the reply and whether it
is right (to stderr as it goes) and one JSON summary per variant: scores and seconds per turn
spent drafting, reranking and answering.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

HERE = Path(__file__).resolve().parent
VARIANTS = {
    "default": {},
    "rerank8": {"rerank_candidates": 8},
    "hyde": {"draft_tokens": 32},
    "hyde_rerank8": {"draft_tokens": 32, "rerank_candidates": 8},
    "best_last": {"best_last": True},
}


def parse_variant(spec: str) -> tuple[str, dict]:
    if "=" not in spec:
        if spec not in VARIANTS:
            raise SystemExit(f"unknown variant {spec!r}: {', '.join(VARIANTS)} or name=key:value,...")
        return spec, dict(VARIANTS[spec])
    name, fields = spec.split("=", 1)
    options: dict = {}
    for pair in filter(None, fields.split(",")):
        key, value = pair.split(":", 1)
        if key == "best_last":
            options[key] = value.lower() in ("1", "true", "yes")
        else:
            options[key] = float(value) if "." in value else int(value)
    return name, options


def main() -> None:
    from docs_chat import DEMO, QUESTIONS as DEMO_QUESTIONS

    from chatapp.documents.library import LibraryStore
    from chatapp.engine.backend import ChatBackend, LoadOptions
    from chatapp.engine import retrieval
    from chatapp.engine.retrieval import LibraryRetriever, RetrievalOptions, send_with_documents
    from chatapp.engine.sampling import SamplingSettings
    from chatapp.engine.session import ChatSession
    from chatapp.training.quiz import matched_answer, read_questions

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", default=["default"])
    parser.add_argument("--model", default="default")
    parser.add_argument("--adapter", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--folders", nargs="+", default=["knowledge", "demo"], choices=["knowledge", "demo"])
    parser.add_argument("--out", type=Path, default=None, help="append every answer as a JSON line")
    parser.add_argument("--dev", action="store_true", help="the twenty dev questions too (knowledge folder)")
    parser.add_argument("--instruction", default=None, help=f"instead of {retrieval.INSTRUCTION!r}")
    args = parser.parse_args()
    if args.instruction is not None:
        retrieval.INSTRUCTION = args.instruction  # read by prompt_with_passages at every turn
    variants = [parse_variant(v) for v in args.variants]

    backend = ChatBackend()
    backend.load(args.model, LoadOptions(threads=args.threads, context_len=4096, adapter=args.adapter))
    files = ["knowledge_questions.jsonl"] + (["knowledge_questions_dev.jsonl"] if args.dev else [])
    knowledge = [(q.question, q.answers) for f in files for q in read_questions(HERE / f)]
    folders = {
        "knowledge": (HERE / "knowledge_docs", knowledge, "", 80, lambda reply, answers: matched_answer(reply, answers) is not None),
        "demo": (DEMO, DEMO_QUESTIONS, "You are a helpful assistant.", 48,
                 lambda reply, answers: any(a.lower() in reply.lower() for a in answers)),
    }
    out_file = args.out.open("a", encoding="utf-8") if args.out else None
    summaries = []
    with tempfile.TemporaryDirectory() as tmp:
        stores = {}  # one store per folder, as the official commands index them: BM25's statistics are per store
        for key in args.folders:
            stores[key] = LibraryStore(Path(tmp) / f"{key}.sqlite3")
            stores[key].add(key, [folders[key][0]])
            stores[key].index(key)
        for name, fields in variants:
            options = RetrievalOptions(**fields)
            summary = {"variant": name, "options": fields, "instruction": retrieval.INSTRUCTION}
            for key in args.folders:
                _folder, questions, system, max_new, correct = folders[key]
                retriever = LibraryRetriever(stores[key], key)
                settings = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=max_new)
                draft_s, rerank_s, total_s = 0.0, 0.0, 0.0
                right_of = []  # per question, in order: with --dev the first ten are the issue's
                for question, answers in questions:
                    session = ChatSession(backend.engine, system_prompt=system)
                    started = time.perf_counter()
                    reply = send_with_documents(session, question, settings, retriever, options=options)
                    text = "".join(reply).strip()
                    total_s += time.perf_counter() - started
                    result = reply.result
                    draft_s += result.draft_seconds
                    rerank_s += result.rerank_seconds
                    ok = correct(text, answers)
                    right_of.append(ok)
                    passages = [" ".join(s.text.split())[:110] for s in result.sources]
                    print(f"[{name}/{key}] {'RIGHT' if ok else 'wrong'} {question}\n  draft: {result.draft!r}\n"
                          + "".join(f"  p{s.number}: {p}\n" for s, p in zip(result.sources, passages))
                          + f"  reply: {text[:200]!r}", file=sys.stderr, flush=True)
                    if out_file:
                        out_file.write(json.dumps({"variant": name, "folder": key, "question": question,
                                                   "correct": ok, "reply": text, "draft": result.draft,
                                                   "sources": [s.to_dict() for s in result.sources],
                                                   "prompt": result.prompt}, ensure_ascii=False) + "\n")
                        out_file.flush()
                n = len(questions)
                summary[key] = {"score": f"{sum(right_of)}/{n}", "first_ten": f"{sum(right_of[:10])}/{min(n, 10)}",
                                "draft_s_per_turn": round(draft_s / n, 2),
                                "rerank_s_per_turn": round(rerank_s / n, 2), "s_per_turn": round(total_s / n, 2)}
            summaries.append(summary)
            print(json.dumps(summary), flush=True)
        for store in stores.values():
            store.close()
    if out_file:
        out_file.close()


if __name__ == "__main__":
    main()
