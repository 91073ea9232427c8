"""Options and helpers shared by the model-running subcommands.

The argparse `type=` functions here turn a bad value into argparse's one-line usage error
naming the option (`--context: must be a positive whole number, got '-5'`), never a traceback
later in the engine.
"""

from __future__ import annotations

import argparse
from typing import Any, Mapping, Optional

from ..arg_types import bounded_int, non_negative_int, positive_int

# Beyond this a context length is a typo (the largest models take 1-2M tokens); its KV cache
# would be allocated before anything else could complain.
MAX_CONTEXT = 1 << 21
MAX_THREADS = 4096




def non_empty_text(text: str) -> str:
    """An argparse type: text with something other than whitespace in it."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def finite_float(text: str) -> float:
    """An argparse type: a finite number (argparse's float accepts 'nan' and 'inf')."""
    import math
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default",
                   help="'default' (bundled SmolLM2-135M-Instruct), a .gguf file, or a Hugging Face folder")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--context", type=bounded_int(1, MAX_CONTEXT), default=4096,
                   help="context length in tokens (default 4096)")
    p.add_argument("--threads", type=bounded_int(0, MAX_THREADS), default=0, help="CPU threads (default: automatic)")
    p.add_argument("--weights", default="auto", choices=("auto", "float32", "bf16", "float16", "int8", "int4"),
                   help="how weights are held in memory: auto (float32 when it fits comfortably, else the most "
                        "precise that fits), float32, bf16, float16, int8 or int4 (compact; default auto)")
    p.add_argument("--adapter", default=None, metavar="DIR",
                   help="a LoRA adapter folder (PEFT layout, e.g. from `chatapp train`) to apply to the model")


def add_sampling_options(p: argparse.ArgumentParser) -> None:
    """Sampling flags. A flag not given is None: the model's recommended value, else the default
    of chatapp.sampling_settings, applies (see sampling_from_args)."""
    from ..sampling_settings import default

    def option(flag: str, kind: type, what: str = "") -> None:
        name = flag[2:].replace("-", "_")
        p.add_argument(flag, type=kind, default=None,
                       help=f"{what}default: the model's recommendation, else {default(name)}".lstrip())

    option("--max-new-tokens", positive_int)
    option("--temperature", finite_float, "0 means greedy; ")
    option("--top-p", finite_float)
    option("--top-k", non_negative_int, "0: off; ")
    option("--min-p", finite_float)
    option("--repetition-penalty", finite_float, "1.0: off; ")
    option("--repeat-last-n", non_negative_int, "tokens the repetition penalty looks back at, 0: all; ")
    p.add_argument("--seed", type=bounded_int(-(2**63), 2**64 - 1, "a whole number that fits in 64 bits"),
                   default=None)
    p.add_argument("--stop", action="append", default=[], metavar="STR", help="stop string (repeatable)")


def sampling_from_args(args, recommended: Optional[Mapping[str, Any]] = None):
    """SamplingSettings: defaults, then the model's `recommended` values, then the flags given."""
    from ..sampling_settings import with_recommended
    return with_recommended(recommended or {}, temperature=args.temperature, top_p=args.top_p,
                            top_k=args.top_k, min_p=args.min_p, repetition_penalty=args.repetition_penalty,
                            repeat_last_n=args.repeat_last_n, max_new_tokens=args.max_new_tokens,
                            seed=args.seed, stop=list(args.stop))


def load_from_args(args):
    """(ChatBackend with the model loaded, ModelInfo)."""
    from ..engine.backend import ChatBackend, LoadOptions
    backend = ChatBackend()
    info = backend.load(args.model, LoadOptions(device=args.device, context_len=args.context,
                                                threads=args.threads, weights=getattr(args, "weights", "auto"),
                                                adapter=getattr(args, "adapter", None),
                                                mmproj=getattr(args, "mmproj", None)))
    return backend, info


def add_mmproj_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mmproj", default=None, metavar="FILE",
                   help="with a GGUF model: llama.cpp's mmproj file holding its vision part (LLaVA), so the model "
                        "sees images (default: an mmproj*.gguf beside the model, if any)")


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's input, shown as one line rather than a traceback."""
    from ..engine.device import DeviceError
    from ..engine.generate import ContextOverflowError
    from ..engine.sampling import SettingsError
    from ..text.chat_template import ChatTemplateError
    return (DeviceError, ContextOverflowError, SettingsError, ChatTemplateError)
