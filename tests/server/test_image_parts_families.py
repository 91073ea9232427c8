"""`image_url` parts in chat completions for the other vision families (Idefics3's tiles, Gemma 3's
image markers and two-way attention inside an image): the answer equals ChatBackend.stream's."""

from __future__ import annotations

import base64

import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("transformers")

from helpers.tiny_llava import png_bytes  # noqa: E402
from helpers.tiny_vlm import tiny_gemma3_vision_folder, tiny_idefics3_folder  # noqa: E402

from chatapp.engine.backend import ChatBackend, LoadOptions  # noqa: E402
from chatapp.engine.sampling import SamplingSettings  # noqa: E402
from chatapp.engine.vision import ImageAttachment  # noqa: E402


@pytest.fixture(scope="module", params=["idefics3", "gemma3"])
def vision_backend(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"server-{request.param}")
    if request.param == "gemma3":
        tiny_gemma3_vision_folder(folder)
    else:
        tiny_idefics3_folder(folder)
    backend = ChatBackend()
    backend.load(str(folder), LoadOptions(device="cpu", context_len=300, threads=1))
    return request.param, backend


def test_image_url_reply_equals_the_backend_stream(serve, vision_backend):
    kind, backend = vision_backend
    server = serve(backend=backend)
    image = png_bytes((50, 30), seed=12)
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=60)
    reply = client.chat.completions.create(model=server.ids.base, temperature=0, max_tokens=6, messages=[
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                     {"type": "text", "text": "the cat?"}]}])
    server.idle()
    greedy = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=6, top_k=0, top_p=1.0,
                              min_p=0.0)
    expected = "".join(backend.stream([{"role": "user", "content": "the cat?", "images": [ImageAttachment(image)]}],
                                      "", greedy))
    assert backend.reply.token_ids  # something was generated to compare
    assert reply.choices[0].message.content == expected
    assert reply.usage.prompt_tokens == backend.reply.stats.prompt_tokens
    image_positions = backend.image_cost(ImageAttachment(image))
    assert image_positions == (28 if kind == "idefics3" else 4)  # Idefics3: 2x3 tiles and the whole image
    assert reply.usage.prompt_tokens > image_positions
