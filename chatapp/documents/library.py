"""The document library: named libraries of folders and files, indexed in SQLite FTS5.

    store = LibraryStore()                           # <user data dir>/library.sqlite3
    store.add("notes", ["~/notes", "~/paper.pdf"])   # remembers the paths
    report = store.index("notes", progress=print, cancel=event)
    hits = store.search("notes", "who founded the harbour company?")

Indexing walks the library's paths (documents.reading, the same reader as training) and reads
only files whose size or modification time changed; a file read again whose cleaned text hashes
the same keeps its chunks. Files no longer found are dropped (but not those under a library
path that is itself gone: an unplugged drive is not a deletion). Each file is written in its own
transaction, so a cancel, a crash or a file that vanishes mid-read leaves every file either
fully indexed or absent; one file's text is in memory at a time.

Search ranks by BM25 over the word index (unicode61 words, Porter-stemmed). For a query with
Chinese, Japanese or Korean text, that ranking is fused by reciprocal rank fusion with BM25 over
the trigram index; for other queries the trigram matches (partial words) only follow the word
matches: fused with them on English, they pushed the passage holding the answer out of the top
three for 2 of 10 questions on benchmarks/knowledge_docs. See search.py.

Dense retrieval is optional: a library given a static-embedding model folder
(`set_embedding_model`, embeddings.py) keeps a vector for each chunk, computed at the end of
`index` for the chunks that have none (new or changed files' chunks; all of them when the model
changed), in bounded batches with progress and cancel. Its search fuses the word ranking above
with the vectors' cosine ranking by reciprocal rank fusion; each hit says both ranks.

Long because the schema, the incremental indexing, the vectors and the search share one
connection and its transactions; query building and rank fusion live in search.py, loading the
embedding model and scanning the vectors in embeddings.py.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from ..paths import DISK_FULL_HINT
from ..sqlite_wal import use_wal
from .chunking import ChunkOptions, chunk_text
from .embeddings import EmbeddingModelError, StaticEmbedder, dense_ranking, embed_missing, load_static_embedder
from .reading import USED, IngestOptions, Ingestor, read_file
from .search import RRF_K, cjk_spaced, has_cjk, reciprocal_rank_fusion, snippet, trigram_query, word_query

log = logging.getLogger(__name__)

DB_FILENAME = "library.sqlite3"
SCHEMA_VERSION = 3
CANDIDATES_PER_INDEX = 50  # how deep each ranking goes before fusion
_UNCHANGED_BATCH = 500

# Words are stemmed (Porter: "founded", "founder" and "founding" are one term), which put the
# passage holding the answer first for 9 of 10 questions on benchmarks/knowledge_docs (8 of 10
# unstemmed). Porter leaves words of other scripts as unicode61 made them.
_WORDS_TABLE = """CREATE VIRTUAL TABLE chunk_words USING fts5(heading, text, cjk, content='chunks',
        content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')"""
# Schema 1 -> 2: the word index re-made with the stemming tokenizer, from the chunks it indexes.
_MIGRATE_1_TO_2 = ("DROP TABLE chunk_words", _WORDS_TABLE,
                   "INSERT INTO chunk_words (chunk_words) VALUES ('rebuild')")
# Schema 2 -> 3: dense retrieval. A library's embedding model folder ('' none) and the
# fingerprint its stored vectors were made with; one row of float32 vectors per file (embeddings.py),
# gone with the file or with any change to its chunks (the triggers), so never stale.
_MIGRATE_2_TO_3 = (
    "ALTER TABLE libraries ADD COLUMN embedding_model TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE libraries ADD COLUMN embedding_fingerprint TEXT NOT NULL DEFAULT ''",
    """CREATE TABLE file_vectors (file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
        library_id INTEGER NOT NULL, chunk_ids BLOB NOT NULL, vectors BLOB NOT NULL)""",
    "CREATE INDEX file_vectors_by_library ON file_vectors (library_id)",
    """CREATE TRIGGER chunks_delete_vectors AFTER DELETE ON chunks BEGIN
        DELETE FROM file_vectors WHERE file_id = old.file_id;
    END""",
    """CREATE TRIGGER chunks_insert_vectors AFTER INSERT ON chunks BEGIN
        DELETE FROM file_vectors WHERE file_id = new.file_id;
    END""",
)

_SCHEMA = (
    "CREATE TABLE libraries (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at REAL NOT NULL)",
    """CREATE TABLE roots (library_id INTEGER NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
        path TEXT NOT NULL, UNIQUE (library_id, path))""",
    # status 'used' files have chunks; 'skipped' ones are remembered (with why) so that an
    # unchanged binary or empty file is not read again on every run.
    """CREATE TABLE files (id INTEGER PRIMARY KEY,
        library_id INTEGER NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
        path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT,
        format TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
        chars INTEGER NOT NULL DEFAULT 0, run INTEGER NOT NULL DEFAULT 0,
        UNIQUE (library_id, path))""",
    """CREATE TABLE chunks (id INTEGER PRIMARY KEY,
        file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        ordinal INTEGER NOT NULL, heading TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
        text TEXT NOT NULL, cjk TEXT NOT NULL DEFAULT '')""",
    "CREATE INDEX chunks_by_file ON chunks (file_id)",
    _WORDS_TABLE,
    """CREATE VIRTUAL TABLE chunk_trigrams USING fts5(text, content='chunks', content_rowid='id',
        tokenize='trigram')""",
    """CREATE TRIGGER chunks_insert AFTER INSERT ON chunks BEGIN
        INSERT INTO chunk_words (rowid, heading, text, cjk) VALUES (new.id, new.heading, new.text, new.cjk);
        INSERT INTO chunk_trigrams (rowid, text) VALUES (new.id, new.text);
    END""",
    """CREATE TRIGGER chunks_delete AFTER DELETE ON chunks BEGIN
        INSERT INTO chunk_words (chunk_words, rowid, heading, text, cjk)
            VALUES ('delete', old.id, old.heading, old.text, old.cjk);
        INSERT INTO chunk_trigrams (chunk_trigrams, rowid, text) VALUES ('delete', old.id, old.text);
    END""",
)


class LibraryError(Exception):
    """A problem with the library the user asked for (shown as one line)."""


class LibraryNotFoundError(LibraryError, LookupError):
    pass


def default_db_path() -> Path:
    from ..paths import user_data_dir
    return user_data_dir() / DB_FILENAME


@dataclass(frozen=True)
class LibraryInfo:
    name: str
    paths: list[str]
    files: int  # files with text in the index
    chunks: int
    chars: int
    embedding_model: str = ""  # a static-embedding model folder, '' for words only
    vectors: int = 0  # chunks with a vector

    def to_dict(self) -> dict:
        return {"name": self.name, "paths": self.paths, "files": self.files, "chunks": self.chunks,
                "chars": self.chars, "embedding_model": self.embedding_model or None, "vectors": self.vectors}


@dataclass(frozen=True)
class IndexProgress:
    done: int  # files handled so far
    total: int  # files found by the walk
    path: str
    status: str  # "indexed", "unchanged", "skipped", "vanished"; "embedding" (done/total: chunks)
    detail: str = ""


@dataclass
class IndexReport:
    indexed: int = 0  # files (re)chunked this run
    unchanged: int = 0
    skipped: int = 0  # not text we can use (binary, empty, too large, ...)
    removed: int = 0  # in the index before, no longer found
    chunks_added: int = 0
    embedded: int = 0  # chunk vectors computed this run
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, what went wrong)
    cancelled: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"indexed": self.indexed, "unchanged": self.unchanged, "skipped": self.skipped,
                "removed": self.removed, "chunks_added": self.chunks_added, "embedded": self.embedded,
                "problems": [{"path": p, "problem": why} for p, why in self.problems],
                "cancelled": self.cancelled, "seconds": round(self.seconds, 3)}

    def summary(self) -> str:
        line = (f"{self.indexed} indexed, {self.unchanged} unchanged, {self.skipped} skipped, "
                f"{self.removed} removed ({self.chunks_added} new chunks, {self.seconds:.1f} s)")
        if self.embedded:
            line += f"; {self.embedded} passages embedded"
        if self.problems:
            line += f"; {len(self.problems)} problems"
        return line + ("; cancelled" if self.cancelled else "")


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    path: str
    heading: str  # "Part > Section", '' outside Markdown sections
    start: int  # span in the file's cleaned text
    end: int
    text: str
    score: float  # reciprocal rank fusion score
    snippet: str = ""
    bm25_rank: Optional[int] = None  # 1 = best by words; None: no word matched
    dense_rank: Optional[int] = None  # 1 = most similar vector; None: no vectors (or not among the best)
    bm25: float = 0.0  # BM25 over the word index, higher is better; 0: no word matched (trigrams only)

    def to_dict(self) -> dict:
        return {"path": self.path, "heading": self.heading, "start": self.start, "end": self.end,
                "score": round(self.score, 6), "bm25_rank": self.bm25_rank, "dense_rank": self.dense_rank,
                "snippet": self.snippet, "text": self.text}


