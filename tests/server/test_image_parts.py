"""Images in chat completions (`image_url` parts with data URLs), through the engine's own vision
path, driven by the official openai client on a tiny random LLaVA; bad images answer 400."""

from __future__ import annotations

import base64

import pytest

openai = pytest.importorskip("openai")

from helpers.tiny_llava import bomb_png, png_bytes, tiny_llava_folder  # noqa: E402

from chatapp.engine.backend import ChatBackend, LoadOptions  # noqa: E402
from chatapp.engine.sampling import SamplingSettings  # noqa: E402
from chatapp.engine.vision import ImageAttachment  # noqa: E402


@pytest.fixture(scope="module")
def vision_backend(tmp_path_factory):
    folder, _ref, _ = tiny_llava_folder(tmp_path_factory.mktemp("server-llava"))
    backend = ChatBackend()
    backend.load(str(folder), LoadOptions(device="cpu", context_len=200, threads=1))
    return backend


def _client(server):
    return openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=60)


def _url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def _ask(client, model, parts, **kwargs):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": parts}],
                                          temperature=0, max_tokens=6, **kwargs)


def test_image_url_reply_equals_the_window_engine_path(serve, vision_backend):
    server = serve(backend=vision_backend)
    image = png_bytes((30, 20), seed=11)
    reply = _ask(_client(server), server.ids.base,
                 [{"type": "image_url", "image_url": {"url": _url(image)}}, {"type": "text", "text": "the cat?"}])
    server.idle()
    # the same question through ChatBackend.stream, as the window sends it
    greedy = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=6, top_k=0, top_p=1.0,
                              min_p=0.0)
    expected = "".join(vision_backend.stream(
        [{"role": "user", "content": "the cat?", "images": [ImageAttachment(image)]}], "", greedy))
    assert reply.choices[0].message.content == expected
    assert reply.usage.prompt_tokens == vision_backend.reply.stats.prompt_tokens  # the 4 image positions counted
    # streamed, it adds up to the same
    stream = _client(server).chat.completions.create(
        model=server.ids.base, temperature=0, max_tokens=6, stream=True, messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": _url(image)}}, {"type": "text", "text": "the cat?"}]}])
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == expected


@pytest.mark.parametrize("part, message", [
    ({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
     "image URLs are not fetched (this server never uses the network)"),
    ({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}, "the data URL is not valid base64"),
    ({"type": "image_url", "image_url": {"url": "cat.png"}}, "the image must be a base64 data URL"),
    ({"type": "image_url", "image_url": {"url": _url(b"\x89PNG\r\n\x1a\ntruncated")}}, "damaged or truncated"),
    ({"type": "image_url", "image_url": {"url": _url(b"just some text")}},
     "messages[0] image 1: is not an image Pillow can read (cannot identify image file)"),
    ({"type": "image_url", "image_url": {"url": _url(bomb_png())}}, "the image is too large to decode safely"),
    ({"type": "image_url", "image_url": {"url": _url(bomb_png(9000, 9000))}}, "the image is 9000x9000 pixels"),
])
def test_bad_images_are_400_with_a_specific_message(serve, vision_backend, part, message):
    server = serve(backend=vision_backend)
    with pytest.raises(openai.BadRequestError) as info:
        _ask(_client(server), server.ids.base, [part, {"type": "text", "text": "what is it?"}])
    assert message in info.value.body["message"]
    # the server keeps serving
    assert _ask(_client(server), server.ids.base, [{"type": "text", "text": "hi"}]).choices[0].message is not None


def test_oversized_image_is_refused_before_decoding(serve, vision_backend, monkeypatch):
    from chatapp import limits
    monkeypatch.setattr(limits, "IMAGE_MAX_BYTES", 1000)
    server = serve(backend=vision_backend)
    with pytest.raises(openai.BadRequestError) as info:
        _ask(_client(server), server.ids.base, [{"type": "image_url", "image_url": {"url": _url(png_bytes((80, 80)))}},
                                                 {"type": "text", "text": "big"}])
    assert "the limit is 1,000" in info.value.body["message"] and info.value.body["code"] == "image_too_large"


def test_text_only_model_refuses_images(server):
    with pytest.raises(openai.BadRequestError) as info:
        _ask(_client(server), server.ids.base, [{"type": "image_url", "image_url": {"url": _url(png_bytes())}},
                                                 {"type": "text", "text": "see?"}])
    assert info.value.body["message"].startswith("this model cannot see images (")
    assert info.value.body["code"] == "model_cannot_see_images"


def test_images_only_in_user_messages(server):
    with pytest.raises(openai.BadRequestError) as info:
        _client(server).chat.completions.create(model=server.ids.base, max_tokens=2, messages=[
            {"role": "system", "content": [{"type": "image_url", "image_url": {"url": _url(png_bytes())}}]},
            {"role": "user", "content": "hi"}])
    assert "images can only be in a user message" in info.value.body["message"]


def test_the_content_decides_not_the_declared_type(serve, vision_backend):
    """A JPEG sent as data:image/png (a wrong "extension") is read for what it is."""
    import io

    from PIL import Image

    jpeg = io.BytesIO()
    Image.new("RGB", (20, 14), (200, 30, 30)).save(jpeg, format="JPEG")
    server = serve(backend=vision_backend)
    reply = _ask(_client(server), server.ids.base, [{"type": "image_url", "image_url": {"url": _url(jpeg.getvalue())}},
                                                     {"type": "text", "text": "what colour?"}])
    assert reply.choices[0].finish_reason in ("stop", "length") and reply.usage.prompt_tokens > 4
