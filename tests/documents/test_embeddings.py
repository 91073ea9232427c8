"""Dense retrieval: our static-embedding vectors against model2vec's own, wrong folders refused
clearly, hybrid ranking finding a paraphrase, vectors only for changed chunks, schema 2 -> 3."""

from __future__ import annotations

import os
import re
import sqlite3
import threading

import numpy as np
import pytest
from helpers.static_embeddings import synonym_model, write_static_model

from chatapp.documents import embeddings as embeddings_module
from chatapp.documents import library as library_module
from chatapp.documents.embeddings import EmbeddingModelError, dense_ranking, load_static_embedder
from chatapp.documents.library import LibraryStore

WORDS = ["the", "harbour", "lantern", "company", "was", "founded", "by", "mira", "in", "1852", "ferries",
         "leave", "at", "dawn", "council", "meets", "on", "monday", "boats", "blue", "."]
TEXTS = ["The harbour lantern company was founded by Mira in 1852.", "Ferries leave at dawn",
         "words the model never saw", "", "the the the blue boats . council"]

CORPUS = {
    "founding.md": "# History\n\nThe Harbour Lantern Company was founded by Mira Okonkwo in 1852.",
    "boats.txt": "Ferries leave Saltmere at dawn. The largest ferry carries forty passengers.",
    "council.md": "# Council\n\nThe town council meets on the first Monday of each month.",
}
SYNONYMS = [("founded", "established", "started"), ("company", "firm", "business")]


def corpus_words() -> list[str]:
    return sorted({w for text in CORPUS.values() for w in re.findall(r"\w+", text.lower())})


@pytest.fixture
def model(tmp_path):
    return synonym_model(tmp_path / "static-model", SYNONYMS, corpus_words())


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in CORPUS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def store(tmp_path):
    with LibraryStore(tmp_path / "index" / "library.sqlite3") as s:
        yield s


# -- our vectors are model2vec's -------------------------------------------------------------

@pytest.mark.parametrize("variant", ["normalized", "raw", "weights", "mapping", "short"])
def test_vectors_equal_model2vec_static_model_encode(tmp_path, variant):
    model2vec = pytest.importorskip("model2vec")  # test-only reference (pyproject's test extra)
    rng = np.random.default_rng(1)
    vocab = len(WORDS) + 1
    vectors = rng.standard_normal((vocab, 12)).astype(np.float32)
    kwargs: dict = {"normalize": variant != "raw"}
    if variant == "weights":
        kwargs["weights"] = rng.uniform(0.1, 2.0, vocab).astype(np.float32)
    if variant == "mapping":  # vocabulary quantization: tokens share 5 rows
        kwargs["mapping"] = rng.integers(0, 5, vocab).astype(np.int64)
        vectors = vectors[:5]
    if variant == "short":  # truncation: at most 3 tokens, cut characters too
        kwargs["config_extra"] = {"max_length": 3}
    folder = write_static_model(tmp_path / variant, WORDS, vectors, **kwargs)
    reference = model2vec.StaticModel.from_pretrained(str(folder)).encode(TEXTS)
    ours = load_static_embedder(folder).encode(TEXTS)
    assert ours.shape == (len(TEXTS), 12) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, rtol=1e-6, atol=1e-6)
    assert np.abs(ours).sum() > 0 and not ours[3].any()  # the empty text: zeros in both


def test_search_vectors_are_unit_length_even_when_the_config_does_not_normalise(tmp_path):
    vectors = np.random.default_rng(2).standard_normal((len(WORDS) + 1, 8)).astype(np.float32)
    embedder = load_static_embedder(write_static_model(tmp_path / "m", WORDS, vectors, normalize=False))
    assert embedder.normalize is False and embedder.dim == 8
    unit = embedder.search_vectors(TEXTS[:2])
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), [1.0, 1.0], rtol=1e-6)
    raw = embedder.encode(TEXTS[:2])
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-6)


# -- a wrong folder: one clear error ----------------------------------------------------------

def _good(tmp_path, name="m", **kwargs):
    vectors = np.ones((len(WORDS) + 1, 4), dtype=np.float32)
    return write_static_model(tmp_path / name, WORDS, vectors, **kwargs)


def test_missing_embeddings_tensor_is_named(tmp_path):
    folder = _good(tmp_path, tensor_name="embedding.weight")
    with pytest.raises(EmbeddingModelError, match=r"no 'embeddings' tensor \(it has: embedding.weight\)"):
        load_static_embedder(folder)


def test_dimension_mismatch_is_named(tmp_path):
    folder = _good(tmp_path, config_extra={"hidden_dim": 256})
    with pytest.raises(EmbeddingModelError, match="dimension mismatch: config.json says hidden_dim 256, "
                                                  "'embeddings' has 4"):
        load_static_embedder(folder)
    too_few = write_static_model(tmp_path / "few", WORDS, np.ones((3, 4), dtype=np.float32))
    with pytest.raises(EmbeddingModelError, match=f"the tokenizer has {len(WORDS) + 1} tokens, 'embeddings' only 3"):
        load_static_embedder(too_few)


