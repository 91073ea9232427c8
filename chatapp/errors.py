"""Error types shared by every layer. Each message names the file and what is wrong.

A user sees these in the window or on the command line, so a message says which file,
what is wrong with it, and where possible what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, Path]


class Cancelled(Exception):
    """The user stopped the work before it finished; nothing it would have replaced was touched."""


class ModelLoadError(Exception):
    """A model (weights, config or tokenizer) could not be loaded from `path`."""

    def __init__(self, path: Optional[PathLike], problem: str, hint: str = "") -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        self.hint = hint
        where = f"{self.path}: " if self.path is not None else ""
        message = f"{where}{problem}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class CorruptFileError(ModelLoadError):
    """The file is truncated, not of the format it claims, or internally inconsistent."""


class UnsupportedArchitectureError(ModelLoadError):
    """The model family is not one this app runs."""


class UnsupportedQuantizationError(ModelLoadError):
    """A tensor is stored in a quantization type this app cannot dequantize."""


class MissingFileError(ModelLoadError):
    """A file the model needs (config, weights, tokenizer) is absent."""


class ShapeMismatchError(ModelLoadError):
    """A tensor's shape disagrees with the model's configuration, or a tensor is missing."""


class TokenizerError(ModelLoadError):
    """The tokenizer could not be built from the file's vocabulary or tokenizer.json."""
