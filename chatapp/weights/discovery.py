"""Which models this machine has: the default one, the Hugging Face cache, recently opened ones.

Offline only: the Hugging Face cache is read as a folder tree (huggingface_hub is neither
imported nor needed) and nothing here touches the network.

Everything listed here comes from folders and files anyone may have put there: only regular
files are ever opened (a FIFO would block the listing, and with it the window's start), the
folder walk is bounded in depth and count, and the recent list in size, nesting and entries.
Long because the three sources (default, cache, recent) share the detection and those bounds.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Union

from ..errors import CorruptFileError, MissingFileError, ModelLoadError
from ..paths import (DEFAULT_MODEL_FILENAME, atomic_write_text, default_model_path, move_aside, read_json,
                     read_regular_file, user_config_dir)

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

GGUF_MAGIC = b"GGUF"
RECENT_MODELS_FILENAME = "recent_models.json"
RECENT_MODELS_LIMIT = 20
_RECENT_FORMAT_VERSION = 1
# Bounds on what the listing reads (module-level so a reader finds them and a test can lower them).
RECENT_FILE_MAX_BYTES = 1 << 20  # 20 entries take a few KB
RECENT_PATH_MAX_CHARS = 4096  # PATH_MAX on Linux
SCAN_MAX_DEPTH = 8  # folders below a snapshot searched for GGUF files (real repos: 1-2)
SCAN_MAX_FILES = 10_000  # files looked at per snapshot
INDEX_MAX_BYTES = 16 << 20  # a shard index (the largest real ones are ~100 KB)


@dataclass
class ModelEntry:
    """One model a user can open.

    kind: "default" (the bundled GGUF), "gguf" (another GGUF file), "hf-folder" (a Hugging Face
    folder opened by path), "hf-cache" (a Hugging Face folder inside the local hub cache).
    source: where it was found: "default", "hf-cache" or "recent".
    available/problem: a recent entry whose file vanished or no longer reads as a model is kept
    in the list (the user may re-mount a drive) but marked, with the reason in `problem`.
    """

    name: str
    path: Path
    kind: str
    size_bytes: Optional[int]
    source: str
    available: bool = True
    problem: str = ""

    @property
    def sees_images(self) -> bool:
        """A vision model: a vision folder, or a GGUF with an mmproj*.gguf beside it."""
        from .vision_files import find_mmproj, is_vision_folder  # no torch: the GUI thread asks

        if not self.available:
            return False
        if self.kind in ("gguf", "default"):
            return find_mmproj(self.path) is not None
        try:
            return self.path.is_dir() and is_vision_folder(self.path)
        except OSError:
            return False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["vision"] = self.sees_images
        return data


# ---------------------------------------------------------------------------- detection

def _is_safetensors_folder(folder: Path) -> bool:
    return any(p.name.endswith(".safetensors") and p.is_file() for p in folder.iterdir())


def _has_weights(folder: Path) -> bool:
    return ((folder / "model.safetensors").is_file()
            or (folder / "model.safetensors.index.json").is_file()
            or _is_safetensors_folder(folder))


def _read_magic(path: Path) -> bytes:
    """The first 4 bytes of a regular file; OSError for anything else (a FIFO is never waited on)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return os.read(fd, 4)
    finally:
        os.close(fd)


