"""PyInstaller hook for torch, replacing pyinstaller-hooks-contrib's (hooks in `hookspath`
take precedence over contrib's).

Differences from the contrib hook, each measured on torch 2.13.0+cpu, Linux x86-64:
- Modules go into the PYZ archive only ("pyz"), not also as .py source files ("pyz+py", ~50 MB
  of sources). The sources exist for TorchScript and torch.compile, which read them with
  `inspect`; the app uses neither (grep for torch.compile/torch.jit in chatapp/ stays empty).
  The exception are the config modules (torch/distributed/config.py, torch/_dynamo/config.py,
  ...): `torch.utils._config_module.install_config_module` reads their source at import time
  to find `# _compile_ignored` comments, and `import torch.utils.data` reaches one of them
  ("OSError: could not get source code" without it). So do the modules that declare
  `@torch.jit._overload` functions (torch/nn/functional.py, ...): the decorator parses their
  source at import and warns once per function without it. Both keep their .py files (~0.5 MB).
- Data files leave out the C++ SDK (headers, CMake files, import libraries) and the C++ test
  programs under torch/test/ and torch/bin/. torch/bin/torch_shm_manager stays: torch's
  multiprocessing start-up looks for it.
- Binaries leave out the test libraries shipped in torch/lib/ (libtorchbind_test and friends).
- All torch submodules stay importable (collect_submodules, as contrib does): torch imports
  many of its parts lazily by name, and torch.testing._internal is needed by `import torch`.
CUDA/MKL inference of the contrib hook is not repeated: the app bundles the CPU build.
"""

import ast
from pathlib import Path

from PyInstaller.utils.hooks import (
    PY_DYLIB_PATTERNS,
    collect_data_files,
    collect_dynamic_libs,
    collect_submodules,
    get_package_paths,
)


_JIT_OVERLOADS = {"_overload", "_overload_method"}


def _reads_own_source(tree) -> bool:
    """Calls install_config_module, or decorates a function with torch.jit's _overload or
    _overload_method (under whatever local name, or spelled as an attribute)."""
    config_names, overload_names = {"install_config_module"}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("torch._jit_internal", "torch.utils._config_module"):
            for alias in node.names:
                if alias.name in _JIT_OVERLOADS:
                    overload_names.add(alias.asname or alias.name)
                elif alias.name == "install_config_module":
                    config_names.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if getattr(node.func, "id", getattr(node.func, "attr", None)) in config_names:
                return True
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for deco in node.decorator_list:
                if (isinstance(deco, ast.Name) and deco.id in overload_names) or \
                        (isinstance(deco, ast.Attribute) and deco.attr in _JIT_OVERLOADS):
                    return True
    return False


def _modules_reading_their_source() -> list[str]:
    """torch modules whose import reads their own source with `inspect`."""
    package_dir = Path(get_package_paths("torch")[1])
    found = []
    for path in package_dir.rglob("*.py"):
        if path.name in ("_config_module.py", "_jit_internal.py") or \
                path.relative_to(package_dir).parts[0] in ("test", "testing"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "install_config_module" not in text and "_overload" not in text:
            continue
        if _reads_own_source(ast.parse(text, filename=str(path))):
            parts = path.relative_to(package_dir.parent).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    if "torch" in found:  # a package's mode covers all its modules: this would undo "pyz" below
        raise RuntimeError("hook-torch: torch/__init__.py reads its own source; revisit this hook")
    return sorted(found)


module_collection_mode = {"torch": "pyz", **{name: "pyz+py" for name in _modules_reading_their_source()}}
warn_on_missing_hiddenimports = False

_DATA_EXCLUDES = [
    "**/*.h", "**/*.hpp", "**/*.cuh", "**/*.cpp", "**/*.c", "**/*.cu", "**/*.lib",
    "**/*.pyi", "**/*.cmake", "**/*.pdb",
    "include/**", "share/**",
    "test/**",  # C++ test programs (~83 MB on Linux)
    "bin/*Test", "bin/test_*", "bin/protoc*", "bin/*.pt", "bin/*.ptl", "bin/upgrader_models/**",
]
datas = collect_data_files("torch", excludes=_DATA_EXCLUDES)

_TEST_LIBRARIES = ("torchbind_test", "jitbackend_test", "backend_with_compiler", "aoti_custom_ops")
binaries = [
    (src, dest) for src, dest in collect_dynamic_libs("torch", search_patterns=PY_DYLIB_PATTERNS + ["*.so.*"])
    if not any(name in src for name in _TEST_LIBRARIES)
]

hiddenimports = collect_submodules("torch")

# See the contrib hook: symlinks from torch/lib to the top-level folder confuse torch's lookup
# of its own libraries on Linux. (No-op where unsupported.)
bindepend_symlink_suppression = ["**/torch/lib/*.so*"]
