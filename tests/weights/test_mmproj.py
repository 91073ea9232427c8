"""LLaVA from GGUF: a tiny random HF LLaVA (transformers' config classes) written as llama.cpp
writes it (the text model with convert_hf_to_gguf's rules, the vision tower and projector as an
mmproj file with legacy-models/convert_image_encoder_to_gguf.py's names and metadata, through
gguf's GGUFWriter); the logits equal the Hugging Face folder's path."""

from __future__ import annotations

import json

import gguf
import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from chatapp.errors import ShapeMismatchError, UnsupportedArchitectureError  # noqa: E402
from chatapp.weights.llava import load_llava_folder  # noqa: E402
from chatapp.weights.mmproj import gguf_field, load_llava_gguf, mmproj_image_settings, read_mmproj  # noqa: E402
from tests.weights.gguf_writing import hf_to_gguf  # noqa: E402

VOCAB, IMAGE = 40, 39


def _converter_name(name: str) -> str:
    """convert_image_encoder_to_gguf.py's get_tensor_name, as documented there (LLaVA part)."""
    if name.startswith("multi_modal_projector"):
        return name.replace("multi_modal_projector", "mm").replace("linear_1", "0").replace("linear_2", "2")
    return (name.replace("vision_model", "v").replace("encoder.layers", "blk").replace("embeddings.", "")
            .replace("_proj", "").replace("self_attn.", "attn_").replace("layer_norm", "ln").replace("layernorm", "ln")
            .replace("mlp.fc1", "ffn_down").replace("mlp.fc2", "ffn_up").replace("embedding", "embd")
            .replace("final", "post").replace("layrnorm", "ln"))


