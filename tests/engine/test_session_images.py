"""Images in the engine's chat path (ChatBackend / ChatSession with a tiny random LLaVA made here),
checked against transformers' generate on the same prompt ids and pixels."""

from __future__ import annotations

import threading

import pytest
import torch

pytest.importorskip("transformers")

from helpers.tiny_hf import tiny_llama_folder  # noqa: E402
from helpers.tiny_llava import png_bytes, tiny_llava_folder  # noqa: E402

from chatapp.engine.backend import ChatBackend, LoadOptions  # noqa: E402
from chatapp.engine.sampling import SamplingSettings  # noqa: E402
from chatapp.engine.session import ChatSession  # noqa: E402
from chatapp.engine.vision import ImageAttachment, NoVisionError  # noqa: E402
from chatapp.text.images import ImageError  # noqa: E402

GREEDY = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=6)


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    folder, ref, image_id = tiny_llava_folder(tmp_path_factory.mktemp("llava"))
    backend = ChatBackend()
    info = backend.load(str(folder), LoadOptions(device="cpu", context_len=200, threads=1))
    return backend, info, ref, image_id


def _expected(ref, backend, ids, images: list[bytes], n=6):
    """transformers' greedy continuation of `ids` with `images`' pixels (preprocessed as ours)."""
    vision = backend.engine.model
    pixels = torch.cat([vision.pixels(ImageAttachment(data)) for data in images])
    eos = backend.engine.tokenizer.eos_id
    out = ref.generate(input_ids=torch.tensor([ids]), pixel_values=pixels, max_new_tokens=n, do_sample=False,
                       pad_token_id=0, eos_token_id=eos)[0, len(ids):].tolist()
    return out


