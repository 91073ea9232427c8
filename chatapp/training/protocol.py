"""The training job's contract, without torch: its options and the progress events it writes.

One table of options: the fields of `TrainJob`. Each field's metadata (`_option(...)`) gives
its command-line flag, help, checks and who passes it; `chatapp train`'s argparse
(`add_arguments`), the job's validation (`TrainJob.__post_init__`) and the window's command
line (`to_argv`) are all read from it, so an option is added in one place, as one field.

Progress travels as JSON lines (`chatapp train --progress jsonl`), one typed event each:

    ingest, dataset, estimate, eval, step, checkpoint, saved, ... end

The child builds the dataclasses below and writes them with `encode`; the window (and any
reader) gets them back with `decode`. NaN and infinities are written as null (JSON has none).
Unknown fields are ignored on reading and missing ones take their defaults, so a reader and a
writer one version apart still understand each other; a line that is not an event decodes to
None.

Long because it is the whole contract between the trainer and everything that starts or reads
it, kept in one place on purpose: the options table and the eight event types.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional, Sequence, Union

from ..arg_types import non_negative_int
from ..paths import check_output_folder

METHODS = ("lora", "full", "scratch")
STRATEGIES = ("ddp", "fsdp")
BASE_WEIGHTS = ("float", "int8", "int4")  # --weights: the base model's weights while LoRA trains
DEVICES = ("auto", "cpu", "cuda", "mps")
SCRATCH_SIZES = ("tiny", "small", "medium")
DEFAULT_LR = {"lora": 2e-4, "full": 5e-5, "scratch": 1e-3}
LORA_LAYERS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LORA_PRESETS = {  # name -> the layers that get an adapter
    "qv": ("q_proj", "v_proj"),
    "attention": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "all-linear": LORA_LAYERS,
}
DEFAULT_LORA_TARGETS = LORA_PRESETS["qv"]
# What the documents become (training/knowledge.py): "knowledge" (questions and answers about
# their facts, plus the raw text), "text" (the raw text), "auto" (knowledge for documents, the
# conversations as they are for a .jsonl file).
RECIPES = ("auto", "knowledge", "text")
# The knowledge recipe's defaults (benchmarks/knowledge.py; the README has the experiments):
# facts need capacity and a high rate to be learned within the few passes the time allows.
KNOWLEDGE_LR = {"lora": 2e-3, "full": 1e-4, "scratch": 1e-3}
KNOWLEDGE_LORA = {"rank": 32, "alpha": 64.0, "targets": LORA_PRESETS["all-linear"]}
DEFAULT_LORA = {"rank": 8, "alpha": 16.0, "targets": DEFAULT_LORA_TARGETS}
# --epochs auto: passes over the data wanted (facts need many exposures; plain text fewer),
# bounded by the time budget, and a floor of optimizer steps the budget does not cut: a small
# folder gets enough steps to learn (the estimate shows their time before training starts).
AUTO_EPOCHS = {"knowledge": 8.0, "text": 3.0}
AUTO_MIN_STEPS = {"knowledge": 60, "text": 30}
CHECKPOINTS = "checkpoints"  # the folder under --out that holds step-* checkpoints
TRAINING_NOTES = "chatapp_training.json"  # beside a trained full model: how it was trained, for `eval`
GIB = 1024**3


# ---------------------------------------------------------------------------- options
def parse_epochs(text: Union[str, float]) -> Union[str, float]:
    """A number of passes over the data, or "auto" (sized to the data and the time budget)."""
    if text == "auto":
        return "auto"
    try:
        return float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number of passes or 'auto', got {text!r}") from None


def parse_targets(text: Union[str, Sequence[str]]) -> list[str]:
    """"q_proj,v_proj" or a preset name ("qv", "attention", "all-linear") -> layer names."""
    if not isinstance(text, str):
        return list(text)
    if text.strip() in LORA_PRESETS:
        return list(LORA_PRESETS[text.strip()])
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in LORA_LAYERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown LoRA layer {', '.join(unknown)}; choose from "
                                         f"{','.join(LORA_LAYERS)} or a preset ({', '.join(LORA_PRESETS)})")
    return names


def _option(default: Any = None, help: str = "", *, flag: Optional[str] = None, type: Optional[Callable] = None,
            choices: Sequence[Any] = (), metavar: Optional[str] = None, minimum: Optional[float] = None,
            above: Optional[float] = None, nargs: Optional[str] = None, required: bool = False,
            exclusive: str = "", methods: Sequence[str] = (), panel: bool = True, factory: Any = None):
    """One row of the options table (a TrainJob field).

    minimum / above: the value must be >= minimum / > above (None passes: "not given").
    exclusive: options sharing this name are mutually exclusive on the command line.
    methods: the window passes the option only for these methods. panel: the window passes it at all.
    """
    meta = dict(help=help, flag=flag, type=type, choices=tuple(choices), metavar=metavar, minimum=minimum,
                above=above, nargs=nargs, required=required, exclusive=exclusive, methods=tuple(methods),
                panel=panel)
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainJob:
    """One training run, as `chatapp train` takes it and as the window asks for it."""

    model: str = _option("default", "'default', a .gguf file or a Hugging Face folder (ignored with --method "
                                    "scratch)")
    data: list[str] = _option(help="document folders/files, or one .jsonl chat file", nargs="+", metavar="PATH",
                              required=True, factory=list)
    out: Optional[Path] = _option(None, "where the adapter or model and checkpoints/ go", metavar="DIR",
                                  required=True)
    method: str = _option("lora", "lora: a small adapter (fast, little memory); full: every weight; scratch: "
                                  "a new small model and tokenizer", choices=METHODS)
    epochs: Union[float, str, None] = _option(
        "auto", "passes over the data, or 'auto' (default): sized to the data, a small folder gets enough steps "
                "to learn, a large one is bounded by --time-budget", type=parse_epochs, above=0, exclusive="length")
    max_steps: Optional[int] = _option(None, "optimizer steps", type=int, minimum=1, exclusive="length")
    time_budget: float = _option(12.0, "with --epochs auto: the most minutes of the whole run (default 12): "
                                       "making examples (at most a quarter of it), the training steps (sized "
                                       "to the speed of the first steps) and the final evaluation; the steps "
                                       "and the time are in the estimate shown before training starts",
                                 type=float, above=0, metavar="MINUTES")
    recipe: str = _option("auto", "knowledge: documents become questions and answers about their facts (written "
                                  "by templates and by the model itself) plus the raw text, so the model answers "
                                  "from them without the documents; text: the raw text only; auto (default): "
                                  "knowledge for documents, text for a .jsonl of conversations", choices=RECIPES)
    examples: Optional[str] = _option(None, "train on this knowledge examples JSONL (e.g. an edited "
                                            "OUT/knowledge_examples.jsonl of an earlier run) instead of making "
                                            "new ones", metavar="FILE")
    no_model_examples: bool = _option(False, "knowledge recipe: only the examples made by templates (faster), "
                                             "none written by the model")
    lr: Optional[float] = _option(None, "peak learning rate (default: " + ", ".join(
        f"{v:g} {k}" for k, v in DEFAULT_LR.items()) + "; knowledge recipe: " + ", ".join(
        f"{v:g} {k}" for k, v in KNOWLEDGE_LR.items()) + ")", type=float, above=0)
    warmup_steps: Optional[int] = _option(None, "default: 5%% of the steps, at most 100", type=int, minimum=0)
    weight_decay: float = _option(0.0, "AdamW weight decay", type=float, minimum=0)
    batch_size: int = _option(4, "blocks per micro-batch, across all processes", type=int, minimum=1)
    grad_accum: int = _option(1, "micro-batches per optimizer step", type=int, minimum=1)
    block_size: int = _option(256, "tokens per block", type=int, minimum=2)
    weights: str = _option("float", "the base model's weights while LoRA trains: float (the device's float "
                                    "type), or int8 / int4 kept compact (a quarter to a sixth of the memory; the "
                                    "adapter stays float32 and loads on a float base)", choices=BASE_WEIGHTS,
                           methods=("lora",))
    lora_rank: Optional[int] = _option(None, "rank of the LoRA matrices (default 8; knowledge recipe 32)",
                                       type=int, minimum=1, methods=("lora",))
    lora_alpha: Optional[float] = _option(None, "LoRA scale numerator, the update is scaled by alpha / rank "
                                                "(default 16; knowledge recipe 64)", type=float, above=0,
                                          methods=("lora",))
    lora_dropout: float = _option(0.05, "dropout on the LoRA input", type=float, minimum=0, methods=("lora",))
    lora_targets: Optional[list[str]] = _option(
        None, f"comma-separated, from {','.join(LORA_LAYERS)}, or a preset: {', '.join(LORA_PRESETS)} "
              f"(default q_proj,v_proj; knowledge recipe: all-linear)", type=parse_targets, metavar="LIST",
        methods=("lora",))
    eval_every: int = _option(50, "steps between evaluations (0: before and after)", type=int, minimum=0)
    early_stop: int = _option(0, "stop after N evaluations in a row without a lower held-out loss, and write "
                                 "the best evaluation's weights (0: off)", type=int, minimum=0, metavar="N")
    restore_best: bool = _option(False, "write the weights of the evaluation with the lowest held-out loss, "
                                        "not the last")
    save_every: int = _option(0, "steps between checkpoints (0: at the end and on cancel)", type=int, minimum=0)
    keep_checkpoints: int = _option(2, "newest checkpoints kept (0: all)", type=int, minimum=0)
    val_fraction: float = _option(0.1, "share of documents held out for validation", type=float, minimum=0)
    resume: Optional[Path] = _option(None, "a checkpoint, or a folder of them, to continue", metavar="DIR")
    seed: int = _option(0, "seed of the split, the initialisation and the data order", type=int, minimum=0)
    device: str = _option("auto", "where to train", choices=DEVICES, panel=False)
    threads: int = _option(0, "CPU threads (default: automatic)", type=non_negative_int, minimum=0, panel=False)
    strategy: str = _option("ddp", "under torchrun: ddp keeps a whole model in every process, fsdp shards "
                                   "weights, gradients and optimizer state between them (for models too large "
                                   "for one)", choices=STRATEGIES, panel=False)
    gradient_checkpointing: bool = _option(False, "recompute activations: less memory")
    no_bf16: bool = _option(False, "LoRA on a CPU with bf16 products (AVX512-BF16, AMX): train in float32 "
                                   "instead of bf16 autocast (about 1.4x slower there)", panel=False)
    max_memory: Optional[str] = _option(None, "memory the job may use, e.g. 6G (default: what the device has "
                                              "free)", metavar="SIZE", panel=False)
    size: str = _option("tiny", "model size for scratch", choices=SCRATCH_SIZES, methods=("scratch",))
    vocab_size: int = _option(4096, "tokenizer vocabulary for scratch", type=int, minimum=16,
                              methods=("scratch",))
    dry_run: bool = _option(False, "stop after the memory and time estimate", panel=False)

    def __post_init__(self) -> None:
        self.data = [str(p) for p in self.data]
        if self.out is not None:  # checked before training, not when writing at the end
            self.out = check_output_folder(self.out, "--out")
        if self.resume is not None:
            self.resume = Path(self.resume).expanduser()
        if self.lora_targets is not None:
            self.lora_targets = parse_targets(self.lora_targets)
        if self.max_steps is not None and self.epochs == "auto":
            self.epochs = None  # a length in steps: nothing is sized automatically
        self.validate()
        if self.early_stop:
            self.restore_best = True

    def validate(self) -> None:
        """ValueError naming the option when the job is not one that can run."""
        if not self.model and self.method != "scratch":
            raise ValueError("no base model chosen")
        if not self.data:
            raise ValueError("no documents chosen")
        if self.epochs not in (None, "auto") and self.max_steps is not None:
            raise ValueError("give max_steps or epochs, not both")
        if isinstance(self.epochs, str) and self.epochs != "auto":
            raise ValueError(f"epochs must be a number or 'auto', got {self.epochs!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.method == "lora" and self.lora_targets is not None and not self.lora_targets:
            raise ValueError("lora_targets is empty")
        if self.weights != "float" and self.method != "lora":
            raise ValueError(f"weights {self.weights} keeps the base compact, which only LoRA trains over "
                             f"(--method {self.method} updates every weight: use --weights float)")
        if self.weights != "float" and self.strategy == "fsdp":
            raise ValueError(f"weights {self.weights} is not supported with --strategy fsdp; use ddp")
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if meta["choices"] and value not in meta["choices"]:
                raise ValueError(f"{f.name} must be one of {', '.join(meta['choices'])}, got {value!r}")
            if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if meta["type"] is int and not float(value).is_integer():
                raise ValueError(f"{f.name} must be a whole number, got {value!r}")
            if meta["minimum"] is not None and not value >= meta["minimum"]:
                raise ValueError(f"{f.name} must be >= {meta['minimum']:g}, got {value!r}")
            if meta["above"] is not None and not value > meta["above"]:
                raise ValueError(f"{f.name} must be > {meta['above']:g}, got {value!r}")

    @property
    def auto_length(self) -> bool:
        """--epochs auto and no --max-steps: the run is sized to the data (training/run.py)."""
        return self.epochs == "auto" and self.max_steps is None

    @property
    def fixed_epochs(self) -> Optional[float]:
        """The number of passes asked for; None when the length is automatic or in steps."""
        return None if self.epochs == "auto" else self.epochs

    @property
    def time_budget_s(self) -> float:
        return 60.0 * self.time_budget

    @property
    def model_examples(self) -> bool:
        return not self.no_model_examples

    def resolved_recipe(self, data_kind: str) -> str:
        """The recipe for data of this kind ("documents" or "chat")."""
        if self.recipe != "auto":
            return self.recipe
        return "text" if data_kind == "chat" else "knowledge"

    def peak_lr_for(self, recipe: str) -> float:
        if self.lr is not None:
            return self.lr
        return (KNOWLEDGE_LR if recipe == "knowledge" else DEFAULT_LR)[self.method]

    def lora_settings(self, recipe: str) -> tuple[int, float, list[str]]:
        """(rank, alpha, layers): those given, else the recipe's defaults."""
        defaults = KNOWLEDGE_LORA if recipe == "knowledge" else DEFAULT_LORA
        return (self.lora_rank or defaults["rank"], self.lora_alpha or defaults["alpha"],
                list(self.lora_targets) if self.lora_targets is not None else list(defaults["targets"]))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TrainJob":
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})

    def to_argv(self) -> list[str]:
        """The options the window passes, as `chatapp train` arguments (defaults left out)."""
        argv: list[str] = []
        for f in dataclasses.fields(self):
            meta, value = f.metadata, getattr(self, f.name)
            if not meta["panel"] or (meta["methods"] and self.method not in meta["methods"]):
                continue
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if value is None or (value == default and not meta["required"] and f.name != "model"):
                continue
            flag = meta["flag"] or "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                argv.append(flag)
            elif meta["nargs"]:
                argv += [flag] + [str(v) for v in value]
            elif isinstance(value, list):
                argv += [flag, ",".join(value)]
            elif isinstance(value, float):
                argv += [flag, str(int(value)) if value.is_integer() else repr(value)]
            else:
                argv += [flag, str(value)]
        return argv


