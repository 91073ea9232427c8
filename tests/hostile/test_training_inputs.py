"""Training inputs and resumes: a corrupt newest checkpoint falls back to the one before it;
deeply nested JSONL lines are our DatasetError naming file and line; a long document is
tokenized in bounded pieces."""

from __future__ import annotations

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from chatapp.training.checkpoint import checkpoint_problem, list_checkpoints
from chatapp.training.dataset import DatasetError, read_chat_jsonl
from chatapp.training.prepare import text_pieces
from chatapp.training.run import TrainJobError, find_checkpoint
from chatapp.training.trainer import Trainer
from tests.helpers.bounded import run_bounded
from tests.training.test_trainer import TRAIN, VAL, config, tiny_model


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("run") / "checkpoints"
    Trainer(tiny_model(), config(save_every=4, keep_checkpoints=2), TRAIN, VAL, root).fit()
    found = list_checkpoints(root)
    assert [p.name for p in found] == ["step-00000004", "step-00000008"]
    return root


def copy_run(src, dst):
    import shutil
    shutil.copytree(src, dst / "checkpoints")
    return dst


@pytest.mark.parametrize("damage", ["truncate safetensors", "garbage state", "missing optimizer"])
def test_corrupt_newest_checkpoint_falls_back_to_the_previous(two_checkpoints, tmp_path, damage):
    out = copy_run(two_checkpoints, tmp_path)
    newest = out / "checkpoints" / "step-00000008"
    if damage == "truncate safetensors":
        data = (newest / "trainable.safetensors").read_bytes()
        (newest / "trainable.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "garbage state":
        (newest / "trainer_state.json").write_bytes(b"\x00\xff{[")
    else:
        (newest / "optimizer.safetensors").unlink()
    assert checkpoint_problem(newest)
    assert find_checkpoint(out) == out / "checkpoints" / "step-00000004"
    assert not checkpoint_problem(find_checkpoint(out))


def test_resume_from_the_fallback_completes(two_checkpoints, tmp_path):
    out = copy_run(two_checkpoints, tmp_path)
    (out / "checkpoints" / "step-00000008" / "rng.safetensors").write_bytes(b"nonsense")
    result = Trainer(tiny_model(), config(save_every=4, keep_checkpoints=2), TRAIN, VAL,
                     out / "checkpoints").fit(resume_from=find_checkpoint(out))
    assert result.reason == "completed" and result.step == 8 and min(result.losses) == 5


def test_every_checkpoint_corrupt_is_one_clear_error(two_checkpoints, tmp_path):
    out = copy_run(two_checkpoints, tmp_path)
    for ckpt in list_checkpoints(out / "checkpoints"):
        (ckpt / "train_config.json").write_text("[" * 1000)
    with pytest.raises(TrainJobError, match="every checkpoint is corrupt or incomplete"):
        find_checkpoint(out)


def test_deeply_nested_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
                    + '{"messages": ' + "[" * 50_000 + "]" * 50_000 + "}\n")
    with pytest.raises(DatasetError, match="chats.jsonl:2: not valid JSON: nested 50001 levels deep"):
        list(read_chat_jsonl(path))


# ---------------------------------------------------------------------- long documents

@hsettings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab \n\u00e9\U0001f600"), max_size=300), st.integers(1, 40))
def test_text_pieces_cover_the_text_within_the_limit(text, limit):
    pieces = text_pieces(text, limit)
    assert "".join(pieces) == text
    assert all(len(p) <= limit for p in pieces) and all(pieces[:-1])


def test_a_long_document_is_tokenized_in_bounded_memory():
    """4 MB of text in one call grows the process by ~650 MB (a 20 MB file by 4-5 GB); in pieces
    the growth is the ids alone. The ids equal a whole-text encoding when cuts fall on newlines."""
    result = run_bounded("""
        from chatapp.paths import default_model_path
        from chatapp.text.tokenizer import Tokenizer
        from chatapp.training.prepare import Example, encode_in_pieces, tokenize
        tok = Tokenizer.from_gguf(default_model_path())
        line = "The quick brown fox jumps over the lazy dog, 12345 times; naive cafe.\\n"
        text = line * (4_000_000 // len(line))
        before = peak_mb()
        ids, mask = tokenize([Example(key="k", text=text)], tok)
        grown = peak_mb() - before
        small = line * 50
        report(grown_mb=grown, n=len(ids), eos=ids[-1] == tok.eos_id, masked=all(mask),
               same=encode_in_pieces(small, tok, limit=len(line) * 7 + 3) == tok.encode(small))
    """, memory=3 << 30, timeout=300)
    assert result["eos"] and result["masked"] and result["n"] > 1_000_000
    assert result["grown_mb"] < 250, result
    assert result["same"]
