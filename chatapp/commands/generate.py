"""`chatapp generate`, `chatapp chat` and `chatapp bench`."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import statistics
import sys
import threading

from ..arg_types import bounded_int
from .common import (add_mmproj_option, add_model_options, add_sampling_options, load_from_args, non_empty_text,
                     sampling_from_args)


# ---------------------------------------------------------------------------- generate

def add_generate_parser(subparsers) -> None:
    p = subparsers.add_parser("generate", help="generate text from a prompt",
                              description="Generate a continuation of --prompt, or with --chat a reply "
                                          "rendered with the model's chat template.")
    add_model_options(p)
    p.add_argument("--prompt", required=True, type=non_empty_text)
    p.add_argument("--chat", action="store_true", help="treat the prompt as a user message")
    p.add_argument("--system", default="", help="system prompt (with --chat)")
    add_sampling_options(p)
    add_thinking_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    p.add_argument("--logprobs", type=bounded_int(0, 20), default=None, metavar="K",
                   help="with --json: add each new token's log-probability and its K most probable "
                        "alternatives (0: the token's own only)")
    add_docs_option(p)
    p.add_argument("--image", action="append", default=[], metavar="FILE",
                   help="an image for a vision model (a LLaVA, Idefics3/SmolVLM or Gemma 3 folder, or a "
                        "GGUF file with --mmproj); repeat for several")
    p.add_argument("--mmproj", metavar="FILE", default=None,
                   help="with --image and a GGUF model: llama.cpp's mmproj file holding its vision part (LLaVA)")
    p.set_defaults(func=cmd_generate)


def add_thinking_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--thinking", action=argparse.BooleanOptionalAction, default=None,
                   help="for models whose chat template has the switch (Qwen3): reason before answering, "
                        "or not; default: the template's own choice")


def thinking_from_args(args: argparse.Namespace, engine) -> dict:
    """Template variables for --thinking/--no-thinking; says so when the model has no such switch."""
    from ..text.thinking import has_thinking_switch, thinking_variables

    chosen = getattr(args, "thinking", None)
    if chosen is not None and not has_thinking_switch(engine.tokenizer.chat_template):
        print(f"note: this model's chat template has no thinking switch: --{'' if chosen else 'no-'}thinking "
              "changes nothing", file=sys.stderr)
    return thinking_variables(engine.tokenizer.chat_template, chosen)


def cmd_generate(args: argparse.Namespace) -> int:
    from ..engine.session import ChatSession
    from ..text.prompt import find_markers, marker_strings

    sampling_from_args(args)  # a bad flag fails before the model loads
    if args.logprobs is not None and (not args.json or args.docs):
        print("error: --logprobs needs --json (and is not available with --docs)", file=sys.stderr)
        return 1
    if args.mmproj and not args.image:
        print("error: --mmproj goes with --image", file=sys.stderr)
        return 1
    if args.image:
        from .generate_images import generate_with_images
        return generate_with_images(args)
    retriever = open_docs(args)
    if retriever is False:
        return 1
    backend, _info = load_from_args(args)
    settings = sampling_from_args(args, backend.loaded.sampling_defaults)
    engine = backend.engine
    session = None
    documents = None
    if retriever is not None:  # --docs: a chat turn with the library's passages
        from ..engine.retrieval import send_with_documents
        session = ChatSession(engine, system_prompt=args.system, template_variables=thinking_from_args(args, engine))
        stream = send_with_documents(session, args.prompt, settings, retriever, **docs_limit(args))
        documents = stream.result
    elif args.chat:
        session = ChatSession(engine, system_prompt=args.system,
                              messages=[{"role": "user", "content": args.prompt}],
                              template_variables=thinking_from_args(args, engine))
        stream = session.respond(settings, logprobs=args.logprobs)
    else:
        tokenizer = engine.tokenizer
        ids = tokenizer.encode(args.prompt)  # as text: markers in the prompt are not special tokens
        if tokenizer.add_bos and tokenizer.bos_id is not None:
            ids = [tokenizer.bos_id] + ids
        stream = engine.stream(ids, settings, logprobs=args.logprobs)
    for delta in stream:
        if not args.json:
            sys.stdout.write(delta)
            sys.stdout.flush()
    reply = engine.reply
    markers = session.contained_markers if session is not None else \
        bool(find_markers(args.prompt, marker_strings(engine.tokenizer)))
    if args.json:
        print(json.dumps({"text": reply.text, "token_ids": reply.token_ids,
                          "prompt_tokens": reply.stats.prompt_tokens, "new_tokens": reply.stats.new_tokens,
                          "finish_reason": reply.finish_reason, "ttft_s": reply.stats.ttft_s,
                          "prefill_tok_s": reply.stats.prefill_tok_s,
                          "decode_tok_s": reply.stats.decode_tok_s, "contained_markers": markers,
                          **({"documents": documents.to_dict()} if documents else {}),
                          **({"logprobs": [entry.to_json() for entry in reply.logprobs]}
                             if args.logprobs is not None else {})}, ensure_ascii=False))
    else:
        sys.stdout.write("\n")
        if documents is not None:
            print_sources(documents, sys.stdout)
    if retriever is not None:
        retriever.close()
    return 0


# ---------------------------------------------------------------------------- --docs

def add_docs_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--docs", default=None, metavar="NAME|PATH",
                   help="answer with passages from a document library (`chatapp library add`), or from "
                        "a file or folder indexed now; the sources are listed after the reply")
    p.add_argument("--docs-passages", type=int, default=None, metavar="N",
                   help="how many of the best passages to offer (default 2; fewer if the context is full)")


def open_docs(args: argparse.Namespace):
    """The retriever for --docs, None without it, False after printing why it cannot open."""
    if not getattr(args, "docs", None):
        return None
    if args.docs_passages is not None and args.docs_passages < 1:
        print("error: --docs-passages must be at least 1", file=sys.stderr)
        return False
    from ..documents.library import LibraryError
    from ..engine.retrieval import open_documents
    try:
        return open_documents(args.docs)
    except (LookupError, LibraryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return False


def docs_limit(args: argparse.Namespace) -> dict:
    return {} if args.docs_passages is None else {"limit": args.docs_passages}


def print_sources(result, out) -> None:
    for source in result.sources:
        out.write(f"[{source.number}] {source.path}" + (f" > {source.heading}" if source.heading else "")
                  + f" [{source.start}:{source.end}]\n")
    if result.notice:
        out.write(f"({result.notice})\n")


# ---------------------------------------------------------------------------- chat

@contextlib.contextmanager
def _ctrl_c_sets(cancel: threading.Event):
    """While a reply streams, Ctrl-C stops the reply (within a token), not the program."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda _sig, _frame: cancel.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def add_chat_parser(subparsers) -> None:
    p = subparsers.add_parser("chat", help="chat in the terminal",
                              description="Interactive chat. Ctrl-C stops a reply; /continue writes "
                                          "on from where the last reply stopped; /image PATH attaches an image "
                                          "to the next message (a vision model; /image lists them, /image clear "
                                          "drops them); /reset, /system TEXT, /exit.")
    add_model_options(p)
    add_mmproj_option(p)
    add_sampling_options(p)
    p.add_argument("--system", default="You are a helpful assistant.")
    add_thinking_option(p)
    add_docs_option(p)
    p.set_defaults(func=cmd_chat)


