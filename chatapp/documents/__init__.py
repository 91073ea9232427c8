"""Documents: reading files (every format), cleaning, chunking with source spans, and the
library index (SQLite FTS5). Shared by training and retrieval; no torch, no Qt."""