def _turn(backend, messages):
    session = ChatSession(backend.engine, messages=messages)
    ids, _ = session.fit(min(GREEDY.max_new_tokens, backend.engine.context_len // 4))
    text = "".join(session.respond(GREEDY))
    return session, ids, text


def test_vision_model_info(llava):
    _backend, info, _ref, _ = llava
    assert info.vision and info.max_images == 8
    assert info.image_tokens == 4  # a 16-pixel CLIP with 8-pixel patches, class token dropped


def test_reply_with_image_matches_transformers(llava):
    backend, _info, ref, image_id = llava
    a = png_bytes((23, 17), seed=1)
    session, ids, _ = _turn(backend, [{"role": "user", "content": "the cat?", "images": [ImageAttachment(a)]}])
    assert ids.count(image_id) == 4 and len(ids) == session.reply.stats.prompt_tokens
    assert session.reply.token_ids == _expected(ref, backend, ids, [a])
    # the image-token positions count against the context like any token
    assert backend.engine.cached_tokens == len(ids) + len(session.reply.token_ids) - 1


def test_changed_image_is_not_taken_from_the_cache(llava):
    backend, _info, ref, _ = llava
    a, b = png_bytes(seed=2), png_bytes((30, 30), seed=3, mode="L")
    _turn(backend, [{"role": "user", "content": "what is it?", "images": [ImageAttachment(a)]}])
    # the same text with another image: the same token ids, so only the image tells them apart
    session, ids, _ = _turn(backend, [{"role": "user", "content": "what is it?", "images": [ImageAttachment(b)]}])
    assert session.reply.token_ids == _expected(ref, backend, ids, [b])
    first_image = ids.index(backend.engine.model.vision.image_token_id)
    assert session.reply.stats.prefilled_tokens == len(ids) - first_image


def test_next_turn_reuses_the_cached_image(llava):
    backend, _info, ref, _ = llava
    a = png_bytes(seed=4)
    messages = [{"role": "user", "content": "look", "images": [ImageAttachment(a)]}]
    session, ids, first = _turn(backend, messages)
    messages = session.messages + [{"role": "user", "content": "and now?"}]
    session, ids2, _ = _turn(backend, messages)
    assert ids2[:len(ids)] == ids
    assert session.reply.stats.prefilled_tokens < len(ids2) - len(ids) + 4  # the image was not run again
    assert session.reply.token_ids == _expected(ref, backend, ids2, [a])


def test_two_images_in_order_through_the_backend(llava):
    backend, _info, ref, image_id = llava
    a, b = png_bytes(seed=5), png_bytes((40, 12), seed=6, mode="RGBA")
    messages = [{"role": "user", "content": "compare", "images": [ImageAttachment(a, "a.png"), ImageAttachment(b)]}]
    text = "".join(backend.stream(messages, "", GREEDY))
    done = backend.finished()
    assert done.text == text and done.stats["prompt_tokens"] > 8
    ids = ChatSession(backend.engine, messages=messages).fit(6)[0]
    assert ids.count(image_id) == 8
    assert backend.reply.token_ids == _expected(ref, backend, ids, [a, b])
    assert done.prompt.count("<image>×4") == 2  # the prompt shown names where the images went, one marker each


def test_stream_cancels_with_images(llava):
    backend, _info, _ref, _ = llava
    cancel = threading.Event()
    cancel.set()
    messages = [{"role": "user", "content": "stop", "images": [ImageAttachment(png_bytes(seed=7))]}]
    assert "".join(backend.stream(messages, "", GREEDY, cancel)) == ""
    assert backend.finished().finish_reason == "cancelled"


def test_typed_image_marker_stays_text(llava):
    backend, _info, _ref, image_id = llava
    session = ChatSession(backend.engine, messages=[
        {"role": "user", "content": "a <image> b", "images": [ImageAttachment(png_bytes(seed=8))]}])
    ids, _ = session.fit(6)
    assert ids.count(image_id) == 4 and session.contained_markers


def test_bad_image_is_a_clear_error_and_nothing_is_lost(llava):
    backend, _info, _ref, _ = llava
    session = ChatSession(backend.engine, messages=[{"role": "user", "content": "hi"},
                                                    {"role": "assistant", "content": "hello"}])
    with pytest.raises(ImageError, match="broken.png: is not an image"):
        list(session.send("look", GREEDY, images=[ImageAttachment(b"not a png", "broken.png")]))
    assert [m["content"] for m in session.messages] == ["hi", "hello"]
    too_many = [ImageAttachment(png_bytes(seed=i)) for i in range(9)]
    with pytest.raises(ImageError, match="a message can hold 8 images; this one has 9"):
        list(session.send("look", GREEDY, images=too_many))
    assert len(session.messages) == 2


def test_text_only_model_refuses_images(tmp_path):
    backend = ChatBackend()
    info = backend.load(str(tiny_llama_folder(tmp_path / "m")), LoadOptions(device="cpu", context_len=128, threads=1))
    assert not info.vision and info.image_tokens == 0
    messages = [{"role": "user", "content": "see?", "images": [ImageAttachment(png_bytes())]}]
    with pytest.raises(NoVisionError, match=rf"^this model cannot see images \({info.name}\)$"):
        list(backend.stream(messages, "", GREEDY))
    session = ChatSession(backend.engine)
    with pytest.raises(NoVisionError, match="this model cannot see images"):
        list(session.send("see?", GREEDY, images=[ImageAttachment(png_bytes())]))
    assert session.messages == []
    assert "".join(backend.stream([{"role": "user", "content": "text"}], "", GREEDY)) is not None


def test_estimate_reads_a_vision_folder(llava):
    backend, info, _ref, _ = llava
    estimate = backend.estimate(info.path, LoadOptions(device="cpu", context_len=200))
    loaded = sum(p.numel() for p in backend.engine.model.parameters())  # decoder + vision tower + projector
    assert estimate.n_params == loaded and estimate.context_len == 200 and estimate.fits
    assert estimate.memory_parts["weights"] == 4 * loaded


def test_compact_weights_on_a_vision_model_are_refused_and_the_loaded_model_stays(llava):
    """int8/int4 are not built for vision models: asked for, they are refused by name (never
    loaded in float32 instead without a word), and the model already loaded goes on answering."""
    backend, info, _ref, _ = llava
    with pytest.raises(ValueError, match="int8 is not supported for vision models"):
        backend.load(str(info.path), LoadOptions(device="cpu", context_len=200, threads=1, weights="int8"))
    assert backend.info.vision and backend.engine is not None