def cmd_chat(args: argparse.Namespace, input_fn=input, out=None) -> int:
    from ..engine.backend import CONTINUABLE_REASONS
    from ..engine.generate import ContextOverflowError
    from ..engine.session import ChatSession
    from ..text.prompt import find_markers, marker_strings
    from .chat_images import PendingImages

    out = out or sys.stdout
    sampling_from_args(args)  # a bad flag fails before the model loads
    retriever = open_docs(args)
    if retriever is False:
        return 1
    backend, info = load_from_args(args)
    settings = sampling_from_args(args, backend.loaded.sampling_defaults)
    session = ChatSession(backend.engine, system_prompt=args.system,
                          template_variables=thinking_from_args(args, backend.engine))
    told_folded = False
    pending = PendingImages(info.name, info.vision, info.max_images, cost=backend.image_cost if info.vision else None)
    out.write(f"{info.name} on {info.device}. /continue, /reset, /system TEXT, /exit. "
              f"Ctrl-C stops a reply.\n")
    if info.vision:
        out.write(f"It sees images: /image PATH attaches one to the next message (at most {info.max_images}; "
                  f"each fills up to {info.image_tokens} of the {info.context_len} context tokens).\n")
    while True:
        try:
            line = input_fn("> ")
        except (EOFError, KeyboardInterrupt):
            out.write("\n")
            return 0
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return 0
        if text == "/reset":
            session.reset()
            out.write("(conversation cleared)\n")
            continue
        if pending.is_command(text):
            out.write(pending.command(text))
            continue
        if text.startswith("/system"):
            session.system_prompt = text[len("/system"):].strip()
            out.write(f"(system prompt set to: {session.system_prompt!r})\n")
            continue
        cancel = threading.Event()
        if text == "/continue":
            last = session.messages[-1] if session.messages else None
            if last is None or last["role"] != "assistant" or session.reply is None \
                    or session.reply.finish_reason not in CONTINUABLE_REASONS:
                out.write("(nothing to continue: the last reply, if any, was complete)\n")
                continue
            out.write(last["content"])
            replies = session.continue_reply(settings, cancel)
        elif retriever is not None:  # the message's images stay in its turn beside the passages
            from ..engine.retrieval import send_with_documents
            try:
                replies = send_with_documents(session, text, settings, retriever, cancel, images=list(pending.images),
                                              **docs_limit(args))
            except ContextOverflowError as exc:
                out.write(f"error: {exc}\n")
                continue
            except ValueError as exc:  # an image the model's processor refuses: the images stay attached
                if not pending.images:
                    raise
                out.write(f"error: {exc} (the message was not sent; /image clear drops the images)\n")
                continue
        else:
            replies = session.send(text, settings, cancel, images=list(pending.images))
        sent = text != "/continue"
        try:
            with _ctrl_c_sets(cancel):
                for delta in replies:
                    out.write(delta)
                    out.flush()
        except ContextOverflowError as exc:
            out.write(f"error: {exc}")
            sent = False
        except ValueError as exc:  # an image the model's processor refuses: the images stay attached
            if not pending.images:
                raise
            out.write(f"error: {exc} (the message was not sent; /image clear drops the images)\n")
            continue
        if sent:
            pending.clear()  # they went with this message
        if cancel.is_set():
            out.write(" [stopped]")
        out.write("\n")
        if hasattr(replies, "result"):
            print_sources(replies.result, out)
        if session.dropped_messages:
            out.write(f"({session.dropped_messages} earlier messages no longer fit the context and were "
                      f"left out)\n")
        if session.folded_system and not told_folded:
            told_folded = True  # once: it holds for every turn with this model
            out.write("(this model's chat template has no system turn: the system prompt was put at the start "
                      "of the first message)\n")
        if text != "/continue" and find_markers(text, marker_strings(backend.engine.tokenizer)):
            out.write("(your message contains chat-template markers; the model read them as plain text)\n")


