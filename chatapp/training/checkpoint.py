"""Training checkpoints: one folder per step, written to a temp folder and renamed into place.

    step-00000120/
      trainable.safetensors   the trained weights only (the LoRA tensors for LoRA), our names
      optimizer.safetensors   the optimizer's per-parameter tensors (AdamW: step, exp_avg, exp_avg_sq)
      optimizer.json          its param groups and any non-tensor state, with parameter names
      rng.safetensors         torch's CPU (and CUDA) generator states
      trainer_state.json      step, data position, early-stop state, Python's random state...
      train_config.json       the TrainConfig the run used
      best.safetensors        (with restore_best only) the trained weights at the best evaluation

No pickle anywhere: tensors go to safetensors, everything else to JSON. A folder named
step-* is complete (it appears by rename only after every file is written and synced).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save as safetensors_bytes

from ..errors import CorruptFileError, MissingFileError
from ..paths import WriteError, fsync_dir, read_json
from .outputs import checkpoint_name, latest_checkpoint, list_checkpoints  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

PathLike = Union[str, Path]
FORMAT_VERSION = 1
FILES = ("trainable.safetensors", "optimizer.safetensors", "optimizer.json", "rng.safetensors",
         "trainer_state.json", "train_config.json")


@dataclass
class Checkpoint:
    path: Path
    trainable: dict[str, torch.Tensor]
    optimizer: dict[str, Any]  # a torch optimizer state_dict
    optimizer_param_names: list[list[str]]  # per param group, in order
    rng: dict[str, Any]  # see rng_state()
    state: dict[str, Any]  # trainer_state.json
    config: dict[str, Any]  # train_config.json
    best: Optional[dict[str, torch.Tensor]] = None  # best.safetensors, where the run keeps one

    @property
    def step(self) -> int:
        return int(self.state["step"])


# -- RNG ----------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- optimizer state without pickle -------------------------------------------------------
def _split_optimizer_state(sd: dict[str, Any], param_names: list[list[str]]
                           ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, per_param in sd["state"].items():
        for key, value in per_param.items():
            if torch.is_tensor(value):
                tensors[f"state.{idx}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    meta = {"param_groups": sd["param_groups"], "scalars": scalars, "param_names": param_names}
    json.dumps(meta)  # anything JSON cannot hold would be lost: fail now, not at resume
    return tensors, meta


def _join_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    for idx, values in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(values)
    groups = []
    for group in meta["param_groups"]:
        # JSON turned tuples (AdamW's betas) into lists; "params" is a list of indices.
        groups.append({k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in group.items()})
    return {"state": state, "param_groups": groups}


# -- writing ------------------------------------------------------------------------------
def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8")


def save_checkpoint(root: PathLike, step: int, trainable: dict[str, torch.Tensor],
                    optimizer_state: dict[str, Any], optimizer_param_names: list[list[str]],
                    rng: dict[str, Any], state: dict[str, Any], config: dict[str, Any], keep: int = 2,
                    best: Optional[dict[str, torch.Tensor]] = None) -> Path:
    """Write root/step-NNNNNNNN atomically and keep only the newest `keep` checkpoints.

    best: the trained weights at the best evaluation so far, kept where the run restores them.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
    try:
        opt_tensors, opt_meta = _split_optimizer_state(optimizer_state, optimizer_param_names)
        rng_tensors = {"torch": rng["torch"]}
        for i, s in enumerate(rng.get("cuda", [])):
            rng_tensors[f"cuda.{i}"] = s
        state = dict(state, step=step, format_version=FORMAT_VERSION, python_rng=list(rng["python"]))
        files = {
            "trainable.safetensors": safetensors_bytes(
                {k: v.detach().to("cpu").contiguous() for k, v in trainable.items()}),
            "optimizer.safetensors": safetensors_bytes(opt_tensors),
            "optimizer.json": _json_bytes(opt_meta),
            "rng.safetensors": safetensors_bytes(rng_tensors),
            "train_config.json": _json_bytes(config),
            "trainer_state.json": _json_bytes(state),
        }
        if best is not None:
            files["best.safetensors"] = safetensors_bytes({k: v.detach().to("cpu").contiguous() for k, v in best.items()})
        for name, data in files.items():
            _write(tmp / name, data)
        fsync_dir(tmp)
        if final.exists():  # the same step saved twice (a save, then a cancel): newest wins
            trash = Path(tempfile.mkdtemp(prefix=f".old-{final.name}-", dir=root))
            os.replace(final, trash / final.name)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
        fsync_dir(root)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):  # disk full: say which checkpoint
            raise WriteError(final, exc) from exc
        raise
    _prune(root, keep)
    log.info("saved checkpoint %s", final)
    return final


