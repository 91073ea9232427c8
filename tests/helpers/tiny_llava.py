"""A tiny random LLaVA folder (transformers' config classes, save_pretrained, the tiny tokenizer with
an <image> token): the vision model of the engine, storage, window and server tests."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch


def tiny_llava_folder(folder: Path, seed: int = 0):
    """(folder, the transformers reference model, the image token id)."""
    import transformers as T

    from chatapp.training.scratch import save_tokenizer
    from .tiny_hf import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    tokenizer.backend.add_special_tokens(["<image>"])
    image_id = tokenizer.backend.token_to_id("<image>")
    config = T.LlavaConfig(
        vision_config=T.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, image_size=16, patch_size=8),
        text_config=T.LlamaConfig(vocab_size=image_id + 1, hidden_size=32, intermediate_size=64,
                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                  max_position_embeddings=256, eos_token_id=tokenizer.eos_id),
        image_token_index=image_id)
    torch.manual_seed(seed)
    ref = T.LlavaForConditionalGeneration(config)
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0.0, 0.15)
    ref.eval()
    ref.save_pretrained(folder)
    save_tokenizer(tokenizer, folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 16},
        "crop_size": {"height": 16, "width": 16}}))
    return folder, ref, image_id


def png_bytes(size=(23, 17), seed: int = 0, mode: str = "RGB") -> bytes:
    """A random image's PNG file."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A real decompression bomb: a valid 1-bit PNG of width x height black pixels, a few tens of
    kilobytes on disk (400 M pixels, 400 MB once Pillow unpacks it to one byte a pixel)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then the packed pixels
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
