"""Reranking by the model (UPR) and the draft's words in the search (HyDE), on fake models."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from chatapp.documents.library import LibraryStore, SearchHit
from chatapp.engine import rerank
from chatapp.engine.rerank import question_pieces, question_scores, rerank_order, scoring_ids, write_draft
from chatapp.engine.retrieval import RetrievalOptions, fuse_hits, rank_turn

from mock_models import EOS, ByteTokenizer


class _Attention(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.kv_cache = object()  # stands for the engine's cache: must be set aside and put back


class _Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = _Attention()


class InductionModel(torch.nn.Module):
    """A byte "model" that predicts the byte which followed the current byte's last earlier
    occurrence (an induction head): a question is likeliest after a passage that holds its words.
    Records the (batch, tokens) of each call and checks that no cache is in use."""

    def __init__(self, vocab: int = 257, margin: float = 8.0) -> None:
        super().__init__()
        self.config = SimpleNamespace(max_seq_len=4096, vocab_size=vocab)
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.layers = torch.nn.ModuleList([_Block(), _Block()])
        self.cache_len = 4096
        self.margin = margin
        self.calls: list[tuple[int, int]] = []
        self.logit_rows: list = []  # rows of logits asked for per call (None: every position)

    def forward(self, tokens, input_pos=None, last_only=False, logits_at=None):
        assert self.cache_len == 0 and all(b.attn.kv_cache is None for b in self.layers)
        self.calls.append(tuple(tokens.shape))
        self.logit_rows.append(None if logits_at is None else int(logits_at.sum()))
        batch, seq = tokens.shape
        logits = torch.zeros(batch, seq, self.config.vocab_size)  # (B, T, vocab)
        for row in range(batch):
            ids = tokens[row].tolist()
            follower: dict[int, int] = {}  # byte -> the byte after its last occurrence so far
            for t, token in enumerate(ids):
                if t >= 1:
                    follower[ids[t - 1]] = token
                if token in follower:  # set by an earlier occurrence only: causal
                    logits[row, t, follower[token]] = self.margin
        return logits if logits_at is None else logits[logits_at]  # (N, vocab) as Transformer.forward


def fake_engine(model=None, draft: str = ""):
    tokenizer = ByteTokenizer()
    engine = SimpleNamespace(tokenizer=tokenizer, model=model or InductionModel(), prompts=[])

    def generate(ids, settings):
        engine.prompts.append((list(ids), settings))
        return SimpleNamespace(text=draft[:settings.max_new_tokens])  # one byte a token

    engine.generate = generate
    return engine


PASSAGES = [
    "The boathouse museum opened in 2010 and shows the first grinding wheel.",
    "Edda led the firm until 1981. She was succeeded as director by Petra Lindqvist.",
    "The factory in Brekke had a glass roof so inspectors could check lenses.",
]
QUESTION = "Who succeeded Edda as director?"


def test_the_question_is_likeliest_after_the_passage_that_answers_it():
    engine = fake_engine()
    caches = [b.attn.kv_cache for b in engine.model.layers]
    scores, cost = question_scores(engine, QUESTION, PASSAGES)
    assert rerank_order(scores)[0] == 1
    assert scores[1] > max(scores[0], scores[2])
    # one batched pass, the engine's cache put back as it was
    assert engine.model.calls == [(3, max(len(scoring_ids(engine.tokenizer, p, QUESTION)[0]) for p in PASSAGES))]
    assert [b.attn.kv_cache for b in engine.model.layers] == caches and engine.model.cache_len == 4096
    assert cost.candidates == 3 and cost.tokens == 3 * engine.model.calls[0][1]
    # logits only where a question's token is predicted, not at every position of every passage
    assert engine.model.logit_rows == [3 * len(engine.tokenizer.encode(QUESTION))]


def test_batches_are_bounded_and_give_the_same_scores():
    whole, _ = question_scores(fake_engine(), QUESTION, PASSAGES * 3)
    engine = fake_engine()
    longest = max(len(scoring_ids(engine.tokenizer, p, QUESTION)[0]) for p in PASSAGES)
    pieces, cost = question_scores(engine, QUESTION, PASSAGES * 3, max_batch_tokens=2 * longest)
    assert pieces == pytest.approx(whole, abs=1e-6)
    assert all(batch * seq <= 2 * longest for batch, seq in engine.model.calls)
    assert sum(batch for batch, _ in engine.model.calls) == 9
    assert cost.tokens <= 9 * longest


def test_a_long_passage_is_cut_for_scoring_only():
    tokenizer = ByteTokenizer()
    ids, start = scoring_ids(tokenizer, "x" * 5000, QUESTION)
    assert start <= rerank.MAX_PASSAGE_TOKENS + len(tokenizer.encode(rerank.QUESTION_LABEL))
    assert tokenizer.decode(ids[start:]) == QUESTION


def test_ties_keep_the_search_order():
    assert rerank_order([1.0, 2.0, 2.0, 0.5]) == [1, 2, 0, 3]


def test_the_draft_is_greedy_bounded_and_asked_as_a_chat_turn():
    engine = fake_engine(draft="Petra Lindqvist took over in 1981 " * 10)
    text, seconds = write_draft(engine, "Who took over?", 12)
    prompt_ids, settings = engine.prompts[0]
    assert text == "Petra Lindqv" and seconds >= 0
    assert settings.max_new_tokens == 12 and settings.temperature == 0.0
    assert "[user]Who took over?" in engine.tokenizer.decode(prompt_ids)


# -- rank_turn: the search, the draft and the reranking together --------------------------------

@pytest.fixture
def library(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, text in enumerate(PASSAGES + [
            "Edda Halvorsen founded the company in 1958 and took her brother as a partner.",
            "The head of the company today is Mikkel Dahl; Edda Halvorsen's granddaughter owns it."]):
        (folder / f"{i}.txt").write_text(text + "\n", encoding="utf-8")
    store = LibraryStore(tmp_path / "library.sqlite3")
    store.add("lib", [folder])
    store.index("lib")
    yield SimpleNamespace(search=lambda query, limit: store.search("lib", query, limit=limit))
    store.close()


def _texts(hits):
    return [h.text.split(".")[0] for h in hits]


def test_words_alone_miss_the_successor_and_the_draft_finds_it(library):
    messages = [{"role": "user", "content": "Who took over from Edda Halvorsen as head of the company?"}]
    plain = rank_turn(None, library, messages, RetrievalOptions(passages=2))
    assert not any("succeeded" in h.text for h in plain.hits)  # no shared word: the words miss it

    drafted = rank_turn(fake_engine(draft="She was succeeded by her director."), library, messages,
                        RetrievalOptions(passages=2, draft_tokens=40))
    assert drafted.draft == "She was succeeded by her director."
    assert any("succeeded" in h.text for h in drafted.hits)
    again = rank_turn(fake_engine(draft="She was succeeded by her director."), library, messages,
                      RetrievalOptions(passages=2, draft_tokens=40))
    assert [h.chunk_id for h in again.hits] == [h.chunk_id for h in drafted.hits]  # deterministic


class OrderedRetriever:
    """The search's ranking, fixed."""

    def __init__(self, texts):
        self.hits = [SearchHit(i, f"/{i}.txt", "", 0, len(t), t, 1.0 / (i + 1)) for i, t in enumerate(texts)]

    def search(self, query, limit):
        return self.hits[:limit]


