"""Our Idefics3 / SmolVLM (SigLIP tower with NaViT positions, pixel-shuffle connector, llama
decoder) against transformers on tiny random models built here from its config classes: float32
logits on prompts with tiled images, greedy continuation, the image processors on varied images
and the prompt the processor writes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

transformers = pytest.importorskip("transformers")

from chatapp.errors import CorruptFileError, ShapeMismatchError, UnsupportedArchitectureError  # noqa: E402
from chatapp.text.images import (ImageSettings, image_prompt_ids, image_run_ids, prepare_image,  # noqa: E402
                                 read_image_settings)
from chatapp.text.tiled_images import TiledImageSettings  # noqa: E402
from chatapp.weights.vision_idefics3 import load_idefics3_folder, read_idefics3_config  # noqa: E402

SPECIALS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"] + [
    f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
TEXT = dict(hidden_size=64, intermediate_size=112, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=512)
VISION = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
              image_size=32, patch_size=8)
KINDS = ["idefics3", "smolvlm"]
SMOLVLM_TEMPLATE = ("<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content']"
                    " is string %}{{': ' + message['content']}}{% else %}{% if message['content'][0]['type'] == "
                    "'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line in message['content'] %}{% if "
                    "line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}"
                    "{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt"
                    " %}{{ 'Assistant:' }}{% endif %}")


def _classes(kind: str):
    T = transformers
    if kind == "idefics3":
        return T.Idefics3Config, T.Idefics3VisionConfig, T.Idefics3ForConditionalGeneration, T.Idefics3ImageProcessorPil
    return T.SmolVLMConfig, T.SmolVLMVisionConfig, T.SmolVLMForConditionalGeneration, T.SmolVLMImageProcessorPil


def _tokenizer():
    from tests.helpers.tiny_hf import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    tokenizer.backend.add_special_tokens(SPECIALS)
    return tokenizer


@pytest.fixture(scope="module", params=KINDS)
def pair(request, tmp_path_factory):
    from chatapp.training.scratch import save_tokenizer

    kind = request.param
    config_cls, vision_cls, model_cls, processor_cls = _classes(kind)
    tokenizer = _tokenizer()
    image_id = tokenizer.backend.token_to_id("<image>")
    config = config_cls(vision_config=vision_cls(**VISION).to_dict(),
                        text_config=transformers.LlamaConfig(vocab_size=tokenizer.vocab_size, **TEXT).to_dict(),
                        image_token_id=image_id, scale_factor=2)
    torch.manual_seed(KINDS.index(kind))
    ref = model_cls(config)
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0.0, 0.15)
    ref.eval()
    folder = tmp_path_factory.mktemp(kind)
    ref.save_pretrained(folder)
    save_tokenizer(tokenizer, folder)
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**settings, "chat_template": SMOLVLM_TEMPLATE}))
    processor = processor_cls(size={"longest_edge": 80}, max_image_size={"longest_edge": 32})
    processor.save_pretrained(folder)  # preprocessor_config.json
    return kind, ref, load_idefics3_folder(folder), folder, processor


def _image(size, seed, mode="RGB"):
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    if mode == "RGBA":
        alpha = Image.fromarray(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8))
        image = image.convert("RGBA")
        image.putalpha(alpha)
        return image
    return image.convert(mode)


IMAGES = [((50, 30), "RGB"), ((23, 61), "L"), ((100, 100), "RGBA"), ((16, 12), "RGB"), ((33, 32), "P")]


def _prompt(ours, n_tiles: list[int]) -> torch.Tensor:
    per = ours.config.tokens_per_image
    fake = 5
    ids = [1, 2, 3]
    for i, tiles in enumerate(n_tiles):
        for _ in range(tiles):
            ids += [fake] + [ours.config.image_token_id] * per
        ids += [fake, 20 + i]
    return torch.tensor([ids + [7, 3, 11]])


@torch.no_grad()
def test_logits_match_with_tiled_images(pair):
    _, ref, ours, _, _ = pair
    torch.manual_seed(1)
    pixels = torch.randn(1, 7, 3, 32, 32)  # two images: 2x3 tiles + global, a single tile
    tokens = _prompt(ours, [6, 1])
    expected = ref(input_ids=tokens, pixel_values=pixels).logits
    got = ours(tokens, pixels[0])
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-4, rtol=0), (got - expected).abs().max()


@torch.no_grad()
def test_tiles_larger_than_the_tower_take_bucketed_positions(pair):
    _, ref, ours, _, _ = pair
    torch.manual_seed(3)
    pixels = torch.randn(1, 2, 3, 48, 48)  # a 6x6 patch grid on a tower trained on 4x4
    per = ours.config.tokens_for(48, 48)
    assert per == 9
    tokens = torch.tensor([[1, 2] + [ours.config.image_token_id] * per * 2 + [4]])
    expected = ref(input_ids=tokens, pixel_values=pixels).logits
    assert torch.allclose(ours(tokens, pixels[0]), expected, atol=1e-4, rtol=0)


@torch.no_grad()
def test_greedy_continuation_matches_generate(pair):
    _, ref, ours, _, _ = pair
    torch.manual_seed(2)
    pixels = torch.randn(1, 5, 3, 32, 32)
    tokens = _prompt(ours, [5])
    expected = ref.generate(input_ids=tokens, pixel_values=pixels, max_new_tokens=10, do_sample=False,
                            pad_token_id=0, eos_token_id=None)[0, tokens.shape[1]:].tolist()
    seq, got = tokens, []
    for _ in range(10):
        nxt = int(ours(seq, pixels[0], last_only=True)[0, -1].argmax())
        got.append(nxt)
        seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
    assert got == expected


@pytest.mark.parametrize("split", [True, False])
def test_preprocessing_equals_reference(pair, split):
    kind, _, _, folder, processor = pair
    settings = read_image_settings(folder)
    assert isinstance(settings, TiledImageSettings) and settings.tile == 32
    settings.do_image_splitting = split
    for i, (size, mode) in enumerate(IMAGES):
        image = _image(size, i, mode)
        expected = processor(images=[image], do_image_splitting=split, return_row_col_info=True,
                             return_tensors="pt")
        got = prepare_image(image, settings)
        assert (got.rows, got.cols) == (expected["rows"][0][0], expected["cols"][0][0]), (kind, size, mode)
        ref_pixels = expected["pixel_values"][0]
        assert got.pixels.shape == tuple(ref_pixels.shape), (size, mode)
        assert np.allclose(got.pixels, ref_pixels.numpy(), atol=1e-6, rtol=0), (size, mode)


def test_prompt_ids_equal_the_processor(pair):
    """Idefics3Processor's input_ids for a chat prompt with two images (tile grid and single), and
    SmolVLM's prompt string function, against image_run_ids + image_prompt_ids."""
    from chatapp.text.tokenizer import Tokenizer

    kind, ref, ours, folder, image_processor = pair
    tok = Tokenizer.from_hf_folder(folder)
    images = [_image((70, 40), 0), _image((20, 90), 1, "RGBA")]
    prepared = [prepare_image(im, read_image_settings(folder)) for im in images]
    assert [(p.rows, p.cols) for p in prepared] == [(2, 3), (3, 1)]
    runs = [image_run_ids(tok, ours.config, p) for p in prepared]
    ids = image_prompt_ids(tok, "what is this?", 2, ours.config.image_token_id, 0, chat=True, image_runs=runs)
    hf_tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
    processor = transformers.Idefics3Processor(image_processor=image_processor, tokenizer=hf_tok,
                                               image_seq_len=ours.config.tokens_per_image,
                                               chat_template=SMOLVLM_TEMPLATE)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "image"},
                                             {"type": "text", "text": "what is this?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    expected = processor(text=text, images=images, return_tensors="pt")
    assert ids == expected["input_ids"][0].tolist()
    assert ids.count(ours.config.image_token_id) == 11 * ours.config.tokens_per_image
    if kind == "smolvlm":
        from transformers.models.smolvlm.processing_smolvlm import get_image_prompt_string

        from chatapp.text.tiled_images import image_markup
        for rows, cols in ((0, 0), (2, 3), (1, 2)):
            assert image_markup(rows, cols, 4, "<image>") == get_image_prompt_string(
                rows, cols, 4, "<fake_token_around_image>", "<image>", "<global-img>")
    # end to end: our prompt and tiles give the reference's logits on its processor's output
    pixels = torch.cat([torch.from_numpy(p.pixels) for p in prepared])
    with torch.no_grad():
        got = ours(torch.tensor([ids]), pixels)
        want = ref(input_ids=expected["input_ids"], pixel_values=expected["pixel_values"]).logits
    assert torch.allclose(got, want, atol=1e-4, rtol=0)


def test_settings_nested_in_processor_config(tmp_path):
    """transformers 5 saves a processor's settings in processor_config.json under "image_processor"."""
    _, _, _, processor_cls = _classes("idefics3")
    hf_tok = transformers.PreTrainedTokenizerFast(tokenizer_object=_tokenizer().backend)
    image_processor = processor_cls(size={"longest_edge": 96}, max_image_size={"longest_edge": 48},
                                    do_image_splitting=False)
    transformers.Idefics3Processor(image_processor=image_processor, tokenizer=hf_tok).save_pretrained(tmp_path)
    assert "image_processor" in json.loads((tmp_path / "processor_config.json").read_text())
    settings = read_image_settings(tmp_path)
    assert isinstance(settings, TiledImageSettings)
    assert settings.tile == 48 and settings.size == {"longest_edge": 96} and not settings.do_image_splitting
    (tmp_path / "processor_config.json").unlink()
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "smolvlm"}))
    assert read_image_settings(tmp_path) == TiledImageSettings()  # the processor's defaults
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava"}))
    assert read_image_settings(tmp_path) == ImageSettings()
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "SmolVLMImageProcessor", "max_image_size": {"longest_edge": 0}}))
    with pytest.raises(CorruptFileError, match="max_image_size"):
        read_image_settings(tmp_path)


