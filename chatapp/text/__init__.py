"""text layer (see DESIGN.md): tokenizers built from tokenizer.json or GGUF metadata, chat
templates rendered in a sandbox, and conversations encoded with user text kept as text
(`render_and_encode`, `encode_text`). No Qt, no torch."""

from .chat_template import CHATML_TEMPLATE, ChatTemplateError, render_chat
from .prompt import RenderedPrompt, encode_text, render_and_encode
from .tokenizer import END_OF_TURN_TOKENS, Tokenizer

__all__ = ["CHATML_TEMPLATE", "ChatTemplateError", "END_OF_TURN_TOKENS", "RenderedPrompt", "Tokenizer",
           "encode_text", "render_and_encode", "render_chat"]
