"""The library index: incremental re-indexing, dropping deleted files, ranking, vanishing files."""

from __future__ import annotations

import os
import sqlite3
import threading

import pytest

from chatapp.documents import library as library_module
from chatapp.documents.library import LibraryError, LibraryNotFoundError, LibraryStore
from chatapp.documents.search import reciprocal_rank_fusion, trigram_query, word_query

CORPUS = {
    "company.md": "# Harbour Lantern Company\n\n## Founding\n\nThe Harbour Lantern Company was founded by "
                  "Mira Okonkwo in 1852 in the town of Saltmere.\n\n## Products\n\nThe company made brass "
                  "lanterns for fishing boats and lighthouses.",
    "boats.txt": "Ferries leave Saltmere at dawn. The largest ferry, the Grey Heron, carries forty "
                 "passengers.\n\nBoats are painted blue every spring.",
    "council.md": "# Council\n\nThe town council meets on the first Monday of each month. The council "
                  "has nine members.\n\nVoting is by a show of hands.",
    "港口.md": "# 港口历史\n\n港口在一八五二年开放。\n\n红色灯笼标记北码头，绿色灯笼标记南码头。\n\n"
              "渡轮每天清晨从盐湖镇出发。",
    "code.py": "def light_lantern(pier):\n    return 'red' if pier == 'north' else 'green'\n",
}


def write_corpus(folder, files=CORPUS):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def store(tmp_path):
    with LibraryStore(tmp_path / "index" / "library.sqlite3") as s:
        yield s


@pytest.fixture
def reads(monkeypatch):
    """The paths read_file was called with during a test."""
    seen = []
    real = library_module.read_file

    def recording(path, *args, **kwargs):
        seen.append(path.name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(library_module, "read_file", recording)
    return seen


def consistent(store: LibraryStore) -> None:
    """Every chunk belongs to a file; both FTS indexes agree with the chunks table."""
    conn = store._conn
    assert conn.execute("SELECT count(*) FROM chunks WHERE file_id NOT IN (SELECT id FROM files)").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM files WHERE status = 'skipped' AND id IN "
                        "(SELECT file_id FROM chunks)").fetchone() == (0,)
    conn.execute("INSERT INTO chunk_words (chunk_words, rank) VALUES ('integrity-check', 1)")
    conn.execute("INSERT INTO chunk_trigrams (chunk_trigrams, rank) VALUES ('integrity-check', 1)")


def test_index_then_reindex_reads_only_changed_files(tmp_path, store, reads):
    docs = write_corpus(tmp_path / "docs")
    store.add("town", [docs])
    first = store.index("town")
    assert first.indexed == 5 and first.unchanged == 0 and first.removed == 0
    assert sorted(reads) == sorted(CORPUS)
    consistent(store)

    reads.clear()
    second = store.index("town")
    assert reads == []  # size and mtime unchanged: nothing opened
    assert (second.indexed, second.unchanged) == (0, 5)

    (docs / "boats.txt").write_text("Ferries now leave at noon.", encoding="utf-8")
    stamp = (docs / "council.md").stat()
    os.utime(docs / "council.md", ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 5_000_000_000))  # touched only
    reads.clear()
    third = store.index("town")
    assert sorted(reads) == ["boats.txt", "council.md"]
    assert (third.indexed, third.unchanged) == (1, 4)  # council.md: same text, chunks kept
    hits = store.search("town", "when do ferries leave")
    assert hits[0].path.endswith("boats.txt") and "noon" in hits[0].text
    assert not any("dawn" in h.text and h.path.endswith("boats.txt") for h in hits)
    consistent(store)


def test_deleted_files_are_dropped(tmp_path, store):
    docs = write_corpus(tmp_path / "docs")
    store.add("town", [docs])
    store.index("town")
    (docs / "council.md").unlink()
    report = store.index("town")
    assert report.removed == 1
    assert not any(h.path.endswith("council.md") for h in store.search("town", "council members monday"))
    assert store.list()[0].files == 4
    consistent(store)


