"""`chatapp chat` with images: `/image PATH` attaches an image to the next message (several, listed
by `/image`, dropped by `/image clear`), on a tiny random LLaVA; a bad image is one line and
nothing is lost; a text-only model refuses /image and the chat goes on."""

from __future__ import annotations

import io

import pytest

from helpers.tiny_hf import tiny_llama_folder
from helpers.tiny_llava import bomb_png, png_bytes, tiny_llava_folder

from chatapp.cli import build_parser  # noqa: E402
from chatapp.commands.generate import cmd_chat  # noqa: E402

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    return tiny_llava_folder(tmp_path_factory.mktemp("chat_llava") / "model")[0]


@pytest.fixture
def images(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b b.png"
    a.write_bytes(png_bytes((23, 17), seed=1))
    b.write_bytes(png_bytes((40, 30), seed=2))
    return a, b


def _args(model, *options):
    return build_parser().parse_args(["chat", "--model", str(model), "--temperature", "0", "--threads", "1",
                                      "--system", "be brief", "--max-new-tokens", "5", *options])


def run_chat(model, lines):
    out, feed = io.StringIO(), iter(lines)
    return cmd_chat(_args(model), input_fn=lambda _prompt: next(feed), out=out), out.getvalue()


def expected_reply(model, text, image_files):
    """What the engine replies to `text` with these images, as `chatapp chat` sets it up."""
    from chatapp.commands.common import load_from_args, sampling_from_args
    from chatapp.commands.generate import thinking_from_args
    from chatapp.engine.session import ChatSession
    from chatapp.engine.vision import ImageAttachment

    args = _args(model)
    backend, _info = load_from_args(args)
    session = ChatSession(backend.engine, system_prompt="be brief",
                          template_variables=thinking_from_args(args, backend.engine))
    settings = sampling_from_args(args, backend.loaded.sampling_defaults)
    attached = [ImageAttachment(p.read_bytes(), p.name) for p in image_files]
    return "".join(session.send(text, settings, images=attached))


def test_images_go_with_the_next_message(llava, images, monkeypatch):
    from chatapp.engine.session import ChatSession

    sent, send = [], ChatSession.send

    def recording_send(self, text, settings, cancel=None, logprobs=None, forced=(), images=()):
        sent.append((text, [(i.name, i.data) for i in images]))
        return send(self, text, settings, cancel, logprobs, forced, images)

    monkeypatch.setattr(ChatSession, "send", recording_send)
    a, b = images
    code, text = run_chat(llava, ["/image", f"/image {a}", f'/image "{b}"', "/image", "what is it?", "/image",
                                  "/exit"])
    assert code == 0
    lines = text.splitlines()
    # the model's limit and each image's context cost (the tiny LLaVA: 4 positions an image) before sending
    assert lines[1] == ("It sees images: /image PATH attaches one to the next message (at most 8; each fills up to 4 "
                        "of the 256 context tokens).")
    assert "(no images attached; /image PATH attaches one to the next message)" == lines[2]
    assert lines[3] == "(image a.png (23×17) goes with the next message: 1 of at most 8 images; 4 context tokens, 4 in all)"
    assert lines[4] == ("(image b b.png (40×30) goes with the next message: 2 of at most 8 images; 4 context tokens, "
                        "8 in all)")
    assert lines[5] == "(the next message's images: 2 of at most 8 images, 8 context tokens in all)"
    assert lines[6:8] == ["  1. a.png (23×17), 4 context tokens", "  2. b b.png (40×30), 4 context tokens"]
    assert sent == [("what is it?", [("a.png", a.read_bytes()), ("b b.png", b.read_bytes())])]
    assert lines[8] == expected_reply(llava, "what is it?", [a, b])
    assert lines[9].startswith("(no images attached")  # they went with the message


def test_clear_and_a_bad_image_lose_nothing(llava, images, tmp_path):
    a, b = images
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png())
    code, text = run_chat(llava, [f"/image {b}", "/image clear", f"/image {a}", f"/image {bad}",
                                  f"/image {tmp_path / 'missing.png'}", f"/image {bomb}", "/image", "what is it?",
                                  "/exit"])
    assert code == 0
    lines = text.splitlines()
    assert lines[3] == "(1 image removed from the next message)"
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 3, text
    assert "photo.png" in errors[0] and "damaged or truncated" in errors[0]
    assert "missing.png" in errors[1]
    assert "bomb.png" in errors[2] and "too large to decode safely" in errors[2]
    listing = lines.index(next(line for line in lines if line.startswith("(the next message's images: 1 ")))
    assert lines[listing + 1] == "  1. a.png (23×17), 4 context tokens"  # the bad ones did not take the good one away
    assert lines[listing + 2] == expected_reply(llava, "what is it?", [a])


def test_a_text_only_model_refuses_images_and_the_chat_goes_on(tmp_path, images):
    model = tiny_llama_folder(tmp_path / "model")
    code, text = run_chat(model, [f"/image {images[0]}", "/image", "hello", "/exit"])
    assert code == 0
    lines = text.splitlines()
    assert not lines[1].startswith("It sees images")
    assert lines[1].startswith("(this model cannot see images (") and "load a vision model" in lines[1]
    assert lines[2].startswith("(no images attached")
    assert lines[3] and not lines[3].startswith(("(", "error"))  # the reply to "hello"
