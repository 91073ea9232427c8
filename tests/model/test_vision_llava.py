"""Our LLaVA (vision tower + projector + decoder) against transformers on tiny random models.

Each model is built here from transformers' config classes (LlavaConfig with a CLIP or SigLIP
vision config and a Llama / Qwen2 text config), saved with save_pretrained and loaded by
chatapp.weights.llava: float32 logits on a prompt with images, and greedy continuation.
"""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from chatapp.errors import ShapeMismatchError, UnsupportedArchitectureError  # noqa: E402
from chatapp.weights.llava import load_llava_folder, read_llava_config  # noqa: E402

VOCAB = 101
IMAGE_TOKEN = 100
TEXT = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
VISION = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
              image_size=32, patch_size=8)


def _config(name: str):
    T = transformers
    if name == "clip-llama":
        return T.LlavaConfig(vision_config=T.CLIPVisionConfig(**VISION), text_config=T.LlamaConfig(**TEXT),
                             image_token_index=IMAGE_TOKEN)
    if name == "clip-full-multilayer-qwen2":
        return T.LlavaConfig(vision_config=T.CLIPVisionConfig(**VISION), text_config=T.Qwen2Config(**TEXT),
                             image_token_index=IMAGE_TOKEN, vision_feature_select_strategy="full",
                             vision_feature_layer=[-3, -1], multimodal_projector_bias=False)
    if name == "siglip-llama":
        return T.LlavaConfig(vision_config=T.SiglipVisionConfig(**VISION), text_config=T.LlamaConfig(**TEXT),
                             image_token_index=IMAGE_TOKEN, vision_feature_layer=-1,
                             vision_feature_select_strategy="full")
    raise KeyError(name)


NAMES = ["clip-llama", "clip-full-multilayer-qwen2", "siglip-llama"]


@pytest.fixture(scope="module", params=NAMES)
def pair(request, tmp_path_factory):
    config = _config(request.param)
    torch.manual_seed(NAMES.index(request.param))
    ref = transformers.LlavaForConditionalGeneration(config)
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0.0, 0.15)
    ref.eval()
    folder = tmp_path_factory.mktemp(request.param)
    ref.save_pretrained(folder)
    return ref, load_llava_folder(folder), folder


def _prompt(ours, n_images: int) -> torch.Tensor:
    per = ours.config.tokens_per_image
    ids = [1, 5, 9]
    for i in range(n_images):
        ids += [IMAGE_TOKEN] * per + [20 + i]
    ids += [7, 3, 11]
    return torch.tensor([ids])


@torch.no_grad()
def test_logits_match_with_images(pair):
    ref, ours, _ = pair
    torch.manual_seed(1)
    pixels = torch.randn(2, 3, 32, 32)
    tokens = _prompt(ours, 2)
    expected = ref(input_ids=tokens, pixel_values=pixels).logits
    got = ours(tokens, pixels)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-4, rtol=0), (got - expected).abs().max()


@torch.no_grad()
def test_text_only_prompt_matches(pair):
    ref, ours, _ = pair
    tokens = torch.tensor([[1, 5, 9, 33, 2]])
    assert torch.allclose(ours(tokens), ref(input_ids=tokens).logits, atol=1e-4, rtol=0)


@torch.no_grad()
def test_greedy_continuation_matches_generate(pair):
    ref, ours, _ = pair
    torch.manual_seed(2)
    pixels = torch.randn(1, 3, 32, 32)
    tokens = _prompt(ours, 1)
    expected = ref.generate(input_ids=tokens, pixel_values=pixels, max_new_tokens=12, do_sample=False,
                            pad_token_id=0, eos_token_id=None)[0, tokens.shape[1]:].tolist()
    seq = tokens
    got = []
    for _ in range(12):
        nxt = int(ours(seq, pixels, last_only=True)[0, -1].argmax())
        got.append(nxt)
        seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
    assert got == expected


def test_image_token_count_mismatch_is_clear(pair):
    _, ours, _ = pair
    tokens = torch.tensor([[1, IMAGE_TOKEN, IMAGE_TOKEN, 2]])
    with pytest.raises(ValueError, match="image tokens"):
        ours(tokens, torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="no image"):
        ours(tokens)


def test_other_vision_models_are_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    with pytest.raises(UnsupportedArchitectureError, match="Qwen2-VL"):
        read_llava_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava",
                                                      "text_config": {"model_type": "gemma"}}))
    with pytest.raises(UnsupportedArchitectureError, match="gemma"):
        read_llava_config(tmp_path)


def test_missing_projector_is_named(pair, tmp_path):
    from safetensors.torch import load_file, save_file

    _, _, folder = pair
    for name in ("config.json",):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    state = load_file(str(folder / "model.safetensors"))
    state = {k: v for k, v in state.items() if "multi_modal_projector.linear_2" not in k}
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ShapeMismatchError, match="linear_2"):
        load_llava_folder(tmp_path)
