"""chatapp: chat with a language model on your own machine, and teach it your documents."""

__version__ = "0.1.0"