def write_mmproj(ref, path, new_ffn_names: bool = False, projector: str = "mlp") -> None:
    """The converter's mmproj: layers after the feature layer dropped, no post-norm, conv in f16."""
    cfg = ref.config
    vision = cfg.vision_config
    n = vision.num_hidden_layers
    layer = cfg.vision_feature_layer
    block_count = layer if layer >= 0 else n + layer + 1
    writer = gguf.GGUFWriter(str(path), "clip")
    writer.add_bool("clip.has_text_encoder", False)
    writer.add_bool("clip.has_vision_encoder", True)
    writer.add_bool("clip.has_llava_projector", True)
    writer.add_file_type(0)
    writer.add_string("clip.projector_type", projector)
    writer.add_uint32("clip.vision.image_size", vision.image_size)
    writer.add_uint32("clip.vision.patch_size", vision.patch_size)
    writer.add_uint32("clip.vision.embedding_length", vision.hidden_size)
    writer.add_uint32("clip.vision.feed_forward_length", vision.intermediate_size)
    writer.add_uint32("clip.vision.projection_dim", vision.projection_dim)
    writer.add_uint32("clip.vision.attention.head_count", vision.num_attention_heads)
    writer.add_float32("clip.vision.attention.layer_norm_epsilon", vision.layer_norm_eps)
    writer.add_uint32("clip.vision.block_count", block_count)
    writer.add_array("clip.vision.feature_layer", [block_count])
    writer.add_array("clip.vision.image_mean", [0.48145466, 0.4578275, 0.40821073])
    writer.add_array("clip.vision.image_std", [0.26862954, 0.26130258, 0.27577711])
    writer.add_bool("clip.use_gelu", vision.hidden_act == "gelu")
    for name, value in ref.model.multi_modal_projector.state_dict().items():
        writer.add_tensor(_converter_name("multi_modal_projector." + name), value.numpy().astype(np.float32))
    for name, value in ref.model.vision_tower.state_dict().items():
        name = "vision_model." + name.removeprefix("vision_model.")
        if "position_ids" in name or "post_layernorm" in name:
            continue
        if name.startswith("vision_model.encoder.layers.") and int(name.split(".")[3]) >= block_count:
            continue
        data = value.numpy().squeeze()
        data = data.astype(np.float16) if data.ndim == 4 else data.astype(np.float32)
        gguf_name = _converter_name(name)
        if new_ffn_names:  # convert_hf_to_gguf's names: fc1 is ffn_up
            gguf_name = gguf_name.replace("ffn_down", "ffn_TMP").replace("ffn_up", "ffn_down").replace("ffn_TMP", "ffn_up")
        writer.add_tensor(gguf_name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _rewrite(path, out, tokenizer: dict | None):
    """The text GGUF again, with a tokenizer's metadata (gguf's writer methods) or none."""
    reader = gguf.GGUFReader(str(path))
    writer = gguf.GGUFWriter(str(out), "llama")
    for field in reader.fields.values():
        if field.name.startswith("llama."):
            value = field.parts[field.data[0]].tolist()[0]
            (writer.add_float32 if isinstance(value, float) else writer.add_uint32)(field.name, value)
    for method, value in (tokenizer or {}).items():
        getattr(writer, method)(value)
    for t in reader.tensors:
        writer.add_tensor(t.name, np.asarray(t.data).reshape([int(d) for d in reversed(t.shape)]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def _add_vocab(path, tmp_path):
    """The text GGUF with a vocabulary holding <image> at IMAGE."""
    return _rewrite(path, tmp_path / "text-vocab.gguf", {
        "add_tokenizer_model": "llama", "add_token_list": [f"t{i}" for i in range(IMAGE)] + ["<image>"],
        "add_token_scores": [0.0] * VOCAB, "add_token_types": [1] * VOCAB})


def _gpt2_vocab(tokenizer) -> dict:
    """A byte-level BPE tokenizer as convert_hf_to_gguf writes it (tokens, types, merges)."""
    spec = json.loads(tokenizer.backend.to_str())
    added = {a["id"]: a["content"] for a in spec["added_tokens"]}
    names = {v: k for k, v in spec["model"]["vocab"].items()} | added
    n = tokenizer.backend.get_vocab_size()
    return {"add_tokenizer_model": "gpt2", "add_tokenizer_pre": "gpt2",
            "add_token_list": [names[i] for i in range(n)],
            "add_token_types": [3 if i in added else 1 for i in range(n)],
            "add_token_merges": [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]],
            "add_eos_token_id": tokenizer.eos_id}


def _build(folder, variant: str, vocab: int, image: int):
    """A tiny random HF LLaVA saved in `folder`, its text model as a llama GGUF, its mmproj."""
    T = transformers
    vision = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
                  image_size=32, patch_size=8)
    if variant == "clip-layer-1-gelu":
        vision["hidden_act"] = "gelu"
    config = T.LlavaConfig(vision_config=T.CLIPVisionConfig(**vision),
                           text_config=T.LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=48,
                                                     num_hidden_layers=2, num_attention_heads=4,
                                                     num_key_value_heads=2, max_position_embeddings=128,
                                                     rms_norm_eps=1e-5),
                           image_token_index=image, vision_feature_layer=1 if variant == "clip-layer-1-gelu" else -2)
    torch.manual_seed(0)
    ref = T.LlavaForConditionalGeneration(config)
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0.0, 0.15)
        patch = ref.model.vision_tower.embeddings.patch_embedding.weight
        patch.copy_(patch.half().float())  # the converter always writes the conv in f16
    ref.eval()
    ref.save_pretrained(folder)
    text = T.LlamaForCausalLM(config.text_config)
    text.model.load_state_dict(ref.model.language_model.state_dict())
    text.lm_head.load_state_dict(ref.lm_head.state_dict())
    text_path = hf_to_gguf(text.eval(), "llama", folder / "text.gguf")
    mmproj = folder / "mmproj-model-f32.gguf"
    write_mmproj(ref, mmproj, new_ffn_names=variant != "clip-default")
    return ref, text_path, mmproj


