"""Images together with documents: the library's passages go into the user turn's text and the
message's images stay in that turn (the engine, the window's backend, `chatapp chat --docs` with
/image, `chatapp generate --image --docs`), on a tiny random LLaVA checked against transformers."""

from __future__ import annotations

import io
import json

import pytest
import torch

pytest.importorskip("transformers")

from helpers.tiny_llava import png_bytes, tiny_llava_folder  # noqa: E402

from chatapp.cli import build_parser  # noqa: E402
from chatapp.documents.library import LibraryStore  # noqa: E402
from chatapp.engine.backend import ChatBackend, DocumentsChoice, LoadOptions  # noqa: E402
from chatapp.engine.retrieval import LibraryRetriever, send_with_documents  # noqa: E402
from chatapp.engine.sampling import SamplingSettings  # noqa: E402
from chatapp.engine.session import ChatSession  # noqa: E402
from chatapp.engine.vision import ImageAttachment  # noqa: E402
from chatapp.text.images import ImageError  # noqa: E402

GREEDY = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=5)
PASSAGE = "the cat sat on the warm mat."


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs-images")
    folder, ref, image_id = tiny_llava_folder(root / "model")
    backend = ChatBackend()
    backend.load(str(folder), LoadOptions(device="cpu", context_len=256, threads=1))
    docs = root / "docs"
    docs.mkdir()
    (docs / "cats.md").write_text(f"# Cats\n\n{PASSAGE}\n")
    (docs / "dogs.md").write_text("# Dogs\n\na dog ran to the old red barn.\n")
    db = root / "library.sqlite3"
    with LibraryStore(db) as store:
        store.add("pets", [docs])
        store.index("pets")
    return backend, ref, image_id, db, folder, docs


def _reference(ref, backend, ids, images):
    pixels = torch.cat([backend.engine.model.pixels(image) for image in images])
    return ref.generate(input_ids=torch.tensor([ids]), pixel_values=pixels, max_new_tokens=GREEDY.max_new_tokens,
                        do_sample=False, pad_token_id=0,
                        eos_token_id=backend.engine.tokenizer.eos_id)[0, len(ids):].tolist()


def test_session_keeps_the_image_in_the_turn_beside_the_passages(setup):
    backend, ref, image_id, db, _folder, _docs = setup
    image = ImageAttachment(png_bytes((23, 17), seed=1), "cat.png")
    session = ChatSession(backend.engine)
    retriever = LibraryRetriever(LibraryStore(db), "pets")
    try:
        stream = send_with_documents(session, "where did the cat sit?", GREEDY, retriever, images=[image])
        text = "".join(stream)
    finally:
        retriever.close()
    result = stream.result
    assert result.sources and result.sources[0].path.endswith("cats.md")
    assert PASSAGE in result.prompt and result.prompt.count("Question: where did the cat sit?") == 2
    ids = backend.engine._cached[:result.prompt_tokens]  # what the model was fed, prompt first
    assert ids.count(image_id) == 4  # the image's four positions, in the same turn as the passage
    prompt = backend.engine.tokenizer.decode(ids, skip_special_tokens=False)
    assert prompt.index("<image>") < prompt.index(PASSAGE)
    assert session.reply.token_ids == _reference(ref, backend, ids, [image])
    assert text == session.reply.text
    # the history keeps the message as written, with its image (the next turn retrieves afresh)
    assert session.messages[0] == {"role": "user", "content": "where did the cat sit?", "images": [image]}


def test_a_bad_image_with_documents_loses_nothing(setup):
    backend, _ref, _id, db, _folder, _docs = setup
    session = ChatSession(backend.engine, messages=[{"role": "user", "content": "hi"},
                                                    {"role": "assistant", "content": "hello"}])
    retriever = LibraryRetriever(LibraryStore(db), "pets")
    try:
        with pytest.raises(ImageError, match="broken.png: is not an image"):
            send_with_documents(session, "the cat?", GREEDY, retriever,
                                images=[ImageAttachment(b"not a png", "broken.png")])
    finally:
        retriever.close()
    assert session.messages == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def test_the_windows_backend_sends_images_with_a_library(setup):
    """The window's path: ChatBackend.stream with a Documents library chosen and a message with an
    image; the reply is transformers' on the prompt shown, which holds the image and the passage."""
    backend, ref, image_id, db, _folder, _docs = setup
    image = ImageAttachment(png_bytes((30, 20), seed=2, mode="RGBA"), "cat.png")
    messages = [{"role": "user", "content": "where did the cat sit?", "images": [image]}]
    text = "".join(backend.stream(messages, "be brief", GREEDY, documents=DocumentsChoice(str(db), "pets")))
    done = backend.finished()
    assert done.library == "pets" and done.sources[0].path.endswith("cats.md")
    assert PASSAGE in done.prompt and "<image>" in done.prompt
    ids = backend.engine._cached[:done.stats["prompt_tokens"]]
    assert ids.count(image_id) == 4
    assert backend.reply.token_ids == _reference(ref, backend, ids, [image]) and done.text == text
    assert messages[0]["images"] == [image]  # the caller's conversation is left as it was