def detect_model_kind(path: PathLike) -> str:
    """ "gguf" for a GGUF file, "hf-folder" for a Hugging Face folder; else a ModelLoadError."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(path, "does not exist", "give a .gguf file or a Hugging Face model folder")
    if path.is_dir():
        if not (path / "config.json").is_file():
            ggufs = sorted(p.name for p in path.glob("*.gguf"))
            hint = (f"open the GGUF file inside it instead, e.g. {ggufs[0]}" if ggufs else
                    "a model folder must contain config.json and model.safetensors "
                    "(or model.safetensors.index.json with its shards)")
            raise MissingFileError(path, "is a folder without config.json", hint)
        if not _has_weights(path):
            has_bin = any(path.glob("*.bin")) or any(path.glob("*.pt")) or any(path.glob("*.pth"))
            hint = ("only safetensors weights are read; convert the .bin/.pt weights to safetensors"
                    if has_bin else "a model folder must contain model.safetensors "
                    "(or model.safetensors.index.json with its shards)")
            raise MissingFileError(path, "has config.json but no *.safetensors weights", hint)
        return "hf-folder"
    try:
        magic = _read_magic(path)
    except OSError as exc:
        problem = "is not a regular file (a FIFO, device or socket?)" if exc.errno is None else \
            f"cannot be read ({exc.strerror or exc})"
        raise MissingFileError(path, problem) from exc
    if magic != GGUF_MAGIC:
        if len(magic) < 4:
            raise CorruptFileError(path, f"is too short to be a model file ({len(magic)} bytes)")
        raise CorruptFileError(path, f"is not a GGUF file (starts with {magic!r}, expected {GGUF_MAGIC!r})",
                               "give a .gguf file or a Hugging Face model folder")
    return "gguf"


def _size_of(path: Path) -> Optional[int]:
    """Bytes of a file, or of the files a folder holds (following the hub cache's symlinks)."""
    try:
        if path.is_file():
            return path.stat().st_size
        total, seen, base_depth = 0, 0, len(path.parts)
        for root, dirs, files in os.walk(path):
            if len(Path(root).parts) - base_depth >= SCAN_MAX_DEPTH:
                dirs.clear()
            seen += len(files)
            if seen > SCAN_MAX_FILES:
                return None  # not a model folder anyone measures by hand
            for name in files:
                try:
                    total += (Path(root) / name).stat().st_size
                except OSError:  # a dangling symlink: a blob that is not (yet) downloaded
                    continue
        return total
    except OSError:
        return None


# -------------------------------------------------------------------- Hugging Face cache

def hf_cache_dir() -> Path:
    """The hub cache folder, resolved the way huggingface_hub resolves it (without importing it)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def _repo_name(repo_dir: Path) -> Optional[str]:
    # "models--HuggingFaceTB--SmolLM2-135M" -> "HuggingFaceTB/SmolLM2-135M"; "models--gpt2" -> "gpt2"
    parts = repo_dir.name.split("--")
    if parts[0] != "models" or len(parts) < 2 or not all(parts[1:]):
        return None
    return "/".join(parts[1:])


def _complete_hf_snapshot(folder: Path) -> bool:
    """config.json and every weight file present (a shard index names its shards)."""
    if not (folder / "config.json").is_file():
        return False
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(read_json(index, max_bytes=INDEX_MAX_BYTES)["weight_map"].values())
        except (ModelLoadError, KeyError, TypeError, AttributeError) as exc:
            log.debug("%s: unreadable shard index (%s)", index, exc)
            return False
        if any(not isinstance(shard, str) or Path(shard).is_absolute() or ".." in Path(shard).parts
               for shard in shards):
            return False  # names files outside the snapshot: the loader refuses it too
        return bool(shards) and all((folder / shard).is_file() for shard in shards)
    return _is_safetensors_folder(folder)


def _snapshots_main_first(repo_dir: Path) -> list[Path]:
    snapshots_dir = repo_dir / "snapshots"
    if not snapshots_dir.is_dir():
        return []
    snapshots = [p for p in snapshots_dir.iterdir() if p.is_dir()]
    main_rev = ""
    ref = repo_dir / "refs" / "main"
    if ref.is_file():
        try:
            main_rev = read_regular_file(ref, 1024).decode("utf-8", "replace").strip()
        except (OSError, ModelLoadError) as exc:
            log.debug("%s: unreadable (%s)", ref, exc)

    def order(p: Path) -> tuple[int, float]:
        try:
            mtime = p.stat().st_mtime
        except OSError:
            mtime = 0.0
        return (0 if p.name == main_rev else 1, -mtime)

    return sorted(snapshots, key=order)


def _iter_gguf_files(folder: Path) -> Iterator[Path]:
    """GGUF files under `folder`, at most SCAN_MAX_DEPTH folders down, SCAN_MAX_FILES looked at."""
    seen = 0
    base_depth = len(folder.parts)
    for root, dirs, files in os.walk(folder):
        if len(Path(root).parts) - base_depth >= SCAN_MAX_DEPTH:
            dirs.clear()
        dirs.sort()
        for name in sorted(files):
            seen += 1
            if seen > SCAN_MAX_FILES:
                log.warning("%s: more than %d files, the rest are not searched for GGUF files", folder,
                            SCAN_MAX_FILES)
                return
            if name.lower().endswith(".gguf"):
                yield Path(root) / name


def scan_hf_cache(cache_dir: Optional[PathLike] = None) -> list[ModelEntry]:
    """Models in the local Hugging Face hub cache: complete safetensors snapshots and GGUF files.

    One folder entry per repository (the snapshot `refs/main` names, else the newest complete
    one); GGUF files from every snapshot, the main revision winning when a name repeats.
    Incomplete downloads (missing config, weights or shards) are left out.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else hf_cache_dir()
    if not root.is_dir():
        log.debug("no Hugging Face cache at %s", root)
        return []
    entries: list[ModelEntry] = []
    try:
        repo_dirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("models--"))
    except OSError as exc:
        log.warning("cannot list the Hugging Face cache %s: %s", root, exc)
        return []
    for repo_dir in repo_dirs:
        name = _repo_name(repo_dir)
        if name is None:
            continue
        try:
            entries.extend(_scan_repo(repo_dir, name))
        except OSError as exc:  # one unreadable repo must not hide the others
            log.warning("skipping %s in the Hugging Face cache: %s", repo_dir, exc)
    return entries


