"""The Train tab, one module per job: documents, settings form, run view, adapters, background jobs."""

from .panel import TrainingPanel

__all__ = ["TrainingPanel"]
