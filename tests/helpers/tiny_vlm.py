"""Tiny random Idefics3 / SmolVLM and Gemma 3 vision folders (transformers' config classes,
save_pretrained, the tiny tokenizer with each family's image tokens and chat template), with the
reference model and transformers' processor for the same folder: the engine and server tests'
other vision families (tests/helpers/tiny_llava.py has LLaVA)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

IDEFICS3_SPECIALS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"] + [
    f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
SMOLVLM_TEMPLATE = ("<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content']"
                    " is string %}{{': ' + message['content']}}{% else %}{% if message['content'][0]['type'] == "
                    "'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line in message['content'] %}{% if "
                    "line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}"
                    "{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt"
                    " %}{{ 'Assistant:' }}{% endif %}")
GEMMA3_SPECIALS = ["<start_of_image>", "<end_of_image>", "<image_soft_token>", "<start_of_turn>", "<end_of_turn>"]
GEMMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<start_of_turn>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<start_of_image>{% else %}{{ item['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
GEMMA3_WINDOW = 6  # sliding layers bind on every test prompt


def _randomize(ref, seed: int):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0.0, 0.15)
    return ref.eval()


def _save(ref, tokenizer, folder: Path, template: str) -> None:
    from chatapp.training.scratch import save_tokenizer

    ref.save_pretrained(folder)
    save_tokenizer(tokenizer, folder)
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**settings, "chat_template": template}))


def tiny_idefics3_folder(folder: Path, kind: str = "idefics3", seed: int = 0):
    """(folder, reference model, transformers' Idefics3Processor for it); tiles of 32 pixels, images
    resized to a longest edge of 80 (up to 3x3 tiles plus the whole image), 4 image tokens a tile."""
    import transformers as T

    from .tiny_hf import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    tokenizer.backend.add_special_tokens(IDEFICS3_SPECIALS)
    image_id = tokenizer.backend.token_to_id("<image>")
    classes = {"idefics3": (T.Idefics3Config, T.Idefics3VisionConfig, T.Idefics3ForConditionalGeneration,
                            T.Idefics3ImageProcessorPil),
               "smolvlm": (T.SmolVLMConfig, T.SmolVLMVisionConfig, T.SmolVLMForConditionalGeneration,
                           T.SmolVLMImageProcessorPil)}
    config_cls, vision_cls, model_cls, processor_cls = classes[kind]
    text = T.LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         eos_token_id=tokenizer.eos_id)
    vision = vision_cls(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                        image_size=32, patch_size=8)
    config = config_cls(vision_config=vision.to_dict(), text_config=text.to_dict(), image_token_id=image_id,
                        scale_factor=2)
    ref = _randomize(model_cls(config), seed)
    _save(ref, tokenizer, folder, SMOLVLM_TEMPLATE)
    image_processor = processor_cls(size={"longest_edge": 80}, max_image_size={"longest_edge": 32})
    image_processor.save_pretrained(folder)  # preprocessor_config.json
    hf_tok = T.PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
    processor = T.Idefics3Processor(image_processor=image_processor, tokenizer=hf_tok, image_seq_len=4,
                                    chat_template=SMOLVLM_TEMPLATE)
    return folder, ref, processor


def tiny_gemma3_vision_folder(folder: Path, seed: int = 0):
    """(folder, reference model, transformers' Gemma3Processor for it); 4 image tokens an image,
    a sliding window of GEMMA3_WINDOW on every other layer."""
    import transformers as T

    from .tiny_hf import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    tokenizer.backend.add_special_tokens(GEMMA3_SPECIALS)
    boi, eoi, image = (tokenizer.backend.token_to_id(t) for t in GEMMA3_SPECIALS[:3])
    text = T.Gemma3TextConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, intermediate_size=112,
                              num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                              max_position_embeddings=512, sliding_window=GEMMA3_WINDOW, sliding_window_pattern=2,
                              query_pre_attn_scalar=24, pad_token_id=0, eos_token_id=tokenizer.eos_id)
    vision = T.SiglipVisionConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                                  image_size=32, patch_size=8, vision_use_head=False)
    config = T.Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4,
                            boi_token_index=boi, eoi_token_index=eoi, image_token_index=image)
    ref = _randomize(T.Gemma3ForConditionalGeneration(config), seed)
    _save(ref, tokenizer, folder, GEMMA3_TEMPLATE)
    image_processor = T.Gemma3ImageProcessorPil(size={"height": 32, "width": 32})
    image_processor.save_pretrained(folder)
    hf_tok = T.PreTrainedTokenizerFast(
        tokenizer_file=str(folder / "tokenizer.json"),
        extra_special_tokens={"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>",
                              "image_token": "<image_soft_token>"})
    processor = T.Gemma3Processor(image_processor=image_processor, tokenizer=hf_tok, image_seq_length=4,
                                  chat_template=GEMMA3_TEMPLATE)
    return folder, ref, processor