def _scan_repo(repo_dir: Path, name: str) -> list[ModelEntry]:
    entries: list[ModelEntry] = []
    folder_listed = False
    seen_gguf: set[str] = set()
    for snapshot in _snapshots_main_first(repo_dir):
        if not folder_listed and _complete_hf_snapshot(snapshot):
            entries.append(ModelEntry(name=name, path=snapshot, kind="hf-cache",
                                      size_bytes=_size_of(snapshot), source="hf-cache"))
            folder_listed = True
        for gguf in _iter_gguf_files(snapshot):
            rel = gguf.relative_to(snapshot).as_posix()
            if rel in seen_gguf:
                continue
            try:
                if _read_magic(gguf) != GGUF_MAGIC:
                    log.debug("%s: not a GGUF file, skipped", gguf)
                    continue
            except OSError:  # a symlink to a blob that never finished downloading
                continue
            seen_gguf.add(rel)
            entries.append(ModelEntry(name=f"{name}/{rel}", path=gguf, kind="gguf",
                                      size_bytes=_size_of(gguf), source="hf-cache"))
    return entries


# ---------------------------------------------------------------------------- recent models

def _normalize(path: PathLike) -> Path:
    return Path(os.path.abspath(Path(path).expanduser()))


def _entry_for_recent(path: Path) -> ModelEntry:
    guessed_kind = "gguf" if path.suffix.lower() == ".gguf" else "hf-folder"
    name = path.name
    try:
        exists = path.exists()
    except (OSError, ValueError) as exc:  # a name too long, a loop of links
        return ModelEntry(name=name, path=path, kind=guessed_kind, size_bytes=None, source="recent",
                          available=False, problem=f"cannot be looked at ({exc})")
    if not exists:
        return ModelEntry(name=name, path=path, kind=guessed_kind, size_bytes=None, source="recent",
                          available=False, problem="no longer exists (moved or deleted?)")
    try:
        kind = detect_model_kind(path)
    except ModelLoadError as exc:
        return ModelEntry(name=name, path=path, kind=guessed_kind, size_bytes=_size_of(path),
                          source="recent", available=False, problem=exc.problem)
    return ModelEntry(name=name, path=path, kind=kind, size_bytes=_size_of(path), source="recent")


