"""Where the window imports the Train tab from; the tab itself lives in chatapp/ui/training/."""

from .training import TrainingPanel

__all__ = ["TrainingPanel"]
