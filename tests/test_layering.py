"""The layer rules of DESIGN.md, checked on the source with `ast` (nothing is imported).

- no module imports `transformers` or `peft` (test-only references);
- only chatapp/ui/ imports Qt (PySide6, shiboken6, qasync);
- chatapp/model/ is pure torch: it imports none of weights, engine, ui, storage, training;
- chatapp/text/ imports no torch.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import chatapp

PACKAGE_DIR = Path(chatapp.__file__).resolve().parent

REFERENCE_ONLY = {"transformers", "peft"}
QT = {"PySide6", "shiboken6", "qasync"}
ABOVE_MODEL = {f"chatapp.{name}" for name in ("weights", "engine", "ui", "storage", "training")}


@dataclass(frozen=True)
class Import:
    file: Path
    line: int
    module: str  # absolute dotted name


def _module_name(file: Path, package_dir: Path) -> str:
    rel = file.relative_to(package_dir.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(file: Path, package_dir: Path) -> Iterator[Import]:
    """Every module `file` imports: top level or nested, relative ones made absolute,
    plus string literals given to importlib.import_module / __import__."""
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    module = _module_name(file, package_dir)
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(file, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield Import(file, node.lineno, target)
            # `from chatapp import weights` imports the submodule chatapp.weights
            for alias in node.names:
                if alias.name != "*":
                    yield Import(file, node.lineno, f"{target}.{alias.name}")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield Import(file, node.lineno, node.args[0].value)


def _is_within(module: str, roots: set[str]) -> bool:
    return any(module == root or module.startswith(root + ".") for root in roots)


def find_violations(package_dir: Path) -> list[str]:
    violations = []
    for file in sorted(package_dir.rglob("*.py")):
        layer_parts = file.relative_to(package_dir).parts
        layer = layer_parts[0] if len(layer_parts) > 1 else ""
        for imp in _imports(file, package_dir):
            where = f"{file.relative_to(package_dir.parent).as_posix()}:{imp.line} imports {imp.module}"
            if _is_within(imp.module, REFERENCE_ONLY):
                violations.append(f"{where} (transformers/peft are test-only references)")
            if layer != "ui" and _is_within(imp.module, QT):
                violations.append(f"{where} (Qt belongs in chatapp/ui only)")
            if layer == "model" and _is_within(imp.module, ABOVE_MODEL):
                violations.append(f"{where} (chatapp/model is pure torch)")
            if layer == "text" and _is_within(imp.module, {"torch"}):
                violations.append(f"{where} (chatapp/text must not need torch)")
    return sorted(set(violations))


def test_package_follows_layer_rules():
    assert list(PACKAGE_DIR.rglob("*.py")), "no sources found"
    assert find_violations(PACKAGE_DIR) == []


def _write(root: Path, rel: str, source: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")


def test_checker_catches_each_kind_of_violation(tmp_path):
    pkg = tmp_path / "chatapp"
    _write(pkg, "__init__.py", "")
    _write(pkg, "text/__init__.py", "")
    _write(pkg, "text/bad.py", "import torch.nn\n")
    _write(pkg, "engine/bad.py", """
        def late():
            from transformers.models.llama import LlamaForCausalLM
        import peft
    """)
    _write(pkg, "weights/bad.py", "from PySide6.QtCore import QObject\nimport qasync\n")
    _write(pkg, "model/bad.py", "from ..weights import build\nfrom .. import storage\n")
    _write(pkg, "model/also_bad.py", "import importlib\nm = importlib.import_module('shiboken6')\n")
    _write(pkg, "cli.py", "import PySide6\n")
    # allowed: Qt inside ui, torch in model, model importing itself, text importing tokenizers
    _write(pkg, "ui/ok.py", "from PySide6.QtWidgets import QWidget\nfrom qasync import asyncSlot\n")
    _write(pkg, "model/ok.py", "import torch\nfrom .config import ModelConfig\nfrom . import layers\n")
    _write(pkg, "text/ok.py", "from tokenizers import Tokenizer\nimport torchlike_but_not_torch\n")
    _write(pkg, "weights/ok.py", "import torch\nfrom ..model.config import ModelConfig\n")

    found = find_violations(pkg)
    assert found == sorted([
        "chatapp/cli.py:1 imports PySide6 (Qt belongs in chatapp/ui only)",
        "chatapp/engine/bad.py:3 imports transformers.models.llama (transformers/peft are test-only references)",
        "chatapp/engine/bad.py:3 imports transformers.models.llama.LlamaForCausalLM "
        "(transformers/peft are test-only references)",
        "chatapp/engine/bad.py:4 imports peft (transformers/peft are test-only references)",
        "chatapp/model/also_bad.py:2 imports shiboken6 (Qt belongs in chatapp/ui only)",
        "chatapp/model/bad.py:1 imports chatapp.weights (chatapp/model is pure torch)",
        "chatapp/model/bad.py:1 imports chatapp.weights.build (chatapp/model is pure torch)",
        "chatapp/model/bad.py:2 imports chatapp.storage (chatapp/model is pure torch)",
        "chatapp/text/bad.py:1 imports torch.nn (chatapp/text must not need torch)",
        "chatapp/weights/bad.py:1 imports PySide6.QtCore (Qt belongs in chatapp/ui only)",
        "chatapp/weights/bad.py:1 imports PySide6.QtCore.QObject (Qt belongs in chatapp/ui only)",
        "chatapp/weights/bad.py:2 imports qasync (Qt belongs in chatapp/ui only)",
    ])


def test_relative_imports_resolve_from_init_and_modules(tmp_path):
    pkg = tmp_path / "chatapp"
    _write(pkg, "model/__init__.py", "from .config import X\nfrom ..engine import y\n")
    _write(pkg, "model/sub/deep.py", "from ...ui import window\n")
    mods = {i.module for f in pkg.rglob("*.py") for i in _imports(f, pkg)}
    assert {"chatapp.model.config", "chatapp.engine", "chatapp.engine.y", "chatapp.ui", "chatapp.ui.window"} <= mods
