"""A LLaVA GGUF with llama.cpp's mmproj file in the chat engine: beside the model (mmproj*.gguf, as
LM Studio keeps them) or given (LoadOptions.mmproj, `chat/serve --mmproj`), it loads as a vision
model whose replies equal transformers' generate on the Hugging Face folder it was written from."""

from __future__ import annotations

import shutil

import pytest
import torch

pytest.importorskip("transformers")

from helpers.tiny_llava import png_bytes  # noqa: E402

from chatapp.engine.backend import ChatBackend, LoadOptions  # noqa: E402
from chatapp.engine.sampling import SamplingSettings  # noqa: E402
from chatapp.engine.session import ChatSession  # noqa: E402
from chatapp.engine.vision import ImageAttachment  # noqa: E402
from tests.weights.test_mmproj import _build, _gpt2_vocab, _rewrite, write_mmproj  # noqa: E402

GREEDY = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=6)
OPTIONS = dict(device="cpu", context_len=160, threads=1)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(folder with model.gguf and mmproj-model-f32.gguf beside it, a folder with model.gguf alone,
    the mmproj file, the transformers LLaVA they were written from)."""
    from tests.helpers.tiny_hf import tiny_tokenizer

    root = tmp_path_factory.mktemp("mmproj")
    tokenizer = tiny_tokenizer()
    tokenizer.backend.add_special_tokens(["<image>"])
    image_id = tokenizer.backend.token_to_id("<image>")
    ref, text_path, mmproj = _build(root / "hf", "clip-default", image_id + 1, image_id)
    beside, alone = root / "beside", root / "alone"
    beside.mkdir()
    alone.mkdir()
    _rewrite(text_path, beside / "model-Q8.gguf", _gpt2_vocab(tokenizer))
    shutil.copy(beside / "model-Q8.gguf", alone / "model-Q8.gguf")
    shutil.copy(mmproj, beside / "mmproj-model-f32.gguf")
    return beside, alone, mmproj, ref


def _reply_matches(backend, ref, data: bytes) -> None:
    session = ChatSession(backend.engine, messages=[{"role": "user", "content": "the cat?",
                                                     "images": [ImageAttachment(data)]}])
    ids, _ = session.fit(GREEDY.max_new_tokens)
    "".join(session.respond(GREEDY))
    image_id = backend.engine.model.vision.image_token_id
    assert ids.count(image_id) == 16  # a 32-pixel CLIP with 8-pixel patches
    pixels = backend.engine.model.pixels(ImageAttachment(data))
    want = ref.generate(input_ids=torch.tensor([ids]), pixel_values=pixels, max_new_tokens=GREEDY.max_new_tokens,
                        do_sample=False, pad_token_id=0,
                        eos_token_id=backend.engine.tokenizer.eos_id)[0, len(ids):].tolist()
    assert session.reply.token_ids == want


def test_mmproj_beside_the_gguf_loads_as_a_vision_model(files):
    beside, _alone, _mmproj, ref = files
    backend = ChatBackend()
    info = backend.load(str(beside / "model-Q8.gguf"), LoadOptions(**OPTIONS))
    assert info.vision and info.image_tokens == 16 and info.kind == "gguf"
    _reply_matches(backend, ref, png_bytes((40, 25), seed=1))
    estimate = backend.estimate(info.path, LoadOptions(**OPTIONS))
    assert estimate.n_params == sum(p.numel() for p in backend.engine.model.parameters())


def test_explicit_mmproj_and_none(files):
    _beside, alone, mmproj, ref = files
    backend = ChatBackend()
    info = backend.load(str(alone / "model-Q8.gguf"), LoadOptions(**OPTIONS))
    assert not info.vision  # no mmproj beside it: the text model
    info = backend.load(str(alone / "model-Q8.gguf"), LoadOptions(**OPTIONS, mmproj=str(mmproj)))
    assert info.vision
    _reply_matches(backend, ref, png_bytes((20, 33), seed=2, mode="L"))


def test_an_unusable_mmproj_beside_the_model_leaves_the_text_model(files, tmp_path):
    _beside, alone, _mmproj, ref = files
    shutil.copy(alone / "model-Q8.gguf", tmp_path / "model.gguf")
    write_mmproj(ref, tmp_path / "mmproj-ldp.gguf", projector="ldp")  # a projector we do not run
    backend = ChatBackend()
    info = backend.load(str(tmp_path / "model.gguf"), LoadOptions(**OPTIONS))
    assert not info.vision and backend.engine is not None
    given = LoadOptions(**OPTIONS, mmproj=str(tmp_path / "mmproj-ldp.gguf"))
    with pytest.raises(Exception, match="projector type 'ldp'"):  # asked for by name: its error
        backend.load(str(tmp_path / "model.gguf"), given)


def test_model_list_and_commands_know_the_mmproj(files):
    from chatapp.cli import _models_table, build_parser
    from chatapp.commands.common import load_from_args
    from chatapp.weights.discovery import ModelEntry

    beside, alone, mmproj, _ref = files
    seeing = ModelEntry(name="m", path=beside / "model-Q8.gguf", kind="gguf", size_bytes=1, source="recent")
    blind = ModelEntry(name="b", path=alone / "model-Q8.gguf", kind="gguf", size_bytes=1, source="recent")
    assert seeing.sees_images and seeing.to_json()["vision"] and not blind.sees_images
    assert "gguf +images" in _models_table([seeing]) and "+images" not in _models_table([blind])
    for command in ("chat", "serve"):
        args = build_parser().parse_args([command, "--model", str(alone / "model-Q8.gguf"), "--mmproj", str(mmproj),
                                          "--device", "cpu", "--context", "160", "--threads", "1"])
        assert args.mmproj == str(mmproj)
    _backend, info = load_from_args(args)
    assert info.vision
