"""Our Gemma 3 vision path (SigLIP tower, pooled soft tokens with Gemma's norm, the Gemma 3
decoder with bidirectional attention inside each image) against transformers'
Gemma3ForConditionalGeneration on a tiny random model built here: float32 logits on a prompt with
images, greedy continuation (full passes and our KV cache), the image processor, and the prompt
Gemma3Processor writes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

transformers = pytest.importorskip("transformers")

from chatapp.errors import CorruptFileError  # noqa: E402
from chatapp.text.images import (ImageSettings, image_markup_text, image_prompt_ids, prepare_image,  # noqa: E402
                                 read_image_settings)
from chatapp.weights.vision_gemma3 import load_gemma3_vision_folder, read_gemma3_vision_config  # noqa: E402
from chatapp.weights.vision_models import load_vision_folder  # noqa: E402

SPECIALS = ["<start_of_image>", "<end_of_image>", "<image_soft_token>", "<start_of_turn>", "<end_of_turn>"]
TEMPLATE = ("{{ bos_token }}{% for message in messages %}<start_of_turn>{{ message['role'] }}\n"
            "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for item in message['content'] %}"
            "{% if item['type'] == 'image' %}<start_of_image>{% else %}{{ item['text'] }}{% endif %}{% endfor %}"
            "{% endif %}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
WINDOW = 6


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from chatapp.training.scratch import save_tokenizer
    from tests.helpers.tiny_hf import tiny_tokenizer

    T = transformers
    tokenizer = tiny_tokenizer()
    tokenizer.backend.add_special_tokens(SPECIALS)
    boi, eoi, image = (tokenizer.backend.token_to_id(t) for t in SPECIALS[:3])
    text = T.Gemma3TextConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, intermediate_size=112,
                              num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                              max_position_embeddings=256, sliding_window=WINDOW, sliding_window_pattern=2,
                              query_pre_attn_scalar=24, pad_token_id=0)
    vision = T.SiglipVisionConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                                  image_size=32, patch_size=8, vision_use_head=False)
    config = T.Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4,
                            boi_token_index=boi, eoi_token_index=eoi, image_token_index=image)
    torch.manual_seed(0)
    ref = T.Gemma3ForConditionalGeneration(config)
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0.0, 0.15)
    ref.eval()
    folder = tmp_path_factory.mktemp("gemma3v")
    ref.save_pretrained(folder)
    save_tokenizer(tokenizer, folder)
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**settings, "chat_template": TEMPLATE}))
    processor = T.Gemma3ImageProcessorPil(size={"height": 32, "width": 32})
    processor.save_pretrained(folder)
    return ref, load_gemma3_vision_folder(folder), folder, processor


def _prompt(ours) -> torch.Tensor:
    c = ours.config
    per = c.tokens_per_image
    ids = [2, 5, 9, c.boi_token_id] + [c.image_token_id] * per + [c.eoi_token_id, 11, 12, c.boi_token_id]
    return torch.tensor([ids + [c.image_token_id] * per + [c.eoi_token_id, 7, 3]])


def _types(tokens, ours):
    return (tokens == ours.config.image_token_id).long()


@torch.no_grad()
def test_logits_match_with_images(pair):
    ref, ours, _, _ = pair
    torch.manual_seed(1)
    pixels = torch.randn(2, 3, 32, 32)
    tokens = _prompt(ours)
    assert tokens.shape[1] > WINDOW  # the sliding layers bind
    expected = ref(input_ids=tokens, pixel_values=pixels, token_type_ids=_types(tokens, ours)).logits
    got = ours(tokens, pixels)
    assert torch.allclose(got, expected, atol=1e-4, rtol=0), (got - expected).abs().max()
    # the bidirectional image blocks matter: a causal-only pass differs
    causal = ours.decoder(tokens, embeds=ours.embed(tokens, pixels))
    assert (causal - expected).abs().max() > 1e-2


@torch.no_grad()
def test_greedy_continuation_matches_generate(pair):
    ref, ours, _, _ = pair
    torch.manual_seed(2)
    pixels = torch.randn(2, 3, 32, 32)
    tokens = _prompt(ours)
    expected = ref.generate(input_ids=tokens, pixel_values=pixels, token_type_ids=_types(tokens, ours),
                            max_new_tokens=10, do_sample=False, pad_token_id=0,
                            eos_token_id=None)[0, tokens.shape[1]:].tolist()
    seq, got = tokens, []
    for _ in range(10):  # full passes
        nxt = int(ours(seq, pixels, last_only=True)[0, -1].argmax())
        got.append(nxt)
        seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
    assert got == expected
    decoder = ours.decoder  # prefill with the image blocks into the KV cache, then one token at a time
    decoder.setup_cache(1, tokens.shape[1] + 10, window_cache=False)
    try:
        logits = decoder(tokens, last_only=True, embeds=ours.embed(tokens, pixels),
                         attention_blocks=ours.attention_blocks(tokens))
        cached = []
        for step in range(10):
            cached.append(int(logits[0, -1].argmax()))
            pos = torch.tensor([tokens.shape[1] + step])
            logits = decoder(torch.tensor([[cached[-1]]]), pos)
    finally:
        decoder.clear_cache()
    assert cached == expected
    decoder.setup_cache(1, 64, window_slack=3)  # a window cache builds its own causal mask: refused, not ignored
    try:
        with pytest.raises(ValueError, match="window_cache=False"):
            decoder(tokens, embeds=ours.embed(tokens, pixels), attention_blocks=ours.attention_blocks(tokens))
    finally:
        decoder.clear_cache()


def test_preprocessing_equals_reference(pair):
    _, _, folder, processor = pair
    settings = read_image_settings(folder)
    assert isinstance(settings, ImageSettings) and settings.resample == 2
    rng = np.random.default_rng(0)
    for size, mode in (((50, 30), "RGB"), ((23, 61), "L"), ((100, 100), "RGBA"), ((16, 12), "P")):
        image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
        expected = processor(images=[image], return_tensors="pt")["pixel_values"]
        got = prepare_image(image, settings).pixels
        assert got.shape == tuple(expected.shape)
        assert np.allclose(got, expected.numpy(), atol=1e-6, rtol=0), (size, mode)


def test_prompt_equals_the_processor_and_runs_end_to_end(pair):
    from chatapp.text.tokenizer import Tokenizer

    ref, ours, folder, image_processor = pair
    tok = Tokenizer.from_hf_folder(folder)
    images = [Image.new("RGB", (40, 20), (200, 10, 50)), Image.new("L", (12, 30), 90)]
    prepared = [prepare_image(im, read_image_settings(folder)) for im in images]
    runs = [image_markup_text(tok, ours.config, p) for p in prepared]
    ids = image_prompt_ids(tok, "what is this?", 2, ours.config.image_token_id, 0, chat=True, image_runs=runs,
                           marker_id=ours.config.marker_token_id)
    hf_tok = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(folder / "tokenizer.json"),
        extra_special_tokens={"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>",
                              "image_token": "<image_soft_token>"})
    processor = transformers.Gemma3Processor(image_processor=image_processor, tokenizer=hf_tok,
                                             image_seq_length=ours.config.tokens_per_image, chat_template=TEMPLATE)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "image"},
                                             {"type": "text", "text": "what is this?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    expected = processor(text=text, images=images, return_tensors="pt")
    assert ids == expected["input_ids"][0].tolist()
    pixels = torch.cat([torch.from_numpy(p.pixels) for p in prepared])
    with torch.no_grad():
        got = ours(torch.tensor([ids]), pixels)
        want = ref(input_ids=expected["input_ids"], pixel_values=expected["pixel_values"],
                   token_type_ids=expected["token_type_ids"]).logits
    assert torch.allclose(got, want, atol=1e-4, rtol=0)


def test_generate_command_runs_the_folder(pair, tmp_path, capsys):
    from chatapp.cli import main
    from chatapp.text.tokenizer import Tokenizer

    ref, ours, folder, _ = pair
    path = tmp_path / "a.png"
    Image.new("RGBA", (30, 44), (10, 200, 30, 128)).save(path)
    code = main(["generate", "--model", str(folder), "--image", str(path), "--prompt", "the cat", "--chat",
                 "--temperature", "0", "--max-new-tokens", "6", "--json", "--device", "cpu"])
    out = capsys.readouterr()
    assert code == 0, out.err
    result = json.loads(out.out)
    tok = Tokenizer.from_hf_folder(folder)
    prepared = prepare_image(Image.open(path), read_image_settings(folder))
    ids = image_prompt_ids(tok, "the cat", 1, ours.config.image_token_id, 0, chat=True,
                           image_runs=[image_markup_text(tok, ours.config, prepared)],
                           marker_id=ours.config.marker_token_id)
    assert result["prompt_tokens"] == len(ids) and result["image_tokens"] == 4
    tensor = torch.tensor([ids])
    expected = ref.generate(input_ids=tensor, pixel_values=torch.from_numpy(prepared.pixels),
                            token_type_ids=_types(tensor, ours), max_new_tokens=6, do_sample=False,
                            pad_token_id=0, eos_token_id=tok.eos_id)[0, len(ids):].tolist()
    if tok.eos_id in expected:
        expected = expected[:expected.index(tok.eos_id)]
    assert result["token_ids"] == expected


def test_bad_configs_are_named(pair, tmp_path):
    _, _, folder, _ = pair
    hf = json.loads((folder / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**hf, "mm_tokens_per_image": 3}))
    with pytest.raises(CorruptFileError, match="mm_tokens_per_image 3"):
        read_gemma3_vision_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({k: v for k, v in hf.items() if k != "vision_config"}))
    with pytest.raises(CorruptFileError, match="without its vision tower"):
        load_vision_folder(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "Gemma3ImageProcessor", "do_pan_and_scan": True, "pan_and_scan_max_num_crops": 0}))
    with pytest.raises(CorruptFileError, match="pan_and_scan_max_num_crops must be a whole number of at least 1"):
        read_image_settings(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "CLIPImageProcessor", "do_pan_and_scan": True}))
    with pytest.raises(CorruptFileError, match="pan-and-scan crops .* only Gemma 3's image processor makes"):
        read_image_settings(tmp_path)


def _pan_and_scan_pair(pair, tmp_path, **options):
    """The pair's folder with a pan-and-scan image processor config, and Gemma3Processor over it.

    transformers' Gemma3Processor pans and scans only when its caller asks (its own defaults,
    do_pan_and_scan False, 256, 4, 1.2, override the image processor's config): the reference is
    the processor called with the config's settings, `processor(..., **scan)`."""
    import shutil

    ref, ours, folder, _ = pair
    scanned = tmp_path / "scanned"
    shutil.copytree(folder, scanned)
    image_processor = transformers.Gemma3ImageProcessorPil(size={"height": 32, "width": 32},
                                                           **{"do_pan_and_scan": True, **options})
    image_processor.save_pretrained(scanned)
    hf_tok = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(scanned / "tokenizer.json"),
        extra_special_tokens={"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>",
                              "image_token": "<image_soft_token>"})
    processor = transformers.Gemma3Processor(image_processor=image_processor, tokenizer=hf_tok,
                                             image_seq_length=ours.config.tokens_per_image, chat_template=TEMPLATE)
    return scanned, processor


