"""Options and helpers shared by the model-running subcommands."""

from __future__ import annotations

import argparse


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default",
                   help="'default' (bundled SmolLM2-135M-Instruct), a .gguf file, or a Hugging Face folder")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--context", type=int, default=4096, help="context length in tokens (default 4096)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: automatic)")
    p.add_argument("--adapter", default=None, metavar="DIR",
                   help="a LoRA adapter folder (PEFT layout, e.g. from `chatapp train`) to apply to the model")


def add_sampling_options(p: argparse.ArgumentParser, temperature: float = 0.7) -> None:
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--temperature", type=float, default=temperature, help="0 means greedy")
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--top-k", type=int, default=40)
    p.add_argument("--min-p", type=float, default=0.05)
    p.add_argument("--repetition-penalty", type=float, default=1.1)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--stop", action="append", default=[], metavar="STR", help="stop string (repeatable)")


def sampling_from_args(args):
    from ..engine.sampling import SamplingSettings
    return SamplingSettings(temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                            min_p=args.min_p, repetition_penalty=args.repetition_penalty,
                            max_new_tokens=args.max_new_tokens, seed=args.seed, stop=list(args.stop))


def load_from_args(args):
    """(ChatBackend with the model loaded, ModelInfo)."""
    from ..engine.backend import ChatBackend, LoadOptions
    backend = ChatBackend()
    info = backend.load(args.model, LoadOptions(device=args.device, context_len=args.context,
                                                threads=args.threads,
                                                adapter=getattr(args, "adapter", None)))
    return backend, info


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's input, shown as one line rather than a traceback."""
    from ..engine.device import DeviceError
    from ..engine.generate import ContextOverflowError
    from ..engine.sampling import SettingsError
    from ..text.chat_template import ChatTemplateError
    return (DeviceError, ContextOverflowError, SettingsError, ChatTemplateError)