def option_default(name: str) -> Any:
    """The table's default for one option (what the window's form starts with)."""
    f = next(f for f in dataclasses.fields(TrainJob) if f.name == name)
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every TrainJob option as an argparse argument (dest = the field name)."""
    groups: dict[str, Any] = {}
    for f in dataclasses.fields(TrainJob):
        meta = f.metadata
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        kwargs: dict[str, Any] = dict(dest=f.name, help=meta["help"])
        if f.type in ("bool", bool):
            kwargs["action"] = "store_true"
        else:
            kwargs["default"] = option_default(f.name)
            for key in ("type", "metavar", "nargs"):
                if meta[key] is not None:
                    kwargs[key] = meta[key]
            if meta["choices"]:
                kwargs["choices"] = meta["choices"]
            if meta["required"]:
                kwargs["required"] = True
        target = parser
        if meta["exclusive"]:
            if meta["exclusive"] not in groups:  # one group per name (an empty group breaks argparse's usage)
                groups[meta["exclusive"]] = parser.add_mutually_exclusive_group()
            target = groups[meta["exclusive"]]
        target.add_argument(flag, **kwargs)


# ---------------------------------------------------------------------------- events
def json_safe(value: Any) -> Any:
    """NaN and infinities are not JSON: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def duration(seconds: Optional[float]) -> str:
    if not finite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class ProtocolError(ValueError):
    """A line that claims to be an event but does not hold one."""