@pytest.fixture(scope="module", params=["clip-default", "clip-layer-1-gelu"])
def files(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    ref, text_path, mmproj = _build(folder, request.param, VOCAB, IMAGE)
    return folder, _add_vocab(text_path, folder), mmproj, ref


@torch.no_grad()
def test_logits_equal_the_folder_path(files):
    folder, text_path, mmproj, ref = files
    from_folder = load_llava_folder(folder)
    from_gguf = load_llava_gguf(text_path, mmproj)
    assert from_gguf.config.image_token_id == IMAGE
    per = from_gguf.config.tokens_per_image
    assert per == from_folder.config.tokens_per_image == 16
    tokens = torch.tensor([[1, 5] + [IMAGE] * per + [7, 3] + [IMAGE] * per + [9]])
    pixels = torch.randn(2, 3, 32, 32)
    expected = from_folder(tokens, pixels)
    got = from_gguf(tokens, pixels)
    assert torch.allclose(got, expected, atol=1e-4, rtol=0), (got - expected).abs().max()
    assert torch.allclose(got, ref(input_ids=tokens, pixel_values=pixels).logits, atol=1e-4, rtol=0)


def test_metadata_is_read(files):
    _, _, mmproj, ref = files
    vision, state, mean, std = read_mmproj(mmproj)
    assert vision.family == "clip" and vision.image_size == 32 and vision.patch_size == 8
    assert vision.act == ("gelu" if ref.config.vision_config.hidden_act == "gelu" else "quick_gelu")
    assert np.allclose(mean, [0.48145466, 0.4578275, 0.40821073])
    assert "linear_2.weight" in state and not any("post_layernorm" in k for k in state)


def test_public_helpers_read_the_file(files):
    """gguf_field (engine.vision's parameter count uses it) and mmproj_image_settings (the engine
    and `chatapp generate --image` both preprocess with it)."""
    from chatapp.weights.gguf_loader import open_gguf

    _, text_path, mmproj, ref = files
    reader = open_gguf(mmproj)
    assert gguf_field(reader, "general.architecture") == "clip"
    assert gguf_field(reader, "clip.vision.embedding_length") == ref.config.vision_config.hidden_size
    assert np.allclose(gguf_field(reader, "clip.vision.image_std"), [0.26862954, 0.26130258, 0.27577711])
    assert gguf_field(reader, "clip.no.such.key") is None
    settings = mmproj_image_settings(load_llava_gguf(text_path, mmproj))
    assert settings.size == {"shortest_edge": 32} and settings.crop_size == {"height": 32, "width": 32}
    assert np.allclose(settings.image_mean, [0.48145466, 0.4578275, 0.40821073])
    assert np.allclose(settings.image_std, [0.26862954, 0.26130258, 0.27577711])


def test_clear_errors(files, tmp_path):
    _, text_path, mmproj, ref = files
    with pytest.raises(UnsupportedArchitectureError, match="not an mmproj file"):
        read_mmproj(text_path)
    other = tmp_path / "ldp.gguf"
    write_mmproj(ref, other, projector="ldp")
    with pytest.raises(UnsupportedArchitectureError, match="projector type 'ldp'"):
        read_mmproj(other)
    with pytest.raises(ValueError, match="no <image> token"):
        load_llava_gguf(_plain(text_path, tmp_path), mmproj)
    with pytest.raises(ShapeMismatchError, match="projector|linear_2|shape"):
        load_llava_gguf(text_path, _mismatched(ref, tmp_path))


def _plain(text_path, tmp_path):
    return _rewrite(text_path, tmp_path / "novocab.gguf", None)


def _mismatched(ref, tmp_path):
    """An mmproj whose projector gives features of another width than the text model's."""
    T = transformers
    cfg = ref.config
    text = T.LlamaConfig(**{**cfg.text_config.to_dict(), "hidden_size": 64})
    other = T.LlavaForConditionalGeneration(T.LlavaConfig(vision_config=cfg.vision_config, text_config=text,
                                                          image_token_index=IMAGE)).eval()
    path = tmp_path / "wide.gguf"
    write_mmproj(other, path)
    return path


def test_generate_command_names_what_is_missing(files, tmp_path, capsys):
    from PIL import Image

    from chatapp.cli import main

    folder, text_path, mmproj, _ = files
    image = tmp_path / "a.png"
    Image.new("RGB", (20, 20), (1, 2, 3)).save(image)

    def run(*argv):
        code = main(["generate", "--prompt", "x", "--device", "cpu", *argv])
        return code, capsys.readouterr().err

    code, err = run("--model", str(text_path), "--image", str(image))
    assert code == 1 and "--mmproj FILE" in err and "text-only model, which cannot see images" in err
    code, err = run("--model", str(folder), "--image", str(image), "--mmproj", str(mmproj))
    assert code == 1 and "--mmproj goes with a GGUF model file" in err
    code, err = run("--model", str(text_path), "--mmproj", str(mmproj))
    assert code == 1 and "--mmproj goes with --image" in err
    code, err = run("--model", str(text_path), "--image", str(image), "--mmproj", str(text_path))
    assert code == 1 and "not an mmproj file" in err


def test_generate_command_gguf_with_mmproj_equals_the_folder(tmp_path, capsys):
    """`generate --model text.gguf --mmproj mmproj.gguf --image ...` gives the folder's tokens."""
    from PIL import Image

    from chatapp.cli import main
    from chatapp.training.scratch import save_tokenizer
    from tests.helpers.tiny_hf import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    tokenizer.backend.add_special_tokens(["<image>"])
    image_id = tokenizer.backend.token_to_id("<image>")
    folder = tmp_path / "llava"
    _, text_path, mmproj = _build(folder, "clip-default", image_id + 1, image_id)
    save_tokenizer(tokenizer, folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 32},
        "crop_size": {"height": 32, "width": 32}}))
    gguf_path = _rewrite(text_path, tmp_path / "llava-text.gguf", _gpt2_vocab(tokenizer))
    rng = np.random.default_rng(0)
    images = []
    for i, size in enumerate(((45, 30), (20, 50))):
        images.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(images[-1])
    common = ["--prompt", "the cat sat", "--temperature", "0", "--max-new-tokens", "8", "--json", "--device", "cpu"]
    for image in images:
        common += ["--image", str(image)]
    results = []
    for model in (["--model", str(folder)], ["--model", str(gguf_path), "--mmproj", str(mmproj)]):
        code = main(["generate", *model, *common])
        out = capsys.readouterr()
        assert code == 0, out.err
        results.append(json.loads(out.out))
    assert results[0]["image_tokens"] == 32 and results[0]["new_tokens"] > 0
    for key in ("token_ids", "prompt_tokens", "image_tokens"):
        assert results[1][key] == results[0][key], key


