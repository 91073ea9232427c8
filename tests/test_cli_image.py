"""`chatapp generate --image`: a tiny random LLaVA folder made here (transformers, save_pretrained,
a tiny tokenizer with an <image> token), checked against transformers' generate."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from chatapp.cli import main
from helpers.tiny_llava import bomb_png

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    from helpers.tiny_llava import tiny_llava_folder

    return tiny_llava_folder(tmp_path_factory.mktemp("llava"))


def _image(path, size=(23, 17), seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode).save(path)
    return path


def _run(capsys, *argv):
    code = main(["generate", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_plain_prompt_matches_transformers(llava, tmp_path, capsys):
    folder, ref, image_id = llava
    a, b = _image(tmp_path / "a.png"), _image(tmp_path / "b.png", (40, 12), 1, "RGBA")
    code, out, err = _run(capsys, "--model", str(folder), "--image", str(a), "--image", str(b),
                          "--prompt", "the cat", "--temperature", "0", "--max-new-tokens", "8", "--json",
                          "--device", "cpu")
    assert code == 0, err
    result = json.loads(out)
    assert result["images"] == 2 and result["image_tokens"] == 8  # (16/8)^2 patches each

    from chatapp.text.images import preprocess, read_image_settings
    from chatapp.text.tokenizer import Tokenizer
    tok = Tokenizer.from_hf_folder(folder)
    ids = [image_id] * 8 + tok.encode("\nthe cat")
    settings = read_image_settings(folder)
    pixels = torch.stack([torch.from_numpy(preprocess(Image.open(p), settings)) for p in (a, b)])
    expected = ref.generate(input_ids=torch.tensor([ids]), pixel_values=pixels, max_new_tokens=8,
                            do_sample=False, pad_token_id=0, eos_token_id=tok.eos_id)[0, len(ids):].tolist()
    if tok.eos_id in expected:
        expected = expected[:expected.index(tok.eos_id)]
    assert result["prompt_tokens"] == len(ids)
    assert result["token_ids"] == expected


def test_chat_places_images_in_user_turn(llava, tmp_path, capsys):
    folder, _, _ = llava
    a = _image(tmp_path / "a.jpg")
    code, out, err = _run(capsys, "--model", str(folder), "--image", str(a), "--chat", "--prompt", "hello",
                          "--temperature", "0", "--max-new-tokens", "3", "--json", "--device", "cpu")
    assert code == 0, err
    assert json.loads(out)["image_tokens"] == 4


def test_chat_prompt_ids_follow_template(llava):
    from chatapp.text.images import image_prompt_ids
    from chatapp.text.tokenizer import Tokenizer

    folder, _, image_id = llava
    tok = Tokenizer.from_hf_folder(folder)
    ids = image_prompt_ids(tok, "hello", 2, image_id, 3, chat=True)
    assert ids.count(image_id) == 6
    text = tok.decode(ids)
    assert text.index("<|im_start|>user") < text.index("<image>") < text.index("hello")
    with pytest.raises(ValueError, match="image marker"):
        image_prompt_ids(tok, "look <image>", 1, image_id, 3, chat=True)


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"not an image at all"), "is not an image"),
    (lambda p: p.write_bytes(_png_bytes()[:200]), "damaged or truncated"),
    (lambda p: p.write_bytes(bomb_png()), "too large to decode safely"),  # a real bomb, no limit lowered
])
def test_bad_images_one_line_error(llava, tmp_path, capsys, make, message):
    folder, _, _ = llava
    path = tmp_path / "bad.png"
    make(path)
    code, out, err = _run(capsys, "--model", str(folder), "--image", str(path), "--prompt", "x")
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1


def test_huge_image_refused_before_decoding(llava, tmp_path, capsys, monkeypatch):
    from chatapp import limits

    folder, _, _ = llava
    path = tmp_path / "wide.png"
    Image.new("L", (4000, 1000)).save(path)
    monkeypatch.setattr(limits, "IMAGE_MAX_PIXELS", 1_000_000)
    code, _, err = _run(capsys, "--model", str(folder), "--image", str(path), "--prompt", "x")
    assert code == 1 and "4000x1000 pixels" in err


def test_text_model_refuses_images(tmp_path, capsys):
    from tests.helpers.tiny_hf import tiny_llama_folder

    folder = tiny_llama_folder(tmp_path / "m")
    code, _, err = _run(capsys, "--model", str(folder), "--image", str(_image(tmp_path / "a.png")),
                        "--prompt", "x")
    assert code == 1 and "needs a vision model" in err


def _png_bytes() -> bytes:
    import io
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_list_aware_template_places_images(llava):
    """A LLaVA-style template that walks the content parts puts <image> where it says."""
    from chatapp.text.images import image_prompt_ids
    from chatapp.text.tokenizer import Tokenizer

    folder, _, image_id = llava
    tok = Tokenizer.from_hf_folder(folder)
    tok.chat_template = ("{% for m in messages %}{{ m['role'].upper() }}: {% for c in m['content'] %}"
                         "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}"
                         "{% endfor %}{{ '\\n' }}{% endfor %}ASSISTANT:")
    ids = image_prompt_ids(tok, "the cat", 1, image_id, 4, chat=True)
    assert tok.decode(ids) == "USER: " + "<image>" * 4 + "the cat\nASSISTANT:"


def test_other_vision_formats_are_named(tmp_path, capsys):
    image = str(_image(tmp_path / "a.png"))
    smol = tmp_path / "smol"
    smol.mkdir()
    (smol / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    code, _, err = _run(capsys, "--model", str(smol), "--image", image, "--prompt", "x")
    assert code == 1 and "Qwen2-VL" in err and "not supported yet" in err
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    code, _, err = _run(capsys, "--model", str(gguf), "--image", image, "--prompt", "x")
    assert code == 1 and "mmproj" in err
    code, _, err = _run(capsys, "--model", str(smol), "--image", image, "--prompt", "x", "--adapter", str(smol))
    assert code == 1 and "--adapter cannot be combined with --image" in err