class LibraryStore:
    """One SQLite file holding every library. Not shared between threads: make one per thread
    (SQLite's WAL lets a reader search while another connection indexes)."""

    def __init__(self, path: Optional[os.PathLike] = None, chunk_options: Optional[ChunkOptions] = None,
                 ingest_options: Optional[IngestOptions] = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.chunk_options = chunk_options or ChunkOptions()
        self.ingest_options = ingest_options or IngestOptions()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        timeout_s = 10.0  # another process indexing the same library: wait this long for its lock
        self._conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=timeout_s)
        use_wal(self._conn, timeout_s)
        self._conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable up to the last checkpoint
        self._conn.execute("PRAGMA foreign_keys=ON")
        # 32 MB of page cache: the FTS5 segment merges of a large first index read their own
        # pages back; measured 20% faster indexing than the default 2 MB.
        self._conn.execute("PRAGMA cache_size=-32768")
        self._embedders: dict[tuple[str, str], StaticEmbedder] = {}  # (folder, fingerprint) -> loaded
        try:
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LibraryError(f"{self.path}: library index from a newer version of the app "
                               f"(schema {version}); update the app or delete the file to re-index")
        if version == SCHEMA_VERSION:
            return
        steps = {0: _SCHEMA + _MIGRATE_2_TO_3, 1: _MIGRATE_1_TO_2 + _MIGRATE_2_TO_3, 2: _MIGRATE_2_TO_3}[version]
        with self._transaction() as conn:
            for statement in steps:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")

    def _transaction(self):
        return _Transaction(self._conn, self.path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "LibraryStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- libraries -----------------------------------------------------------------------

    def add(self, name: str, paths: Iterable[os.PathLike | str]) -> None:
        """Create library `name` (or add to it) with `paths`; they are indexed by `index`."""
        name = _check_name(name)
        resolved = []
        for p in paths:
            path = Path(p).expanduser()
            try:  # follows links: a loop of them (ELOOP) or a folder we may not enter says so
                os.stat(path)
                resolved.append(str(path.resolve()))
            except FileNotFoundError:
                raise LibraryError(f"{path}: no such file or folder") from None
            except (OSError, RuntimeError) as exc:  # RuntimeError: Python 3.11's resolve() on a loop
                why = "a loop of symbolic links" if getattr(exc, "errno", None) == errno.ELOOP \
                    or isinstance(exc, RuntimeError) else (getattr(exc, "strerror", None) or str(exc))
                raise LibraryError(f"{path}: cannot be added: {why}") from None
        if not resolved:
            raise LibraryError("name at least one folder or file for the library")
        with self._transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO libraries (name, created_at) VALUES (?, ?)", (name, time.time()))
            library_id = self._library_id(name)
            conn.executemany("INSERT OR IGNORE INTO roots (library_id, path) VALUES (?, ?)",
                             [(library_id, p) for p in resolved])

    def remove(self, name: str) -> None:
        library_id = self._library_id(name)
        with self._transaction() as conn:
            conn.execute("DELETE FROM chunks WHERE file_id IN (SELECT id FROM files WHERE library_id = ?)",
                         (library_id,))
            conn.execute("DELETE FROM libraries WHERE id = ?", (library_id,))

    def names(self) -> list[str]:
        return [n for (n,) in self._conn.execute("SELECT name FROM libraries ORDER BY name")]

    def list(self) -> list[LibraryInfo]:
        infos = []
        for library_id, name in self._conn.execute("SELECT id, name FROM libraries ORDER BY name").fetchall():
            paths = [p for (p,) in self._conn.execute(
                "SELECT path FROM roots WHERE library_id = ? ORDER BY path", (library_id,))]
            files, chars = self._conn.execute(
                "SELECT count(*), coalesce(sum(chars), 0) FROM files WHERE library_id = ? AND status = ?",
                (library_id, USED)).fetchone()
            (chunks,) = self._conn.execute(
                "SELECT count(*) FROM chunks JOIN files ON files.id = chunks.file_id WHERE files.library_id = ?",
                (library_id,)).fetchone()
            (model,) = self._conn.execute("SELECT embedding_model FROM libraries WHERE id = ?",
                                          (library_id,)).fetchone()
            (vectors,) = self._conn.execute(
                "SELECT coalesce(sum(length(chunk_ids)), 0) / 8 FROM file_vectors WHERE library_id = ?",
                (library_id,)).fetchone()
            infos.append(LibraryInfo(name, paths, files, chunks, chars, model, vectors))
        return infos

    # -- dense retrieval -----------------------------------------------------------------

    def embedder(self, folder: os.PathLike | str) -> StaticEmbedder:
        """The static-embedding model in `folder`, loaded once per store (and again when its
        files change); EmbeddingModelError when the folder is not one."""
        from .embeddings import folder_fingerprint

        key = (str(Path(folder).expanduser().resolve()), folder_fingerprint(Path(folder).expanduser()))
        if key not in self._embedders:
            self._embedders[key] = load_static_embedder(folder)
        return self._embedders[key]

    def set_embedding_model(self, name: str, folder: Optional[os.PathLike | str]) -> None:
        """Rank library `name` with the static-embedding model in `folder` too (checked now:
        EmbeddingModelError), or by words only (None). Vectors of another model are dropped; the
        next `index` computes the missing ones."""
        library_id = self._library_id(name)
        path, fingerprint = "", ""
        if folder is not None:
            embedder = self.embedder(folder)
            path, fingerprint = str(embedder.folder), embedder.fingerprint
        (stored,) = self._conn.execute("SELECT embedding_fingerprint FROM libraries WHERE id = ?",
                                       (library_id,)).fetchone()
        with self._transaction() as conn:
            if stored != fingerprint:
                conn.execute("DELETE FROM file_vectors WHERE library_id = ?", (library_id,))
            conn.execute("UPDATE libraries SET embedding_model = ?, embedding_fingerprint = ? WHERE id = ?",
                         (path, fingerprint, library_id))

    def _library_embedder(self, library_id: int) -> Optional[StaticEmbedder]:
        """The library's embedding model, None for words only; EmbeddingModelError when its folder
        is gone, damaged or changed since the vectors were made (re-index: `set_embedding_model`)."""
        folder, fingerprint = self._conn.execute(
            "SELECT embedding_model, embedding_fingerprint FROM libraries WHERE id = ?", (library_id,)).fetchone()
        if not folder:
            return None
        embedder = self.embedder(folder)
        if embedder.fingerprint != fingerprint:
            raise EmbeddingModelError(f"the embedding model {folder} changed since the library's vectors were "
                                      "made: re-index the library to make them again")
        return embedder

    def _embed(self, name: str, library_id: int, report: IndexReport,
               progress: Optional[Callable[[IndexProgress], None]], cancel: Optional[threading.Event]) -> None:
        (folder,) = self._conn.execute("SELECT embedding_model FROM libraries WHERE id = ?",
                                       (library_id,)).fetchone()
        if not folder:
            return
        try:
            self.set_embedding_model(name, folder)  # a changed model: its old vectors go
            embedder = self.embedder(folder)
        except EmbeddingModelError as exc:  # the words index is complete; say why vectors are not
            report.problems.append((folder, f"{exc}; passages are searched by words only"))
            return

        def embedding_progress(done: int, total: int) -> None:
            if progress is not None:
                progress(IndexProgress(done, total, folder, "embedding"))

        report.embedded, cancelled = embed_missing(self._conn, self._transaction, library_id, embedder,
                                                   embedding_progress, cancel)
        report.cancelled = report.cancelled or cancelled

    def _library_id(self, name: str) -> int:
        row = self._conn.execute("SELECT id FROM libraries WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = ", ".join(self.names()) or "none yet"
            raise LibraryNotFoundError(f"no library named {name!r} (libraries: {known})")
        return row[0]

    def chunk_text_of(self, chunk_id: int) -> str:
        row = self._conn.execute("SELECT text FROM chunks WHERE id = ?", (chunk_id,)).fetchone()
        if row is None:
            raise LookupError(f"no chunk {chunk_id}")
        return row[0]

    # -- indexing ------------------------------------------------------------------------

    def index(self, name: str, progress: Optional[Callable[[IndexProgress], None]] = None,
              cancel: Optional[threading.Event] = None) -> IndexReport:
        """Bring library `name`'s index in line with its files; see the module docstring."""
        started = time.perf_counter()
        library_id = self._library_id(name)
        report = IndexReport()
        roots = [Path(p) for (p,) in self._conn.execute(
            "SELECT path FROM roots WHERE library_id = ? ORDER BY path", (library_id,))]
        present = [r for r in roots if r.exists()]
        (last_run,) = self._conn.execute("SELECT coalesce(max(run), 0) FROM files WHERE library_id = ?",
                                         (library_id,)).fetchone()
        run = last_run + 1
        for missing in sorted(set(roots) - set(present)):
            # An unplugged drive or an unmounted share is not a deletion: keep what was indexed.
            report.problems.append((str(missing), "not found; what was indexed from it is kept "
                                                  "(remove the library, or bring the path back)"))
            with self._transaction() as conn:
                prefix = str(missing).rstrip(os.sep) + os.sep
                conn.execute("UPDATE files SET run = ? WHERE library_id = ? AND "
                             "(path = ? OR substr(path, 1, length(?)) = ?)",
                             (run, library_id, str(missing), prefix, prefix))
        candidates: list[tuple[Path, bool]] = []
        if present:
            walker = Ingestor(present, self.ingest_options)
            candidates = list(walker.candidates())  # paths only: cheap even for 10,000 files
            for folder in walker.report.files:
                report.problems.append((str(folder.path), folder.reason))
        unchanged_ids: list[int] = []
        for done, (path, explicit) in enumerate(candidates, start=1):
            if cancel is not None and cancel.is_set():
                report.cancelled = True
                break
            status, detail = self._index_file(library_id, run, path, explicit, unchanged_ids, report)
            if len(unchanged_ids) >= _UNCHANGED_BATCH:
                self._mark_seen(run, unchanged_ids)
            if progress is not None:
                progress(IndexProgress(done, len(candidates), str(path), status, detail))
        self._mark_seen(run, unchanged_ids)
        if not report.cancelled:
            report.removed = self._drop_unseen(library_id, run)
            self._embed(name, library_id, report, progress, cancel)
        report.seconds = time.perf_counter() - started
        log.info("library %s: %s", name, report.summary())
        return report

    def _index_file(self, library_id: int, run: int, path: Path, explicit: bool,
                    unchanged_ids: list[int], report: IndexReport) -> tuple[str, str]:
        key = str(path)
        row = self._conn.execute("SELECT id, size, mtime_ns, sha256 FROM files WHERE library_id = ? AND path = ?",
                                 (library_id, key)).fetchone()
        try:
            info = os.stat(path)
        except OSError as exc:
            return self._vanished(library_id, row, key, f"{type(exc).__name__}: {exc.strerror or exc}", report)
        if row is not None and row[1] == info.st_size and row[2] == info.st_mtime_ns:
            unchanged_ids.append(row[0])
            report.unchanged += 1
            return "unchanged", ""
        document, file_report = read_file(path, self.ingest_options, explicit)
        assert file_report is not None  # no inode set given, so never "already seen"
        if document is None:
            if file_report.kind == "unreadable":  # vanished or unreadable mid-index
                return self._vanished(library_id, row, key, file_report.reason, report)
            with self._transaction() as conn:
                if row is not None:
                    conn.execute("DELETE FROM chunks WHERE file_id = ?", (row[0],))
                conn.execute(
                    """INSERT INTO files (library_id, path, size, mtime_ns, sha256, format, status, reason, run)
                       VALUES (?, ?, ?, ?, NULL, ?, 'skipped', ?, ?)
                       ON CONFLICT (library_id, path) DO UPDATE SET size = excluded.size,
                       mtime_ns = excluded.mtime_ns, sha256 = NULL, format = excluded.format,
                       status = 'skipped', reason = excluded.reason, chars = 0, run = excluded.run""",
                    (library_id, key, info.st_size, info.st_mtime_ns, file_report.format, file_report.reason, run))
            report.skipped += 1
            return "skipped", file_report.reason
        if row is not None and row[3] == document.sha256:  # touched, same text: keep the chunks
            with self._transaction() as conn:
                conn.execute("UPDATE files SET size = ?, mtime_ns = ?, run = ? WHERE id = ?",
                             (info.st_size, info.st_mtime_ns, run, row[0]))
            report.unchanged += 1
            return "unchanged", "same text"
        chunks = chunk_text(document.text, document.format, self.chunk_options)
        with self._transaction() as conn:
            if row is not None:
                conn.execute("DELETE FROM chunks WHERE file_id = ?", (row[0],))
                conn.execute("DELETE FROM files WHERE id = ?", (row[0],))
            cursor = conn.execute(
                """INSERT INTO files (library_id, path, size, mtime_ns, sha256, format, status, chars, run)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (library_id, key, info.st_size, info.st_mtime_ns, document.sha256, document.format, USED,
                 len(document.text), run))
            file_id = cursor.lastrowid
            conn.executemany(
                'INSERT INTO chunks (file_id, ordinal, heading, start, "end", text, cjk) VALUES (?, ?, ?, ?, ?, ?, ?)',
                [(file_id, i, c.heading_path, c.start, c.end, c.text, cjk_spaced(c.text))
                 for i, c in enumerate(chunks)])
        report.indexed += 1
        report.chunks_added += len(chunks)
        return "indexed", f"{len(chunks)} chunks"

    def _vanished(self, library_id: int, row, key: str, why: str, report: IndexReport) -> tuple[str, str]:
        """A file that could not be read now: reported, and out of the index until it can be."""
        if row is not None:
            with self._transaction() as conn:
                conn.execute("DELETE FROM chunks WHERE file_id = ?", (row[0],))
                conn.execute("DELETE FROM files WHERE id = ?", (row[0],))
        report.problems.append((key, why))
        log.warning("library: %s: %s", key, why)
        return "vanished", why

    def _mark_seen(self, run: int, ids: list[int]) -> None:
        if ids:
            with self._transaction() as conn:
                conn.executemany("UPDATE files SET run = ? WHERE id = ?", [(run, i) for i in ids])
            ids.clear()

    def _drop_unseen(self, library_id: int, run: int) -> int:
        with self._transaction() as conn:
            conn.execute("""DELETE FROM chunks WHERE file_id IN
                            (SELECT id FROM files WHERE library_id = ? AND run != ?)""", (library_id, run))
            return conn.execute("DELETE FROM files WHERE library_id = ? AND run != ?", (library_id, run)).rowcount

    # -- search --------------------------------------------------------------------------

    def search(self, name: str, query: str, limit: int = 8) -> list[SearchHit]:
        """The best chunks of library `name` for `query`, best first."""
        library_id = self._library_id(name)
        rankings = []
        word_scores: dict[int, float] = {}
        for table, match, weights in (("chunk_words", word_query(query), "2.0, 1.0, 1.0"),
                                      ("chunk_trigrams", trigram_query(query), "1.0")):
            if not match:
                rankings.append([])
                continue
            rows = self._conn.execute(
                f"""SELECT chunks.id, bm25({table}, {weights}) AS s FROM {table}
                    JOIN chunks ON chunks.id = {table}.rowid JOIN files ON files.id = chunks.file_id
                    WHERE {table} MATCH ? AND files.library_id = ? ORDER BY s LIMIT ?""",
                (match, library_id, CANDIDATES_PER_INDEX)).fetchall()
            rankings.append([chunk_id for chunk_id, _s in rows])
            if table == "chunk_words":
                word_scores = {chunk_id: -score for chunk_id, score in rows}  # FTS5: lower is better
        if has_cjk(query):
            lexical = reciprocal_rank_fusion(rankings)
        else:
            words = set(rankings[0])
            lexical = [(i, 1.0 / (RRF_K + rank)) for rank, i in enumerate(
                rankings[0] + [t for t in rankings[1] if t not in words], start=1)]
        bm25_ranks = {chunk_id: rank for rank, (chunk_id, _s) in enumerate(lexical, start=1)}
        dense = self._dense_ranking(library_id, query)
        dense_ranks = {chunk_id: rank for rank, chunk_id in enumerate(dense, start=1)}
        if dense:
            fused = reciprocal_rank_fusion([[i for i, _s in lexical], dense])[:limit]
        else:
            fused = lexical[:limit]
        hits = []
        for chunk_id, score in fused:
            path, heading, start, end, text = self._conn.execute(
                """SELECT files.path, chunks.heading, chunks.start, chunks."end", chunks.text
                   FROM chunks JOIN files ON files.id = chunks.file_id WHERE chunks.id = ?""",
                (chunk_id,)).fetchone()
            hits.append(SearchHit(chunk_id, path, heading, start, end, text, score, snippet(text, query),
                                  bm25_ranks.get(chunk_id), dense_ranks.get(chunk_id),
                                  word_scores.get(chunk_id, 0.0)))
        return hits

    def _dense_ranking(self, library_id: int, query: str) -> list[int]:
        """Chunk ids by cosine similarity to `query`, best first; [] for a words-only library.
        A model that cannot be used now (folder gone or changed) is logged and the search goes on
        by words: a chat turn should not fail for it (`library list` and re-indexing say why)."""
        try:
            embedder = self._library_embedder(library_id)
            if embedder is None:
                return []
            return dense_ranking(self._conn, library_id, embedder.search_vectors([query])[0],
                                 CANDIDATES_PER_INDEX)
        except EmbeddingModelError as exc:
            log.warning("library search by words only: %s", exc)
            return []


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (a failed COMMIT too). A full
    disk becomes a LibraryError naming the file: the index stays as it was before the step."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.conn.execute("COMMIT")
                return
        except sqlite3.Error as commit_error:
            exc = commit_error
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            raise LibraryError(f"cannot write the library index {self.path}: {exc} ({DISK_FULL_HINT}; "
                               "the index is as it was before this step)") from exc
        if exc_type is None:
            raise exc


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise LibraryError("a library needs a name")
    if len(name) > 100 or any(ord(ch) < 32 for ch in name):
        raise LibraryError(f"library name {name[:40]!r}... must be at most 100 printable characters")
    return name


def index_paths_into_temporary(paths: Sequence[os.PathLike | str], folder: os.PathLike,
                               progress: Optional[Callable[[IndexProgress], None]] = None,
                               ) -> tuple[LibraryStore, str, IndexReport]:
    """A library of `paths` in a fresh store under `folder` (for `--docs PATH`)."""
    store = LibraryStore(Path(folder) / DB_FILENAME)
    store.add("documents", paths)
    return store, "documents", store.index("documents", progress)


def library_name_for(paths: Sequence[os.PathLike | str]) -> str:
    """A readable, stable library name for exactly this set of files and folders: the first
    one's name and a digest of all of them resolved and sorted ("knowledge_docs (3f9a1c2e)")."""
    import hashlib

    resolved = sorted(str(Path(p).expanduser().resolve()) for p in paths)
    if not resolved:
        raise LibraryError("name at least one folder or file for the library")
    digest = hashlib.sha256("\n".join(resolved).encode("utf-8")).hexdigest()[:8]
    label = Path(resolved[0]).name[:60] or "documents"
    more = f" +{len(resolved) - 1}" if len(resolved) > 1 else ""
    return f"{label}{more} ({digest})"


def library_for_paths(paths: Sequence[os.PathLike | str], store_path: Optional[os.PathLike] = None,
                      progress: Optional[Callable[[IndexProgress], None]] = None,
                      cancel: Optional[threading.Event] = None) -> tuple[str, IndexReport]:
    """(name, report): the named library of exactly `paths` in the user's store, made on first
    use and brought up to date now (only changed files are read). For the Train tab's quiz rows
    "+ documents": one index per document set, kept between runs, instead of a temporary one
    each time."""
    name = library_name_for(paths)
    with LibraryStore(store_path) as store:
        if name not in store.names():
            store.add(name, paths)
        return name, store.index(name, progress, cancel)
