"""What training runs leave behind: checkpoint folders, adapters and trained model folders.

Torch-free to import (the window lists outputs without loading torch at start-up);
`scan_adapters` reads adapter metadata through weights/peft_adapter, which imports torch when
called, so call it off the GUI thread.

    <out>/                      one run's --out
      adapter_config.json ...   a LoRA adapter (PEFT format), or config.json + *.safetensors
      checkpoints/step-00000120 complete checkpoints (training/checkpoint.py writes them)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from .protocol import CHECKPOINTS, TRAINING_NOTES, finite

log = logging.getLogger(__name__)

PREFIX = "step-"
PathLike = Union[str, Path]


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


def checkpoint_step(path: PathLike) -> Optional[int]:
    """The step of a `step-NNNNNNNN` folder name, or None for another name."""
    name = Path(path).name
    digits = name[len(PREFIX):]
    return int(digits) if name.startswith(PREFIX) and digits.isdigit() else None


def list_checkpoints(root: PathLike) -> list[Path]:
    """Complete checkpoints directly under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and checkpoint_step(p) is not None]
    return sorted(found, key=checkpoint_step)


def latest_checkpoint(root: PathLike) -> Optional[Path]:
    found = list_checkpoints(root)
    return found[-1] if found else None


def find_checkpoint(path: PathLike) -> Optional[Path]:
    """A checkpoint folder itself, or the newest under a checkpoints folder or a run's --out; None if none."""
    path = Path(path).expanduser()
    if (path / "trainer_state.json").is_file():
        return path
    for root in (path, path / CHECKPOINTS):
        found = latest_checkpoint(root)
        if found is not None:
            return found
    return None


@dataclass
class TrainedOutput:
    """One row of the adapters list."""

    name: str  # the run's folder name
    path: str  # the folder holding the adapter or model
    kind: str  # "adapter" or "model"
    date: float  # epoch seconds the output was written
    base_model: str = ""
    val_ppl: Optional[float] = None  # held-out perplexity after training
    val_ppl_before: Optional[float] = None
    error: str = ""  # a damaged folder is listed with its problem, not hidden


def scan_adapters(root: PathLike) -> list[TrainedOutput]:
    """Trained outputs under `root`, newest first: a LoRA adapter (adapter_config.json) or a full
    model (config.json + safetensors) in each folder or one level below it."""
    root = Path(root)
    rows: list[TrainedOutput] = []
    if not root.is_dir():
        return rows
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        children = sorted(p for p in folder.iterdir() if p.is_dir() and checkpoint_step(p) is None
                          and p.name != CHECKPOINTS)
        for candidate in [folder] + children:
            row = describe_output(folder.name, candidate)
            if row is not None:
                rows.append(row)
                break
    rows.sort(key=lambda r: r.date, reverse=True)
    return rows


def describe_output(name: str, folder: Path) -> Optional[TrainedOutput]:
    """The row for `folder`, or None when it holds neither an adapter nor a model."""
    if (folder / "adapter_config.json").is_file():
        row = TrainedOutput(name, str(folder), "adapter", (folder / "adapter_config.json").stat().st_mtime)
        try:
            from ..weights.peft_adapter import read_adapter_info
            info = read_adapter_info(folder)
        except Exception as exc:  # noqa: BLE001 - any damage is shown on the row
            row.error = str(exc) or type(exc).__name__
            return row
        row.base_model = info.base_model_name
        _read_metrics(row, info.metadata)
        return row
    if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
        row = TrainedOutput(name, str(folder), "model", (folder / "config.json").stat().st_mtime)
        try:
            notes = json.loads((folder / TRAINING_NOTES).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            notes = {}
        _read_metrics(row, notes if isinstance(notes, dict) else {})
        return row
    return None


def _read_metrics(row: TrainedOutput, notes: dict) -> None:
    """Perplexity before/after from the notes `chatapp train` keeps with its output
    ("eval_before"/"eval_after": {"step", "val_loss", "val_ppl"}), or flat "val_ppl_*" keys."""
    def ppl(*keys: str) -> Optional[float]:
        for key in keys:
            value = notes.get(key)
            value = value.get("val_ppl") if isinstance(value, dict) else value
            if finite(value):
                return float(value)
        return None

    row.val_ppl = ppl("eval_after", "val_ppl_after", "val_ppl")
    row.val_ppl_before = ppl("eval_before", "val_ppl_before")
    if notes.get("base_model") and not row.base_model:
        row.base_model = str(notes["base_model"])
