"""Bounds on what the app reads from files it did not write: the numbers in one place.

Model files, documents and settings come from anywhere (DESIGN.md: "anything read from a file
has bounds on time, memory and size where it enters"). Each reader checks its limit where the
input enters and raises its own specific error naming the file; this module only holds the
numbers, so that a reader of the code finds them, and a test can lower one.
"""

from __future__ import annotations

# -- JSON files users give us (paths.read_json): config.json, indexes, settings, lists, exports
# The largest real ones are safetensors indexes of big models (~100 KB) and tokenizer.json is
# read elsewhere; conversation exports may be larger.
JSON_MAX_BYTES = 64 << 20
# Nesting: real files are a few levels deep; deeper than this is refused before parsing
# (json.loads recurses, and a deep structure later breaks code that walks it).
JSON_MAX_DEPTH = 64

# -- JSONL files (training/jsonl.py): training chats, knowledge examples, quiz questions
# One line is one record, read and parsed whole; a real one (a long conversation) is tens of KB.
# A file without newlines is refused at this many bytes instead of being read into memory.
JSONL_MAX_LINE_BYTES = 16 << 20

# -- GGUF headers (weights/gguf_loader.py) ----------------------------------------------------
# The gguf package keeps a few Python objects per metadata array item (~600 bytes for a string,
# ~350 for a number), so a small file can ask for gigabytes. Real models: SmolLM2 ~150k items in
# all, Llama 3 ~540k, Gemma 3 ~790k (262k-token vocabulary, scores and types).
GGUF_MAX_ARRAY_ITEMS = 1_000_000  # in all the metadata arrays of one file together
GGUF_MAX_ARRAY_NESTING = 2  # an array of arrays at most (no real model nests at all)
GGUF_MAX_METADATA_KEYS = 10_000  # real files have 20-60
GGUF_MAX_TENSORS = 100_000  # real files have a few hundred to a few thousand

# -- model shapes (model/config.py) -----------------------------------------------------------
# A config (config.json or GGUF metadata) may name any sizes: one past every model this app can
# run is refused before anything is built from it (even on the meta device, torch overflows on
# a tensor of 1.5e9 x 1.5e9). The largest open models have under a trillion parameters.
MODEL_MAX_PARAMS = 10**12

# -- chat templates (text/template_sandbox.py) ---------------------------------------------
# Real templates are a few KB and render in about a millisecond; these bounds are far above
# anything a real template needs and far below what hangs the app or exhausts its memory.

# Largest template source, in characters (the biggest real ones, with tool calling, are ~20 KB).
TEMPLATE_MAX_SOURCE_CHARS = 256_000
# Wall-clock time for one rendering, checked at every loop iteration, call and filter.
TEMPLATE_MAX_SECONDS = 2.0
# Largest value (string, list, dict, number of digits) a template may build, and what it may
# write in total, in characters: this much plus TEMPLATE_CHARS_PER_INPUT_CHAR for every
# character of the messages (and tools) it is given.
TEMPLATE_MAX_CHARS = 1_000_000
TEMPLATE_CHARS_PER_INPUT_CHAR = 4
# range() in a template: at most this many items (jinja's sandbox allows 100,000).
TEMPLATE_MAX_RANGE = 100_000
# Integers a template computes: at most this many bits (10**9 is 30 bits).
TEMPLATE_MAX_INT_BITS = 4_096
# Containers nested deeper than this are refused (JSON of real tools is a few levels deep).
TEMPLATE_MAX_DEPTH = 64
# lipsum(n, html, min, max): at most this many paragraphs, of at most this many words.
TEMPLATE_MAX_LIPSUM_PARAGRAPHS = 100
TEMPLATE_MAX_LIPSUM_WORDS = 1_000

# -- images given to vision models (text/images.py) -----------------------------------------
# Checked before decoding: the file size, then the pixel size from the header. A 8192x8192 photo
# is 64 M pixels (~200 MB decoded as RGB); larger is refused rather than decoded.
IMAGE_MAX_BYTES = 64 << 20
IMAGE_MAX_PIXELS = 8192 * 8192