# ---------------------------------------------------------------------------- bench

def add_bench_parser(subparsers) -> None:
    p = subparsers.add_parser("bench", help="measure prefill and decode speed",
                              description="Prefill and decode tokens/s, median of several runs after warm-up.")
    add_model_options(p)
    p.add_argument("--prompt-tokens", type=int, default=500)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)


def bench_engine(engine, prompt_tokens: int, new_tokens: int, runs: int) -> dict:
    """Median prefill and decode tokens/s over `runs` after one warm-up, greedy, EOS ignored."""
    import torch

    from ..engine.sampling import SamplingSettings

    vocab = engine.model.config.vocab_size
    settings = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=new_tokens)
    eos = engine.eos_ids
    engine.eos_ids = set()  # measure exactly new_tokens decode steps
    prefill, decode = [], []
    try:
        for run in range(runs + 1):
            g = torch.Generator().manual_seed(run)
            prompt = torch.randint(0, vocab, (prompt_tokens,), generator=g).tolist()
            engine.reset()
            for _ in engine.generate_ids(prompt, settings):
                pass
            if run:  # the first run warms up
                prefill.append(engine.reply.stats.prefill_tok_s)
                decode.append(engine.reply.stats.decode_tok_s)
    finally:
        engine.eos_ids = eos
        engine.reset()
    return {"prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "runs": runs,
            "threads": torch.get_num_threads(),
            "prefill_tok_s": statistics.median(prefill), "decode_tok_s": statistics.median(decode)}


def cmd_bench(args: argparse.Namespace) -> int:
    import resource

    from ..model.quant import compact_products, tensor_bytes

    backend, info = load_from_args(args)
    model = backend.engine.model
    result = {"model": info.name, "device": info.device, "dtype": info.dtype, "weights": info.weights,
              "weights_reason": info.weights_reason, "weight_bytes": tensor_bytes(model),
              # int8/int4 one-row products: "int8-kernel" (torch's, rowwise int8), "int4-kernel" (torch's,
              # packed int4), "compiled" (torch.compile) or "eager", "+"-joined when mixed; None for floats
              "compact_products": compact_products(model),
              # the one-token step: "compiled" as one graph (model/decode_step.py) or "eager"
              "decode_step": "compiled" if getattr(model.decode_step, "compiled", False) else "eager",
              **bench_engine(backend.engine, args.prompt_tokens, args.new_tokens, args.runs)}
    # ru_maxrss: KiB on Linux, bytes on macOS; the process's peak resident memory
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["peak_rss_bytes"] = peak if sys.platform == "darwin" else peak * 1024
    # decode reads every weight once per token: the bandwidth it reached
    result["decode_weight_GBps"] = round(result["weight_bytes"] * result["decode_tok_s"] / 1e9, 2)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{info.name} on {info.device} ({info.dtype}, {result['threads']} threads): "
              f"prefill {result['prefill_tok_s']:.0f} tok/s ({args.prompt_tokens} tokens), "
              f"decode {result['decode_tok_s']:.1f} tok/s ({args.new_tokens} tokens), "
              f"peak memory {result['peak_rss_bytes'] / 1024**2:.0f} MiB")
    return 0