def test_retrieval_ranks_the_answer_first_english_and_chinese(tmp_path, store):
    store.add("town", [write_corpus(tmp_path / "docs")])
    store.index("town")
    cases = {
        "Who founded the Harbour Lantern Company?": "Mira Okonkwo",
        "How many passengers does the largest ferry carry?": "forty",
        "How many members has the council?": "nine members",
        "港口是哪一年开放的？": "一八五二年",
        "北码头的灯笼是什么颜色？": "红色灯笼标记北码头",
        "lantern": "Harbour Lantern",  # partial word: "lanterns" and "light_lantern" also match
    }
    for question, answer in cases.items():
        hits = store.search("town", question)
        assert hits, question
        assert answer in hits[0].text, (question, [h.text[:60] for h in hits])
    top = store.search("town", "Who founded the company?")[0]
    assert top.heading == "Harbour Lantern Company > Founding"
    source = (tmp_path / "docs" / "company.md").read_text(encoding="utf-8")
    assert source[top.start:top.end] == top.text  # the span points into the cleaned file text


def test_partial_words_match_through_trigrams(tmp_path, store):
    store.add("town", [write_corpus(tmp_path / "docs")])
    store.index("town")
    hits = store.search("town", "lighthous")  # no such word: only the trigram index finds it
    assert hits and "lighthouses" in hits[0].text


def test_vanishing_file_mid_index_is_reported_and_index_stays_consistent(tmp_path, store, monkeypatch):
    docs = write_corpus(tmp_path / "docs")
    store.add("town", [docs])
    store.index("town")
    (docs / "boats.txt").write_text("Boats changed.", encoding="utf-8")
    (docs / "company.md").write_text("# Changed\n\nThe company changed hands.", encoding="utf-8")
    real = library_module.read_file

    def vanish_first(path, *args, **kwargs):
        if path.name == "boats.txt":
            path.unlink()  # gone between the stat and the read
        return real(path, *args, **kwargs)

    monkeypatch.setattr(library_module, "read_file", vanish_first)
    report = store.index("town")
    assert [p for p, _ in report.problems] == [str(docs / "boats.txt")]
    assert "FileNotFoundError" in report.problems[0][1]
    assert report.indexed == 1  # company.md, after the vanished file
    paths = {p for (p,) in store._conn.execute("SELECT path FROM files")}
    assert str(docs / "boats.txt") not in paths
    assert "changed hands" in store.search("town", "company hands")[0].text
    consistent(store)


def test_failure_inside_a_file_rolls_back_that_file_only(tmp_path, store, monkeypatch):
    docs = write_corpus(tmp_path / "docs")
    store.add("town", [docs])
    store.index("town")
    (docs / "council.md").write_text("# Council\n\nThe council has twelve members now.", encoding="utf-8")

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(library_module, "cjk_spaced", broken)
    with pytest.raises(sqlite3.OperationalError):
        store.index("town")
    hits = store.search("town", "council members")
    assert "nine members" in hits[0].text  # the old chunks are still there, whole
    consistent(store)


def test_progress_and_cancel(tmp_path, store):
    store.add("town", [write_corpus(tmp_path / "docs")])
    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.done == 2:
            cancel.set()

    report = store.index("town", progress=progress, cancel=cancel)
    assert report.cancelled and report.indexed == 2
    assert [p.done for p in seen] == [1, 2] and all(p.total == 5 for p in seen)
    assert report.removed == 0
    consistent(store)
    assert store.index("town").indexed == 3  # the rest, next time


def test_skipped_files_are_remembered_and_not_read_again(tmp_path, store, reads):
    docs = write_corpus(tmp_path / "docs", {"a.md": "Some real text here.", "empty.txt": "  ---  ",
                                            "image.png": "not really"})
    store.add("x", [docs])
    report = store.index("x")
    assert (report.indexed, report.skipped) == (1, 2)
    reads.clear()
    assert store.index("x").unchanged == 3 and reads == []