def _cli(folder, command, *options):
    return build_parser().parse_args([command, "--model", str(folder), "--temperature", "0", "--threads", "1",
                                      "--repetition-penalty", "1", "--max-new-tokens", "5", "--context", "256", *options])


def test_chat_command_sends_images_with_docs(setup, tmp_path):
    from chatapp.commands.generate import cmd_chat

    backend, ref, image_id, _db, folder, docs = setup
    picture = tmp_path / "cat.png"
    picture.write_bytes(png_bytes((23, 17), seed=3))
    out, feed = io.StringIO(), iter([f"/image {picture}", "where did the cat sit?", "/image", "/exit"])
    code = cmd_chat(_cli(folder, "chat", "--docs", str(docs), "--system", ""), input_fn=lambda _p: next(feed), out=out)
    text = out.getvalue()
    assert code == 0 and "do not go together" not in text and "error" not in text
    lines = text.splitlines()
    assert lines[2].startswith("(image cat.png (23×17) goes with the next message")
    assert any(line.startswith("[1] ") and line.rstrip().endswith("]") and "cats.md" in line for line in lines)
    assert "(no images attached" in text  # sent with that message, so the next has none
    # the reply is the engine's for the same turn (image + passages), checked against transformers above
    session = ChatSession(backend.engine)
    retriever = LibraryRetriever(LibraryStore(_db), "pets")
    try:
        expected = "".join(send_with_documents(session, "where did the cat sit?", GREEDY, retriever,
                                               images=[ImageAttachment(picture.read_bytes(), "cat.png")]))
    finally:
        retriever.close()
    assert lines[3] == expected  # the reply, then its sources


def test_generate_command_with_image_and_docs(setup, tmp_path, capsys):
    from chatapp.commands.generate import cmd_generate

    backend, ref, image_id, db, folder, docs = setup
    picture = tmp_path / "cat.png"
    picture.write_bytes(png_bytes((23, 17), seed=4))
    code = cmd_generate(_cli(folder, "generate", "--prompt", "where did the cat sit?", "--image", str(picture),
                             "--docs", str(docs), "--json"))
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["images"] == 1 and out["image_tokens"] == 4
    assert out["documents"]["sources"][0]["path"].endswith("cats.md")
    assert PASSAGE in out["documents"]["prompt"] and "<image>" in out["documents"]["prompt"]
    session = ChatSession(backend.engine, system_prompt="")
    ids = None
    retriever = LibraryRetriever(LibraryStore(db), "pets")
    try:
        stream = send_with_documents(session, "where did the cat sit?", GREEDY, retriever,
                                     images=[ImageAttachment(picture.read_bytes(), "cat.png")])
        list(stream)
        ids = backend.engine._cached[:stream.result.prompt_tokens]
    finally:
        retriever.close()
    assert out["token_ids"] == _reference(ref, backend, ids, [ImageAttachment(picture.read_bytes())])
    # a bad image fails in a moment, before the library or the model is opened
    (tmp_path / "bad.png").write_bytes(b"GIF89a broken")
    code = cmd_generate(_cli(folder, "generate", "--prompt", "x", "--image", str(tmp_path / "bad.png"),
                             "--docs", str(docs)))
    assert code == 1 and "bad.png: " in capsys.readouterr().err


def test_images_without_words_search_nothing(setup):
    """A message of images alone has no words to search the library for: no passages, the reply
    is the one the image gets without documents."""
    backend, ref, image_id, db, _folder, _docs = setup
    image = ImageAttachment(png_bytes((23, 17), seed=9), "cat.png")
    searched = []

    class Recording(LibraryRetriever):
        def search(self, query, limit):
            searched.append(query)
            return super().search(query, limit)

    retriever = Recording(LibraryStore(db), "pets")
    try:
        stream = send_with_documents(ChatSession(backend.engine), "", GREEDY, retriever, images=[image])
        text = "".join(stream)
    finally:
        retriever.close()
    assert searched == [] and stream.result.sources == [] and stream.result.left_out == 0
    assert text == "".join(ChatSession(backend.engine).send("", GREEDY, images=[image]))
    with pytest.raises(ValueError, match="the message is empty"):
        send_with_documents(ChatSession(backend.engine), "  ", GREEDY, retriever)
