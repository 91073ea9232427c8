"""documents/ sits under training and engine (DESIGN.md): no torch, no Qt, nothing above it."""

from __future__ import annotations

import ast
from pathlib import Path

import chatapp.documents

FORBIDDEN = ("torch", "PySide6", "chatapp.training", "chatapp.engine", "chatapp.ui", "chatapp.commands",
             "chatapp.model", "chatapp.weights", "chatapp.storage", "chatapp.text")


def test_documents_imports_nothing_above_it():
    folder = Path(chatapp.documents.__file__).parent
    found = []
    for file in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("chatapp." if node.level >= 2 else "chatapp.documents.") + (node.module or "")
                         if node.level else node.module or ""]
            else:
                continue
            found += [f"{file.name}: {n}" for n in names if n.startswith(FORBIDDEN)]
    assert found == []
    assert len(list(folder.glob("*.py"))) >= 6  # the check saw the package