SCAN = dict(do_pan_and_scan=True, pan_and_scan_min_crop_size=8, pan_and_scan_max_num_crops=4,
            pan_and_scan_min_ratio_to_activate=1.2)
# (width, height), mode, crops the reference makes with SCAN
PAN_AND_SCAN_IMAGES = [((100, 30), "RGB", 3), ((30, 100), "L", 3), ((50, 40), "RGBA", 2), ((40, 40), "RGB", 0),
                       ((200, 20), "P", 4), ((20, 9), "RGB", 2), ((9, 61), "LA", 4), ((45, 44), "RGB", 0),
                       ((13, 11), "RGB", 0)]


def test_pan_and_scan_equals_the_reference_processor(pair, tmp_path):
    """do_pan_and_scan: the crops, their pixels, and the prompt ("Here is the original image ... and
    here are some crops ...") equal Gemma3Processor's on images of many sizes, aspects and modes;
    the model's logits on them equal transformers'."""
    from chatapp.text.tokenizer import Tokenizer

    ref, ours, _, _ = pair
    scanned, processor = _pan_and_scan_pair(pair, tmp_path, **SCAN)
    settings = read_image_settings(scanned)
    assert settings.pan_and_scan is not None and settings.pan_and_scan.min_crop_size == 8
    tok = Tokenizer.from_hf_folder(scanned)
    rng = np.random.default_rng(5)
    for (width, height), mode, crops in PAN_AND_SCAN_IMAGES:
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what is this?"}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True)
        expected = processor(text=text, images=[image], return_tensors="pt", **SCAN)
        prepared = prepare_image(image, settings)
        assert prepared.crops == crops == expected["pixel_values"].shape[0] - 1, (width, height)
        assert prepared.pixels.shape == tuple(expected["pixel_values"].shape)
        assert np.allclose(prepared.pixels, expected["pixel_values"].numpy(), atol=1e-6, rtol=0), (width, height, mode)
        runs = [image_markup_text(tok, ours.config, prepared)]
        ids = image_prompt_ids(tok, "what is this?", 1, ours.config.image_token_id, 0, chat=True, image_runs=runs,
                               marker_id=ours.config.marker_token_id)
        assert ids == expected["input_ids"][0].tolist(), (width, height)
        if crops == 3:
            with torch.no_grad():
                got = ours(torch.tensor([ids]), torch.from_numpy(prepared.pixels))
                want = ref(input_ids=expected["input_ids"], pixel_values=expected["pixel_values"],
                           token_type_ids=expected["token_type_ids"]).logits
            assert torch.allclose(got, want, atol=1e-4, rtol=0)