class RecentModels:
    """Models the user opened, most recent first, in user_config_dir()/recent_models.json.

    A file that cannot be parsed is moved aside to recent_models.json.corrupt-<time> (kept for
    the user, never deleted; paths.move_aside) and the list starts empty.
    """

    def __init__(self, path: Optional[PathLike] = None, limit: int = RECENT_MODELS_LIMIT) -> None:
        self.path = Path(path) if path is not None else user_config_dir() / RECENT_MODELS_FILENAME
        self.limit = limit

    def _load(self) -> list[dict[str, Any]]:
        try:
            data = read_json(self.path, max_bytes=RECENT_FILE_MAX_BYTES)
        except MissingFileError:
            return []
        except CorruptFileError as exc:  # not JSON, too big, too deep, a FIFO, unreadable
            self._move_aside(exc.problem)
            return []
        try:
            items = data["models"] if isinstance(data, dict) else data
            if not isinstance(items, list):
                raise ValueError("expected a list of models")
            records = []
            for item in items[: self.limit]:
                if isinstance(item, str):  # tolerate a plain list of paths
                    item = {"path": item}
                if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                    raise ValueError(f"bad entry {str(item)[:100]!r}")
                path = item["path"]
                if not path or "\0" in path or len(path) > RECENT_PATH_MAX_CHARS:
                    raise ValueError(f"bad path {path[:100]!r}")
                records.append(item)
            return records
        except (ValueError, KeyError, TypeError) as exc:
            self._move_aside(exc)
            return []

    def _move_aside(self, exc: object) -> None:
        try:
            backup = move_aside(self.path)
        except OSError as move_exc:
            log.warning("%s is corrupt (%s) and could not be moved aside (%s); ignoring it",
                        self.path, exc, move_exc)
            return
        log.warning("%s is corrupt (%s); moved to %s, starting an empty recent-models list",
                    self.path, exc, backup.name)

    def _save(self, records: list[dict[str, Any]]) -> None:
        payload = {"version": _RECENT_FORMAT_VERSION, "models": records}
        atomic_write_text(self.path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")

    def paths(self) -> list[Path]:
        return [Path(r["path"]) for r in self._load()]

    def add(self, path: PathLike) -> None:
        """Put `path` first (moving it up if already there) and keep at most `limit` models."""
        path = _normalize(path)
        records = [r for r in self._load() if _normalize(r["path"]) != path]
        records.insert(0, {"path": str(path), "opened_at": time.time()})
        self._save(records[: self.limit])

    def remove(self, path: PathLike) -> None:
        path = _normalize(path)
        records = self._load()
        kept = [r for r in records if _normalize(r["path"]) != path]
        if len(kept) != len(records):
            self._save(kept)

    def entries(self) -> list[ModelEntry]:
        return [_entry_for_recent(p) for p in self.paths()]


# ---------------------------------------------------------------------------- all together

def default_model_entry() -> ModelEntry:
    """The bundled model; when it is not installed an unavailable entry saying how to install."""
    name = DEFAULT_MODEL_FILENAME.split(".")[0]
    try:
        path = default_model_path()
    except MissingFileError as exc:
        log.warning("%s", exc)
        return ModelEntry(name=name, path=exc.path or Path(DEFAULT_MODEL_FILENAME), kind="default",
                          size_bytes=None, source="default", available=False,
                          problem=f"{exc.problem} ({exc.hint})" if exc.hint else exc.problem)
    return ModelEntry(name=name, path=path, kind="default", size_bytes=_size_of(path), source="default")


def _dedupe(entries: Iterable[ModelEntry]) -> list[ModelEntry]:
    seen: set[Path] = set()
    out = []
    for entry in entries:
        key = _normalize(entry.path)
        if key in seen:
            continue
        seen.add(key)
        out.append(entry)
    return out


def list_models(include_recent: bool = True, cache_dir: Optional[PathLike] = None,
                recent: Optional[RecentModels] = None) -> list[ModelEntry]:
    """Default model first, then the Hugging Face cache, then recent models not listed already."""
    entries = [default_model_entry()]
    entries.extend(scan_hf_cache(cache_dir))
    if include_recent:
        entries.extend((recent or RecentModels()).entries())
    return _dedupe(entries)