def _prune(root: Path, keep: int) -> None:
    if keep > 0:
        for old in list_checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    for stray in root.glob(".tmp-*"):  # left by a run that died while saving
        shutil.rmtree(stray, ignore_errors=True)


# -- reading ------------------------------------------------------------------------------
def checkpoint_problem(path: PathLike) -> str:
    """"" when the checkpoint at `path` looks loadable (every file present, the JSON files valid,
    each safetensors header consistent with its file), else what is wrong. Reads no tensor data."""
    from safetensors import safe_open

    path = Path(path)
    try:
        for name in FILES:
            if not (path / name).is_file():
                return f"{name} is missing"
        state = _load_json(path / "trainer_state.json")
        if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
            return "trainer_state.json is not of this checkpoint format"
        for name in ("optimizer.json", "train_config.json"):
            _load_json(path / name)
        for name in FILES + ("best.safetensors",):
            if name.endswith(".safetensors") and (path / name).is_file():
                with safe_open(str(path / name), framework="pt") as f:
                    f.keys()
    except (CorruptFileError, MissingFileError) as exc:
        return exc.problem
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        return f"unreadable: {exc}"
    return ""


def latest_readable_checkpoint(root: PathLike) -> Optional[Path]:
    """The newest checkpoint under `root` that checkpoint_problem finds nothing wrong with; a
    corrupt newer one is logged and passed over (the previous one is kept for exactly this)."""
    for candidate in reversed(list_checkpoints(root)):
        problem = checkpoint_problem(candidate)
        if not problem:
            return candidate
        log.warning("checkpoint %s is unusable (%s); trying the one before it", candidate, problem)
    return None


def _load_json(path: Path) -> Any:
    return read_json(path)  # bounded (size, nesting); CorruptFileError naming the file


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CorruptFileError(path, f"is not a readable safetensors file: {exc}") from exc


def load_checkpoint(path: PathLike) -> Checkpoint:
    path = Path(path)
    if not path.is_dir():
        raise MissingFileError(path, "is not a checkpoint folder")
    for name in FILES:
        if not (path / name).is_file():
            raise MissingFileError(path, f"has no {name}", "the checkpoint is incomplete")
    state = _load_json(path / "trainer_state.json")
    if state.get("format_version") != FORMAT_VERSION:
        raise CorruptFileError(path / "trainer_state.json",
                               f"checkpoint format {state.get('format_version')!r}, expected {FORMAT_VERSION}")
    opt_meta = _load_json(path / "optimizer.json")
    rng_tensors = _load_tensors(path / "rng.safetensors")
    py = state.pop("python_rng")
    rng = {"torch": rng_tensors["torch"], "python": (py[0], tuple(py[1]), py[2])}
    cuda = [rng_tensors[f"cuda.{i}"] for i in range(len(rng_tensors) - 1)]
    if cuda:
        rng["cuda"] = cuda
    return Checkpoint(
        path=path,
        trainable=_load_tensors(path / "trainable.safetensors"),
        optimizer=_join_optimizer_state(_load_tensors(path / "optimizer.safetensors"), opt_meta),
        optimizer_param_names=opt_meta["param_names"],
        rng=rng,
        state=state,
        config=_load_json(path / "train_config.json"),
        best=_load_tensors(path / "best.safetensors") if (path / "best.safetensors").is_file() else None,
    )