def test_reranking_puts_the_answers_passage_first():
    """The answer's passage second by words, first by the model: first after fusing the two."""
    retriever = OrderedRetriever([PASSAGES[2], PASSAGES[1], PASSAGES[0], "8/10 + 7/10: 1958, 1960; 4,000 kr."])
    messages = [{"role": "user", "content": QUESTION}]
    plain = rank_turn(fake_engine(), retriever, messages, RetrievalOptions(passages=2))
    assert [h.chunk_id for h in plain.hits] == [0, 1]
    engine = fake_engine()
    reranked = rank_turn(engine, retriever, messages, RetrievalOptions(passages=2, rerank_candidates=4))
    model_order = rerank_order(question_scores(fake_engine(), QUESTION, [h.text for h in retriever.hits])[0])
    assert model_order[0] == 1 and model_order.index(0) >= 2  # the model: the answer first, the first hit low
    assert [h.chunk_id for h in reranked.hits] == [1, 0]  # fused: 1/62 + 1/61 beats 1/61 + 1/63 and lower
    assert engine.model.calls[0][0] == 4  # the four candidates in one batch
    again = rank_turn(fake_engine(), retriever, messages, RetrievalOptions(passages=2, rerank_candidates=4))
    assert [h.chunk_id for h in again.hits] == [h.chunk_id for h in reranked.hits]  # deterministic
    assert reranked.rerank_seconds >= 0


def test_fusion_keeps_the_plain_search_first_on_ties():
    def hit(i):
        return SearchHit(i, f"/{i}.txt", "", 0, 1, str(i), 0.0)

    plain, drafted = [hit(1), hit(2), hit(3)], [hit(9), hit(2), hit(8)]
    assert [h.chunk_id for h in fuse_hits([plain, drafted])] == [2, 1, 9, 3, 8]


def test_without_an_engine_or_options_the_ranking_is_the_search(library):
    messages = [{"role": "user", "content": "Who founded the company?"}]
    plain = rank_turn(None, library, messages, RetrievalOptions(passages=3, draft_tokens=20, rerank_candidates=8))
    words = library.search("Who founded the company?", 3)
    assert [h.chunk_id for h in plain.hits] == [h.chunk_id for h in words] and plain.draft == ""