def test_libraries_add_list_remove(tmp_path, store):
    docs = write_corpus(tmp_path / "docs")
    store.add("town", [docs])
    store.add("code", [docs / "code.py"])
    store.index("town")
    store.index("code")
    infos = {i.name: i for i in store.list()}
    assert infos["town"].files == 5 and infos["code"].files == 1
    assert infos["code"].paths == [str((docs / "code.py").resolve())]
    assert all(h.path.endswith("code.py") for h in store.search("code", "lantern pier"))
    store.remove("town")
    assert store.names() == ["code"]
    assert store._conn.execute("SELECT count(*) FROM chunks").fetchone()[0] == infos["code"].chunks
    with pytest.raises(LibraryNotFoundError, match="no library named 'town'"):
        store.search("town", "x")
    with pytest.raises(LibraryError, match="no such file"):
        store.add("y", [tmp_path / "missing"])
    with pytest.raises(LibraryError, match="needs a name"):
        store.add("  ", [docs])
    consistent(store)


def test_fts_syntax_in_a_query_is_just_words(tmp_path, store):
    store.add("town", [write_corpus(tmp_path / "docs")])
    store.index("town")
    for query in ('"unbalanced', "NEAR(a b)", "council AND OR NOT", "col:umn *", "()", ""):
        store.search("town", query)  # never an FTS5 syntax error
    assert "council" in store.search("town", "council AND OR NOT")[0].text.lower()