def test_missing_marker_token_is_named(pair):
    from chatapp.text.tiled_images import PreparedImage

    _, _, ours, _, _ = pair
    tok = type("Tok", (), {"id_to_token": lambda self, i: "<image>", "token_to_id": lambda self, t: None,
                           "encode_markup": lambda self, t: []})()
    with pytest.raises(ValueError, match="fake_token_around_image"):
        image_run_ids(tok, ours.config, PreparedImage(np.zeros((1, 3, 32, 32), np.float32)))


def test_bad_configs_and_files_are_named(pair, tmp_path):
    from safetensors.torch import load_file, save_file

    kind, _, _, folder, _ = pair
    hf = json.loads((folder / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**hf, "scale_factor": 3}))
    with pytest.raises(CorruptFileError, match="scale_factor 3"):
        read_idefics3_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**hf, "text_config": {"model_type": "mistral"}}))
    with pytest.raises(UnsupportedArchitectureError, match="mistral"):
        read_idefics3_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(hf))
    state = load_file(str(folder / "model.safetensors"))
    save_file({k: v for k, v in state.items() if "connector" not in k}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ShapeMismatchError, match="connector.modality_projection"):
        load_idefics3_folder(tmp_path)


def test_generate_command_runs_the_folder(pair, tmp_path, capsys):
    """`chatapp generate --image` on the folder: the processor's prompt and tiles, greedy tokens
    equal to transformers' generate on the same inputs."""
    from chatapp.cli import main
    from chatapp.text.tokenizer import Tokenizer

    _, ref, ours, folder, _ = pair
    path = tmp_path / "a.png"
    _image((45, 70), 4, "RGBA").save(path)
    code = main(["generate", "--model", str(folder), "--image", str(path), "--prompt", "the cat", "--temperature",
                 "0", "--max-new-tokens", "6", "--json", "--device", "cpu"])
    out = capsys.readouterr()
    assert code == 0, out.err
    result = json.loads(out.out)
    tok = Tokenizer.from_hf_folder(folder)
    prepared = prepare_image(Image.open(path), read_image_settings(folder))
    ids = image_run_ids(tok, ours.config, prepared) + tok.encode("\nthe cat")
    assert result["prompt_tokens"] == len(ids)
    assert result["image_tokens"] == prepared.pixels.shape[0] * ours.config.tokens_per_image
    expected = ref.generate(input_ids=torch.tensor([ids]), pixel_values=torch.from_numpy(prepared.pixels)[None],
                            max_new_tokens=6, do_sample=False, pad_token_id=0,
                            eos_token_id=tok.eos_id)[0, len(ids):].tolist()
    if tok.eos_id in expected:
        expected = expected[:expected.index(tok.eos_id)]
    assert result["token_ids"] == expected
