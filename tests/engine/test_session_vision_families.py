"""Idefics3 / SmolVLM and Gemma 3 in the engine's chat path (ChatBackend / ChatSession with tiny random
models made here): the prompt ids equal transformers' processor's, the reply tokens equal transformers'
generate on the processor's inputs, over two turns, with a changed image run again, not taken from the cache."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from helpers.tiny_llava import png_bytes  # noqa: E402
from helpers.tiny_vlm import GEMMA3_WINDOW, tiny_gemma3_vision_folder, tiny_idefics3_folder  # noqa: E402

from chatapp.engine.backend import ChatBackend, LoadOptions  # noqa: E402
from chatapp.engine.sampling import SamplingSettings  # noqa: E402
from chatapp.engine.session import ChatSession  # noqa: E402
from chatapp.engine.vision import ImageAttachment  # noqa: E402

GREEDY = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=6)
FAMILIES = ["idefics3", "smolvlm", "gemma3"]


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tmp_path_factory):
    kind = request.param
    folder = tmp_path_factory.mktemp(kind)
    if kind == "gemma3":
        folder, ref, processor = tiny_gemma3_vision_folder(folder)
    else:
        folder, ref, processor = tiny_idefics3_folder(folder, kind)
    backend = ChatBackend()
    info = backend.load(str(folder), LoadOptions(device="cpu", context_len=400, threads=1))
    return kind, backend, info, ref, processor


def _pil(data: bytes):
    import io

    from PIL import Image

    return Image.open(io.BytesIO(data))


def _reference(kind, ref, processor, messages, eos: int, n: int = 6) -> tuple[list[int], list[int]]:
    """(the processor's prompt ids, transformers' greedy continuation of them) for `messages`
    ({"role", "content", "images"?} as the session holds them)."""
    hf_messages, images = [], []
    for m in messages:
        attached = [_pil(a.data) for a in m.get("images", ())]
        images += attached
        content = [{"type": "image"} for _ in attached] + [{"type": "text", "text": m["content"]}]
        hf_messages.append({"role": m["role"], "content": content})
    text = processor.apply_chat_template(hf_messages, add_generation_prompt=True)
    inputs = processor(text=text, images=images, return_tensors="pt")
    extra = {"token_type_ids": inputs["token_type_ids"]} if kind == "gemma3" else {}
    ids = inputs["input_ids"]
    out = ref.generate(input_ids=ids, pixel_values=inputs["pixel_values"], max_new_tokens=n, do_sample=False,
                       pad_token_id=0, eos_token_id=eos, **extra)[0, ids.shape[1]:].tolist()
    return ids[0].tolist(), out


def _turn(backend, messages):
    session = ChatSession(backend.engine, messages=messages)
    ids, _ = session.fit(GREEDY.max_new_tokens)
    "".join(session.respond(GREEDY))
    return session, ids


def test_reply_and_next_turn_match_transformers(family):
    kind, backend, _info, ref, processor = family
    eos = backend.engine.tokenizer.eos_id
    a = png_bytes((70, 40), seed=1)  # Idefics3: a 2x3 tile grid and the whole image
    first = [{"role": "user", "content": "the cat?", "images": [ImageAttachment(a)]}]
    session, ids = _turn(backend, first)
    want_ids, want = _reference(kind, ref, processor, first, eos)
    assert ids == want_ids
    assert session.reply.token_ids == want
    image_id = backend.engine.model.vision.image_token_id
    assert ids.count(image_id) == (28 if kind != "gemma3" else 4)
    # the second turn: the cached prefix (with the image) is reused, the reply is still the reference's
    second = first + [{"role": "assistant", "content": "a cat."}, {"role": "user", "content": "and now?"}]
    session, ids2 = _turn(backend, second)
    want_ids2, want2 = _reference(kind, ref, processor, second, eos)
    assert ids2 == want_ids2 and session.reply.token_ids == want2
    last_image = len(ids) - 1 - ids[::-1].index(image_id)
    assert session.reply.stats.prefilled_tokens < len(ids2) - last_image  # the image was not run again


def test_changed_image_is_not_taken_from_the_cache(family):
    kind, backend, _info, ref, processor = family
    eos = backend.engine.tokenizer.eos_id
    a, b = png_bytes((30, 30), seed=2), png_bytes((30, 30), seed=3, mode="L")
    _turn(backend, [{"role": "user", "content": "what is it?", "images": [ImageAttachment(a)]}])
    messages = [{"role": "user", "content": "what is it?", "images": [ImageAttachment(b)]}]
    session, ids = _turn(backend, messages)  # the same token ids: only the image tells them apart
    want_ids, want = _reference(kind, ref, processor, messages, eos)
    assert ids == want_ids and session.reply.token_ids == want
    first_image = ids.index(backend.engine.model.vision.image_token_id)
    assert session.reply.stats.prefilled_tokens == len(ids) - first_image


def test_two_images_through_the_backend_stream(family):
    kind, backend, _info, ref, processor = family
    a, b = png_bytes((20, 90), seed=4, mode="RGBA"), png_bytes((16, 12), seed=5)
    messages = [{"role": "user", "content": "compare", "images": [ImageAttachment(a), ImageAttachment(b)]}]
    text = "".join(backend.stream(messages, "", GREEDY))
    done = backend.finished()
    assert done.text == text
    _ids, want = _reference(kind, ref, processor, messages, backend.engine.tokenizer.eos_id)
    assert backend.reply.token_ids == want


def test_image_costs_and_estimate(family):
    kind, backend, info, _ref, _processor = family
    assert info.vision and info.max_images == 8
    # Idefics3: at most a 3x3 tile grid (longest edge 80, 32-pixel tiles) and the whole image, 4 tokens a tile
    assert info.image_tokens == (40 if kind != "gemma3" else 4)
    wide, square = ImageAttachment(png_bytes((70, 40), seed=6)), ImageAttachment(png_bytes((20, 20), seed=7))
    assert backend.image_cost(wide) == (28 if kind != "gemma3" else 4)  # Idefics3: 2x3 tiles and the whole
    assert backend.image_cost(square) == info.image_tokens  # resized up to 80x80: the largest grid
    estimate = backend.estimate(info.path, LoadOptions(device="cpu", context_len=400))
    loaded = sum(p.numel() for p in backend.engine.model.parameters())  # decoder + vision tower + projector
    assert estimate.n_params == loaded and estimate.context_len == 400


def test_gemma3_keeps_every_position_and_refuses_a_window_cache(family):
    """Gemma 3's image tokens attend both ways: its engine cache keeps every position (a sliding
    layer's window cache builds a causal mask of its own), and asking for a window cache is refused."""
    from chatapp.model.window_cache import WindowKVCache

    kind, backend, _info, _ref, _processor = family
    model = backend.engine.model
    assert model.vision.uses_blocks == (kind == "gemma3")
    if kind == "gemma3":
        assert backend.engine.context_len > GEMMA3_WINDOW
        assert not any(isinstance(b.attn.kv_cache, WindowKVCache) for b in model.decoder.layers)
        with pytest.raises(ValueError, match="window_cache=False"):
            model.setup_cache(batch_size=1, max_seq_len=64, window_cache=True)