def test_query_building_and_fusion():
    assert word_query("Who founded the company?") == '"founded" OR "company"'
    assert word_query("the") == '"the"'
    assert word_query("港口开放") == '"港 口" OR "口 开" OR "开 放"'
    assert trigram_query("founded a company") == '"founded" OR "company"'
    assert trigram_query("港口开放") == '"港口开" OR "口开放"'
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1]])
    assert [i for i, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_indexing_holds_one_file_at_a_time(tmp_path, store):
    """Python memory while indexing 2 MB stays near one file's worth, not the corpus."""
    import tracemalloc

    docs = tmp_path / "big"
    docs.mkdir()
    for i in range(40):
        words = " ".join(f"w{(i * 7919 + j) % 5000}" for j in range(9000))  # ~50 KB each
        (docs / f"f{i:02d}.txt").write_text(words, encoding="utf-8")
    store.add("big", [docs])
    tracemalloc.start()
    try:
        report = store.index("big")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.indexed == 40
    assert peak < 1_000_000, peak  # the corpus is 2 MB; one file with its chunks is ~0.2 MB


def test_a_missing_library_path_keeps_its_files(tmp_path, store):
    docs = write_corpus(tmp_path / "drive" / "docs")
    other = write_corpus(tmp_path / "other", {"x.md": "Another library path with text."})
    store.add("town", [docs, other])
    store.index("town")
    (tmp_path / "drive").rename(tmp_path / "unplugged")
    report = store.index("town")
    assert report.removed == 0 and report.problems[0][0] == str(docs.resolve())
    assert "kept" in report.problems[0][1]
    assert store.list()[0].files == 6
    assert "Mira Okonkwo" in store.search("town", "who founded the company")[0].text
    (tmp_path / "other" / "x.md").unlink()
    assert store.index("town").removed == 1  # deletions under a present path still count


def test_an_index_from_a_newer_app_is_refused_untouched(tmp_path):
    path = tmp_path / "library.sqlite3"
    LibraryStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(LibraryError, match="newer version of the app"):
        LibraryStore(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 99
    conn.close()


def test_an_index_from_schema_1_is_migrated_to_stemmed_words(tmp_path):
    """Schema 1 indexed words unstemmed; opening it re-makes the word index with Porter stemming
    from the chunks already there (no file is read again), so "founded" finds "founding"."""
    path = tmp_path / "library.sqlite3"
    docs = write_corpus(tmp_path / "docs", {"a.md": "# History\n\nThe founding of the mill in Brekke.",
                                            "b.md": "# Boats\n\nBoats are painted blue."})
    with LibraryStore(path) as store:
        store.add("notes", [docs])
        store.index("notes")
    conn = sqlite3.connect(path)
    conn.executescript("""
        DROP TRIGGER chunks_delete_vectors;
        DROP TRIGGER chunks_insert_vectors;
        DROP TABLE file_vectors;
        ALTER TABLE libraries DROP COLUMN embedding_model;
        ALTER TABLE libraries DROP COLUMN embedding_fingerprint;
        DROP TABLE chunk_words;
        CREATE VIRTUAL TABLE chunk_words USING fts5(heading, text, cjk, content='chunks',
            content_rowid='id', tokenize='unicode61 remove_diacritics 2');
        INSERT INTO chunk_words (chunk_words) VALUES ('rebuild');
        PRAGMA user_version = 1;""")
    assert conn.execute("SELECT count(*) FROM chunk_words WHERE chunk_words MATCH 'founded'").fetchone() == (0,)
    conn.close()
    with LibraryStore(path) as store:
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == library_module.SCHEMA_VERSION == 3
        consistent(store)
        words = store._conn.execute("SELECT rowid FROM chunk_words WHERE chunk_words MATCH 'founded'").fetchall()
        assert len(words) == 1
        hits = store.search("notes", "When was the mill founded?", limit=2)
        assert hits[0].path.endswith("a.md")


def test_library_for_paths_is_made_once_and_reindexed_incrementally(tmp_path, reads):
    from chatapp.documents.library import library_for_paths, library_name_for

    docs = write_corpus(tmp_path / "docs")
    db = tmp_path / "index" / "library.sqlite3"
    name, report = library_for_paths([docs], db)
    assert name == library_name_for([docs]) and name.startswith("docs (") and len(name) == len("docs (") + 9
    assert library_name_for([docs / "." ]) == name  # the same folder, however written
    assert library_name_for([docs, tmp_path]) != name
    first_reads = len(reads)
    assert first_reads == len(CORPUS)
    again, _ = library_for_paths([docs], db)
    assert again == name and len(reads) == first_reads  # unchanged: nothing read again
    with LibraryStore(db) as store:
        assert store.names() == [name]
        assert store.search(name, "Who founded the lantern company?")[0].path.endswith("company.md")


def test_english_word_matches_rank_before_partial_word_matches(tmp_path, store):
    """A whole-word (stemmed) match ranks above chunks that only share parts of words; those
    still follow, so a partial word alone finds something."""
    docs = write_corpus(tmp_path / "docs", {
        "mill.md": "The mill was founded by Edda.",
        "lenses.md": "Lensmakers polished glass for lensmakers' lenses and lensholders.",
    })
    store.add("notes", [docs])
    store.index("notes")
    hits = store.search("notes", "Who founded the lens workshop?", limit=5)
    # "lens" is only inside longer words of lenses.md: a trigram match, ranked after the word match
    assert [h.path.rsplit("/", 1)[-1] for h in hits] == ["mill.md", "lenses.md"]


def test_hits_carry_their_word_score_best_first(tmp_path, store):
    store.add("town", [write_corpus(tmp_path / "docs")])
    store.index("town")
    hits = store.search("town", "Who founded the Harbour Lantern Company?")
    word_hits = [h for h in hits if h.bm25 > 0]
    assert word_hits and hits[0].bm25 > 0
    assert [h.bm25 for h in word_hits] == sorted((h.bm25 for h in word_hits), reverse=True)
    partial = store.search("town", "lighthous")  # trigrams only: no word score
    assert partial and all(h.bm25 == 0.0 for h in partial)