def test_a_mapping_outside_the_vectors_is_named(tmp_path):
    vocab = len(WORDS) + 1
    for bad in (np.full(vocab, 5, dtype=np.int64), np.full(vocab, -1, dtype=np.int64)):
        folder = write_static_model(tmp_path / f"m{bad[0]}", WORDS, np.ones((5, 4), dtype=np.float32), mapping=bad)
        with pytest.raises(EmbeddingModelError, match=f"'mapping' does not map the tokenizer's {vocab} tokens "
                                                      "to the 5 vectors"):
            load_static_embedder(folder)


def test_bad_tokenizer_and_missing_files_are_named(tmp_path):
    folder = _good(tmp_path)
    (folder / "tokenizer.json").write_text('{"model": "nonsense"}', encoding="utf-8")
    with pytest.raises(EmbeddingModelError, match="tokenizer.json: not a readable tokenizer"):
        load_static_embedder(folder)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(EmbeddingModelError, match="tokenizer.json is missing"):
        load_static_embedder(folder)
    with pytest.raises(EmbeddingModelError, match="no such folder"):
        load_static_embedder(tmp_path / "nowhere")
    (folder / "tokenizer.json").write_text("{}", encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(EmbeddingModelError, match="model.safetensors: not a readable safetensors file"):
        load_static_embedder(folder)


def test_a_wrong_folder_leaves_the_library_as_it_was(store, docs, tmp_path):
    store.add("notes", [docs])
    store.index("notes")
    with pytest.raises(EmbeddingModelError, match="config.json is missing"):
        store.set_embedding_model("notes", tmp_path)
    assert store.list()[0].embedding_model == ""


# -- hybrid ranking ---------------------------------------------------------------------------

def test_a_paraphrase_with_no_shared_word_is_found_only_with_dense_vectors(store, docs, model):
    store.add("notes", [docs])
    store.index("notes")
    query = "Who established the firm?"
    assert store.search("notes", query) == []  # no word in common: BM25 finds nothing
    store.set_embedding_model("notes", model)
    report = store.index("notes")
    assert report.embedded == 3 and report.indexed == 0 and "3 passages embedded" in report.summary()
    hits = store.search("notes", query, limit=3)
    assert hits[0].path.endswith("founding.md")
    assert hits[0].dense_rank == 1 and hits[0].bm25_rank is None
    assert hits[0].to_dict()["dense_rank"] == 1 and hits[0].score == pytest.approx(1 / 61)
    # a word query still ranks by words too: both ranks, fused
    both = store.search("notes", "ferries at dawn", limit=3)
    assert both[0].path.endswith("boats.txt") and both[0].bm25_rank == 1 and both[0].dense_rank == 1
    assert both[0].score == pytest.approx(2 / 61)
    info = store.list()[0]
    assert info.embedding_model == str(model.resolve()) and info.vectors == info.chunks == 3


def test_reindexing_embeds_only_the_changed_files_chunks(store, docs, model, monkeypatch):
    store.add("notes", [docs])
    store.set_embedding_model("notes", model)
    store.index("notes")
    vectors_before = dict(store._conn.execute("SELECT chunk_ids, vectors FROM file_vectors").fetchall())
    embedded_texts: list[str] = []
    embedder = store.embedder(model)
    real = type(embedder).search_vectors

    def recording(self, texts):
        embedded_texts.extend(texts)
        return real(self, texts)

    monkeypatch.setattr(type(embedder), "search_vectors", recording)
    (docs / "boats.txt").write_text("Boats are painted blue every spring.", encoding="utf-8")
    report = store.index("notes")
    assert report.indexed == 1 and report.unchanged == 2 and report.embedded == 1
    assert embedded_texts == ["Boats are painted blue every spring."]
    after = dict(store._conn.execute("SELECT chunk_ids, vectors FROM file_vectors").fetchall())
    kept = set(before_id for before_id in vectors_before if before_id in after)
    assert len(after) == 3 and len(kept) == 2 and all(after[i] == vectors_before[i] for i in kept)
    (docs / "council.md").unlink()  # a deleted file's vectors go with its chunks
    store.index("notes")
    assert store._conn.execute("SELECT count(*) FROM file_vectors").fetchone() == (2,)
    embedded_texts.clear()
    assert store.index("notes").embedded == 0 and embedded_texts == []


def test_vectors_follow_their_files_chunks(store, docs, model):
    """Touched with the same text: the vectors stay. Emptied (skipped, its chunks gone): its
    vectors go too (the chunk triggers), and come back with new text."""
    store.add("notes", [docs])
    store.set_embedding_model("notes", model)
    store.index("notes")
    rows = lambda: dict(store._conn.execute(  # noqa: E731
        "SELECT files.path, file_vectors.vectors FROM file_vectors JOIN files ON files.id = file_vectors.file_id"
    ).fetchall())
    before = rows()
    founding = docs / "founding.md"
    founding.write_text(founding.read_text(encoding="utf-8"), encoding="utf-8")
    os.utime(founding, ns=(founding.stat().st_atime_ns, founding.stat().st_mtime_ns + 10**9))
    report = store.index("notes")
    assert report.embedded == 0 and rows() == before
    (docs / "council.md").write_text("", encoding="utf-8")
    report = store.index("notes")
    assert report.skipped == 1 and report.embedded == 0
    assert sorted(rows()) == sorted(p for p in before if not p.endswith("council.md"))
    (docs / "council.md").write_text("The council meets on Monday.", encoding="utf-8")
    assert store.index("notes").embedded == 1 and len(rows()) == 3
    assert store.list()[0].vectors == 3


def test_embedding_runs_in_bounded_batches_with_progress_and_cancel(store, docs, model, monkeypatch):
    for i in range(7):
        (docs / f"extra{i}.txt").write_text(f"Note {i} about the lantern company.", encoding="utf-8")
    store.add("notes", [docs])
    store.set_embedding_model("notes", model)
    monkeypatch.setattr(library_module, "embed_missing",
                        lambda *a, **k: embeddings_module.embed_missing(*a, **k, batch=4))
    sizes: list[int] = []
    real = type(store.embedder(model)).search_vectors
    monkeypatch.setattr(type(store.embedder(model)), "search_vectors",
                        lambda self, texts: sizes.append(len(texts)) or real(self, texts))
    cancel = threading.Event()
    seen = []

    def progress(p):
        if p.status == "embedding":
            seen.append((p.done, p.total))
            cancel.set()  # after the first batch

    report = store.index("notes", progress=progress, cancel=cancel)
    assert report.cancelled and report.embedded == 4 and seen == [(4, 10)] and sizes == [4]
    report = store.index("notes", progress=progress)
    assert not report.cancelled and report.embedded == 6 and sizes == [4, 4, 2]
    assert seen[1:] == [(4, 6), (6, 6)]


def test_dense_scan_in_small_batches_ranks_as_one_batch(store, docs, model):
    store.add("notes", [docs])
    store.set_embedding_model("notes", model)
    store.index("notes")
    query = store.embedder(model).search_vectors(["the firm was established"])[0]
    library_id = store._library_id("notes")
    whole = dense_ranking(store._conn, library_id, query, depth=3)
    assert len(whole) == 3
    assert dense_ranking(store._conn, library_id, query, depth=3, batch=1) == whole
    assert dense_ranking(store._conn, library_id, query, depth=1, batch=2) == whole[:1]


def test_a_changed_or_vanished_model_falls_back_to_words_and_reindex_says_why(store, docs, model, tmp_path):
    store.add("notes", [docs])
    store.set_embedding_model("notes", model)
    store.index("notes")
    (model / "tokenizer.json").unlink()
    hits = store.search("notes", "ferries at dawn")
    assert hits[0].path.endswith("boats.txt") and hits[0].dense_rank is None
    report = store.index("notes")
    assert any("tokenizer.json is missing" in why and "searched by words only" in why
               for _path, why in report.problems)


def test_removing_the_model_drops_its_vectors(store, docs, model):
    store.add("notes", [docs])
    store.set_embedding_model("notes", model)
    store.index("notes")
    store.set_embedding_model("notes", None)
    assert store._conn.execute("SELECT count(*) FROM file_vectors").fetchone() == (0,)
    assert store.search("notes", "Who established the firm?") == []


# -- schema 2 -> 3 ----------------------------------------------------------------------------

def test_a_schema_2_library_is_migrated_and_kept(tmp_path, docs, model):
    path = tmp_path / "library.sqlite3"
    with LibraryStore(path) as store:
        store.add("notes", [docs])
        store.index("notes")
    conn = sqlite3.connect(path)  # back to schema 2 as the previous version wrote it
    conn.executescript("""
        DROP TRIGGER chunks_delete_vectors;
        DROP TRIGGER chunks_insert_vectors;
        DROP TABLE file_vectors;
        ALTER TABLE libraries DROP COLUMN embedding_model;
        ALTER TABLE libraries DROP COLUMN embedding_fingerprint;
        PRAGMA user_version = 2;""")
    conn.close()
    with LibraryStore(path) as store:
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == library_module.SCHEMA_VERSION == 3
        info = store.list()[0]
        assert (info.name, info.files, info.chunks, info.embedding_model, info.vectors) == ("notes", 3, 3, "", 0)
        assert store.search("notes", "ferries at dawn")[0].path.endswith("boats.txt")
        report = store.index("notes")
        assert report.unchanged == 3 and report.indexed == 0  # nothing read again
        store.set_embedding_model("notes", model)
        assert store.index("notes").embedded == 3
        assert store.search("notes", "Who established the firm?")[0].path.endswith("founding.md")