def _projector_only(path, key: str, value: str, vision: bool = True):
    """An mmproj file's header: what read_mmproj looks at before any tensor."""
    writer = gguf.GGUFWriter(str(path), "clip")
    writer.add_bool("clip.has_vision_encoder", vision)
    writer.add_string(key, value)
    writer.add_tensor("v.patch_embd.weight", np.zeros((4, 3, 2, 2), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize("projector, family", [
    ("ldp", "MobileVLM"), ("ldpv2", "MobileVLM V2"), ("resampler", "MiniCPM-V"), ("adapter", "GLM-Edge-V"),
    ("qwen2vl_merger", "Qwen2-VL"), ("gemma3", "Gemma 3"), ("idefics3", "Idefics3 / SmolVLM"),
    ("pixtral", "Pixtral"), ("mlp_norm", "LLaVA with a normed MLP"), ("some_future_kind", None)])
def test_every_other_projector_type_is_refused_by_name(tmp_path, projector, family):
    """llama.cpp writes many projector types into mmproj files (tools/mtmd/clip-impl.h); only 'mlp'
    is run: any other is refused naming the type (and its models when known) and what is supported."""
    path = _projector_only(tmp_path / f"mmproj-{projector}.gguf", "clip.projector_type", projector)
    with pytest.raises(UnsupportedArchitectureError) as caught:
        read_mmproj(path)
    message = str(caught.value)
    assert f"has projector type {projector!r}" in message and "supported: 'mlp' (LLaVA 1.5 style" in message
    assert str(path) in message
    if family:
        assert f"({family}" in message


def test_a_mixed_modality_file_names_its_vision_projector(tmp_path):
    """Files holding vision and audio name the vision projector under clip.vision.projector_type;
    an audio-only file has no vision encoder."""
    path = _projector_only(tmp_path / "omni.gguf", "clip.vision.projector_type", "qwen2.5o")
    with pytest.raises(UnsupportedArchitectureError, match=r"projector type 'qwen2\.5o' \(Qwen2\.5-Omni\)"):
        read_mmproj(path)
    audio = _projector_only(tmp_path / "audio.gguf", "clip.audio.projector_type", "ultravox", vision=False)
    with pytest.raises(Exception, match="has no vision encoder"):
        read_mmproj(audio)
