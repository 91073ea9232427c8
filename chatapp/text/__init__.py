"""text layer (see DESIGN.md): tokenizers built from tokenizer.json or GGUF metadata, and chat
templates rendered in a sandbox. No Qt, no torch."""

from .chat_template import CHATML_TEMPLATE, ChatTemplateError, render_chat
from .tokenizer import END_OF_TURN_TOKENS, Tokenizer

__all__ = ["CHATML_TEMPLATE", "ChatTemplateError", "END_OF_TURN_TOKENS", "Tokenizer", "render_chat"]