@pytest.mark.parametrize("fields", [{"passages": 0}, {"draft_tokens": -1}, {"draft_tokens": 10_000},
                                    {"rerank_candidates": 1000}])
def test_options_are_checked(fields):
    with pytest.raises(ValueError):
        RetrievalOptions(**fields)


def test_eos_pads_the_batch():
    assert EOS == min(ByteTokenizer().eos_ids)


def test_a_passage_far_below_the_best_is_left_out():
    def hit(i, bm25):
        return SearchHit(i, f"/{i}.txt", "", 0, 1, f"passage {i}", 1.0 / (60 + i), bm25=bm25)

    retriever = OrderedRetriever([])
    retriever.hits = [hit(0, 6.0), hit(1, 2.0), hit(2, 3.5), hit(3, 0.0)]
    messages = [{"role": "user", "content": "which passage?"}]
    kept = rank_turn(None, retriever, messages, RetrievalOptions(passages=4, min_score_ratio=0.5))
    assert [h.chunk_id for h in kept.hits] == [0, 2]  # 2.0 and 0.0 are below half of 6.0
    everything = rank_turn(None, retriever, messages, RetrievalOptions(passages=4))
    assert [h.chunk_id for h in everything.hits] == [0, 1, 2, 3]
    retriever.hits = [hit(5, 0.0), hit(6, 0.0)]  # no word matched (trigrams only): nothing to compare
    assert [h.chunk_id for h in rank_turn(None, retriever, messages,
                                          RetrievalOptions(passages=2, min_score_ratio=0.5)).hits] == [5, 6]


def test_the_librarys_subject_does_not_count_in_the_score():
    tokenizer = ByteTokenizer()
    passages = ["Halvorsen made lenses for Tsumura.", "Halvorsen is still owned privately.",
                "Halvorsen opened a factory in Brekke."]
    ids, counts = rerank.question_pieces(tokenizer, "Which camera maker did Halvorsen serve?", passages)
    assert tokenizer.decode(ids) == "Which camera maker did Halvorsen serve?"
    counted = tokenizer.decode([i for i, c in zip(ids, counts) if c])
    assert "Halvorsen" not in counted and "camera maker" in counted
    # a word in only one passage counts; when every word is shared, all of them count
    _ids, alone = rerank.question_pieces(tokenizer, "Tsumura", passages)
    assert all(alone)
    _ids, everything = rerank.question_pieces(tokenizer, "Halvorsen", passages)
    assert all(everything)


def test_shared_words_do_not_let_the_passage_that_repeats_the_name_win():
    """The passage that names the subject beside the question's own words must not lose to one
    that only repeats the subject: the shared name is left out of the score."""
    passages = ["Halvorsen Lenswerks is still privately owned by Halvorsen Lenswerks family.",
                "The company made a camera lens for the Japanese camera maker Tsumura.",
                "Halvorsen Lenswerks opened a factory in Brekke, Halvorsen Lenswerks says."]
    scores, _cost = question_scores(fake_engine(), "Which Japanese camera maker did Halvorsen Lenswerks serve?",
                                    passages)
    assert rerank_order(scores)[0] == 1


def test_batched_scores_on_a_real_transformer_equal_a_full_forward_of_each_passage(byte_tokenizer):
    """Our Transformer, padded batch, logits only at the question's positions: each score is
    the mean log-softmax of one unpadded forward pass over that candidate alone."""
    from chatapp.engine.generate import Engine
    from chatapp.model import ModelConfig, Transformer

    torch.manual_seed(5)
    config = ModelConfig(arch="llama", vocab_size=257, dim=32, n_layers=2, n_heads=4, n_kv_heads=2,
                         intermediate_size=48, max_seq_len=512, tie_embeddings=True)
    model = Transformer(config).eval()
    engine = Engine(model, byte_tokenizer, eos_ids=set())
    passages = ["a short one", "a rather longer passage about the lighthouse keeper and her lamp", "mid length text"]
    question = "who kept the lamp?"
    scores, _cost = question_scores(engine, question, passages)
    _ids, counts = question_pieces(byte_tokenizer, question, passages)
    keep = torch.tensor(counts)
    for passage, score in zip(passages, scores):
        ids, start = scoring_ids(byte_tokenizer, passage, question)
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([ids]))[0].float(), dim=-1)  # (T, vocab)
        targets = torch.tensor(ids[start:])
        expected = logprobs[start - 1:len(ids) - 1].gather(1, targets[:, None])[:, 0][keep].mean()
        assert score == pytest.approx(float(expected), abs=1e-4)