@dataclass
class Event:
    """A progress event; subclasses set KIND and their fields."""

    KIND: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.KIND, **json_safe(dataclasses.asdict(self))}

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        known = {f.name: f for f in dataclasses.fields(cls)}
        missing = [n for n, f in known.items() if f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING and n not in data]
        if missing:
            raise ProtocolError(f"{cls.KIND} event without {', '.join(missing)}")
        return cls(**{k: v for k, v in data.items() if k in known})

    def describe(self) -> Optional[str]:
        """One readable line (the command without --progress), or None for events not worth one."""
        return None


@dataclass
class FileEntry:
    """One file met while reading the data (training/documents.py's FileReport, as sent)."""

    path: str
    status: str  # "used" or "skipped"
    reason: str = ""
    kind: str = ""
    format: str = ""
    size: int = 0  # bytes on disk
    chars: int = 0  # characters of cleaned text
    text_bytes: int = 0
    encoding: str = ""
    warning: str = ""
    conversations: int = 0  # a chat file


@dataclass
class IngestEvent(Event):
    KIND: ClassVar[str] = "ingest"
    kind: str = "documents"  # or "chat"
    complete: bool = True
    files_used: int = 0
    files_skipped: int = 0
    chars: int = 0
    text_bytes: int = 0
    conversations: int = 0
    skipped_by_kind: dict[str, int] = field(default_factory=dict)
    summary: str = ""
    files: list[FileEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.files = [FileEntry(**{k: v for k, v in f.items() if k in _FILE_FIELDS}) if isinstance(f, dict) else f
                      for f in self.files]

    def describe(self) -> str:
        return f"data: {self.summary}"


_FILE_FIELDS = {f.name for f in dataclasses.fields(FileEntry)}


@dataclass
class DatasetEvent(Event):
    KIND: ClassVar[str] = "dataset"
    kind: str = "documents"
    train_examples: int = 0
    val_examples: int = 0
    train_blocks: int = 0
    val_blocks: int = 0
    train_tokens: int = 0
    val_tokens: int = 0
    block_size: Optional[int] = None
    fingerprint: str = ""

    def describe(self) -> str:
        return (f"blocks: {self.train_blocks} for training ({self.train_tokens} tokens), "
                f"{self.val_blocks} for validation ({self.val_tokens} tokens)")


@dataclass
class EstimateEvent(Event):
    """Memory and time before training. eta_s is the likeliest time; eta_low_s..eta_high_s the
    range the real time fell in when measured (training/estimate.py)."""

    KIND: ClassVar[str] = "estimate"
    memory_bytes: int = 0
    available_bytes: Optional[int] = None
    fits: bool = True
    total_steps: int = 0
    tokens_per_step: int = 0
    device: str = ""
    processes: int = 1
    memory: dict[str, int] = field(default_factory=dict)
    micro_batch_s: Optional[float] = None
    eta_s: Optional[float] = None
    eta_low_s: Optional[float] = None
    eta_high_s: Optional[float] = None
    recipe: str = ""  # the recipe the data went through ("knowledge" or "text")
    time_budget_s: Optional[float] = None  # with --epochs auto: the budget the length was sized to
    epochs: Optional[float] = None  # with --epochs auto: the passes over the data that gives
    prepare_s: Optional[float] = None  # reading and tokenizing the data: part of eta_s (a run does it again)

    def describe(self) -> str:
        line = f"estimate: {self.memory_bytes / GIB:.2f} GiB"
        if self.available_bytes:
            line += f" of {self.available_bytes / GIB:.2f} GiB available"
        line += f", {self.total_steps} steps, about {duration(self.eta_s)}"
        if finite(self.eta_low_s) and finite(self.eta_high_s):
            line += f" ({duration(self.eta_low_s)} to {duration(self.eta_high_s)})"
        if finite(self.time_budget_s) and finite(self.epochs):
            line += (f" (--epochs auto: {self.epochs:g} passes over the data, within the "
                     f"{duration(self.time_budget_s)} budget)")
        return line


@dataclass
class ExamplesEvent(Event):
    """The knowledge recipe making its examples: progress (done of total), then the file written."""

    KIND: ClassVar[str] = "examples"
    done: int = 0
    total: int = 0
    elapsed_s: float = 0.0
    path: str = ""  # set once the examples are written
    examples: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def describe(self) -> str:
        if self.path:
            return f"examples: {self.examples} ({self.kinds}) in {self.seconds:.0f}s, written to {self.path}"
        return f"examples: the model answered {self.done}/{self.total} questions with the passage"


@dataclass
class EvalEvent(Event):
    KIND: ClassVar[str] = "eval"
    step: int
    val_loss: Optional[float] = None
    val_ppl: Optional[float] = None

    def describe(self) -> str:
        return f"step {self.step}: validation loss {self.val_loss:.4f}, perplexity {self.val_ppl:.2f}" \
            if finite(self.val_loss) and finite(self.val_ppl) else f"step {self.step}: validation loss not a number"


@dataclass
class StepEvent(Event):
    KIND: ClassVar[str] = "step"
    step: int
    total_steps: int
    loss: Optional[float] = None  # None: not a number (diverged)
    lr: float = 0.0
    tokens_per_s: float = 0.0
    eta_s: Optional[float] = None
    epoch: float = 0.0
    val_loss: Optional[float] = None  # with an evaluation at this step (also sent as its own EvalEvent)
    val_ppl: Optional[float] = None

    def describe(self) -> str:
        loss = f"{self.loss:.4f}" if finite(self.loss) else "nan"
        return (f"step {self.step}/{self.total_steps}  loss {loss}  lr {self.lr:.2e}  "
                f"{self.tokens_per_s:.0f} tok/s  eta {duration(self.eta_s)}")


@dataclass
class CheckpointEvent(Event):
    KIND: ClassVar[str] = "checkpoint"
    step: int
    path: str

    def describe(self) -> str:
        return f"checkpoint: {self.path}"


@dataclass
class SavedEvent(Event):
    KIND: ClassVar[str] = "saved"
    kind: str  # "adapter" or "hf-folder"
    path: str

    def describe(self) -> str:
        return f"saved {self.kind}: {self.path}"


COMPLETED, CANCELLED, FAILED = "completed", "cancelled", "failed"


@dataclass
class EndEvent(Event):
    """The last line. reason: "completed", "early_stop", "dry_run", or words saying why not."""

    KIND: ClassVar[str] = "end"
    status: str  # COMPLETED, CANCELLED or FAILED
    reason: str = ""
    out: str = ""
    step: Optional[int] = None
    total_steps: Optional[int] = None
    best_step: Optional[int] = None
    restored_step: Optional[int] = None
    val_ppl_before: Optional[float] = None
    val_ppl_after: Optional[float] = None
    val_loss_before: Optional[float] = None
    val_loss_after: Optional[float] = None
    checkpoint: Optional[str] = None  # the checkpoint a cancelled run can resume from

    def describe(self) -> str:
        if self.status == FAILED:
            return f"failed: {self.reason}"
        if self.status == CANCELLED:
            line = self.reason or CANCELLED
            if self.checkpoint:
                line += f"; resume with --resume {self.out}"
            return line
        line = COMPLETED if self.reason in (COMPLETED, "", None) else f"{COMPLETED}: {self.reason}"
        if self.reason == "early_stop":
            line += f" at step {self.step} (held-out loss stopped improving)"
        if finite(self.val_ppl_before) and finite(self.val_ppl_after):
            line += f"; validation perplexity {self.val_ppl_before:.2f} -> {self.val_ppl_after:.2f}"
        if self.restored_step is not None:
            line += f" (the weights of step {self.restored_step}, the best evaluation)"
        return f"{line}; output in {self.out}"


EVENTS: dict[str, type[Event]] = {cls.KIND: cls for cls in (
    IngestEvent, DatasetEvent, ExamplesEvent, EstimateEvent, EvalEvent, StepEvent, CheckpointEvent, SavedEvent,
    EndEvent)}


def encode(event: Event) -> str:
    """One JSON line (with its newline)."""
    return json.dumps(event.to_dict(), ensure_ascii=False, allow_nan=False) + "\n"


def event_from_dict(data: dict[str, Any]) -> Event:
    """The typed event of a decoded JSON object; ProtocolError when it is not one."""
    kind = data.get("event")
    if kind not in EVENTS:
        raise ProtocolError(f"unknown event {kind!r}")
    try:
        return EVENTS[kind].from_dict(data)
    except TypeError as exc:
        raise ProtocolError(f"{kind} event: {exc}") from None


def decode(line: Union[str, bytes]) -> Optional[Event]:
    """The event a line holds; None for a line that is not one (a stray print, a library's chatter)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or "event" not in data:
        return None
    try:
        return event_from_dict(data)
    except ProtocolError:
        return None