def test_pan_and_scan_defaults_are_the_processors(pair, tmp_path):
    """A config that turns pan-and-scan on and leaves its numbers null gets Gemma3Processor's (crops
    of at least 256 pixels, at most 4, from an aspect of 1.2)."""
    scanned, processor = _pan_and_scan_pair(pair, tmp_path)
    settings = read_image_settings(scanned)
    rng = np.random.default_rng(6)
    for size, crops in (((1200, 300), 4), ((600, 200), 0), ((300, 700), 2), ((520, 256), 2)):
        image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        expected = processor(text="<start_of_image>", images=[image], return_tensors="pt", do_pan_and_scan=True)
        prepared = prepare_image(image, settings)
        assert prepared.crops == crops == expected["pixel_values"].shape[0] - 1, size
        assert np.allclose(prepared.pixels, expected["pixel_values"].numpy(), atol=1e-6, rtol=0), size


def test_pan_and_scan_through_the_engine(pair, tmp_path):
    """A vision backend on the pan-and-scan folder: the image's cost counts its crops, the most an
    image costs counts the most crops, and the reply equals transformers' generate on the
    processor's inputs."""
    from chatapp.engine.backend import ChatBackend, LoadOptions
    from chatapp.engine.sampling import SamplingSettings
    from chatapp.engine.session import ChatSession
    from chatapp.engine.vision import ImageAttachment
    import io

    ref, ours, _, _ = pair
    scanned, processor = _pan_and_scan_pair(pair, tmp_path, **SCAN)
    backend = ChatBackend()
    info = backend.load(str(scanned), LoadOptions(device="cpu", context_len=200, threads=1))
    assert info.vision and info.image_tokens == 4 * (1 + 4)
    picture = Image.fromarray(np.random.default_rng(7).integers(0, 256, (20, 70, 3), dtype=np.uint8))
    data = io.BytesIO()
    picture.save(data, format="PNG")
    image = ImageAttachment(data.getvalue(), "wide.png")
    assert backend.image_cost(image) == 4 * (1 + 4)  # 70 / 20 -> 4 crops (the most)
    greedy = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=5)
    session = ChatSession(backend.engine)
    list(session.send("what is this?", greedy, images=[image]))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what is this?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    expected = processor(text=text, images=[picture], return_tensors="pt", **SCAN)
    ids = expected["input_ids"]
    assert backend.engine._cached[:ids.shape[1]] == ids[0].tolist()
    want = ref.generate(input_ids=ids, pixel_values=expected["pixel_values"], token_type_ids=expected["token_type_ids"],
                        max_new_tokens=5, do_sample=False, pad_token_id=0, eos_token_id=None)[0, ids.shape[1]:].tolist()
    eos = backend.engine.tokenizer.eos_id
    assert session.reply.token_ids == (want[:want.index(eos)] if eos in want else want)
