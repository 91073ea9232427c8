"""`chatapp generate --image FILE`: a prompt with images for a vision model folder (LLaVA,
Idefics3 / SmolVLM, Gemma 3; chatapp.weights.vision_models chooses the loader), or a LLaVA GGUF
file with its llama.cpp mmproj file (`--mmproj FILE`).

The images are opened and checked (bounded size, before decoding) before the model loads, so a
bad file fails in a moment. Generation is a plain loop over the decoder's KV cache: the prompt's
embeddings (with the image features spliced in) are prefilled once, then one token at a time.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

import torch

from ..text.images import (ImageError, image_markup_text, image_prompt_ids, open_image, prepare_image,
                           read_image_settings)

log = logging.getLogger(__name__)


def generate_with_images(args: argparse.Namespace) -> int:
    from ..engine.device import choose_device
    from ..engine.loader import resolve_model
    from ..text.tokenizer import Tokenizer
    from ..weights.hf_loader import hf_sampling_defaults
    from ..weights.llava import not_yet_message, read_llava_config
    from ..weights.vision_models import is_vision_folder, load_vision_folder
    from .common import sampling_from_args

    try:
        images = [open_image(path) for path in args.image]
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if getattr(args, "adapter", None):
        print("error: --adapter cannot be combined with --image yet", file=sys.stderr)
        return 1
    if args.docs:
        return _generate_with_documents(args)
    folder = resolve_model(args.model)
    mmproj = getattr(args, "mmproj", None)
    if folder.is_file():
        if not mmproj:
            print(f"error: {folder}: a GGUF file holds a text-only model, which cannot see images; give its vision part with "
                  "--mmproj FILE (llama.cpp's mmproj file), or use a vision model's Hugging Face folder",
                  file=sys.stderr)
            return 1
        loaded = _load_gguf_with_mmproj(folder, Path(mmproj), args.device)
        if loaded is None:
            return 1
        model, tokenizer, settings, sampling = loaded
        sampling = sampling_from_args(args, sampling)
    else:
        if mmproj:
            print(f"error: --mmproj goes with a GGUF model file; {folder} is a folder", file=sys.stderr)
            return 1
        model_type = _model_type(folder)
        if not_yet_message(model_type):
            read_llava_config(folder)  # raises UnsupportedArchitectureError naming what the model is
        if not is_vision_folder(folder):
            print(f"error: {folder}: --image needs a vision model (a LLaVA, Idefics3, SmolVLM or Gemma 3 Hugging "
                  "Face folder, or a GGUF file with --mmproj); this model reads text only", file=sys.stderr)
            return 1
        settings = read_image_settings(folder)
        model = None
    prepared = [prepare_image(image, settings) for image in images]
    try:
        pixels = torch.cat([torch.from_numpy(p.pixels) for p in prepared])
    except RuntimeError as exc:  # different sizes: a processor without a fixed output size
        print(f"error: the images preprocess to different sizes ({exc})", file=sys.stderr)
        return 1
    device = choose_device(args.device)
    if model is None:
        model = load_vision_folder(folder, device=str(device))
        tokenizer = Tokenizer.from_hf_folder(folder)
        sampling = sampling_from_args(args, hf_sampling_defaults(folder))
    try:
        runs = [image_markup_text(tokenizer, model.config, p) for p in prepared]
        ids = image_prompt_ids(tokenizer, args.prompt, len(images), model.config.image_token_id, 0,
                               chat=args.chat, system=args.system, image_runs=runs,
                               marker_id=model.config.marker_token_id)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    context = min(args.context, model.decoder.config.max_seq_len)
    if len(ids) >= context:
        print(f"error: the prompt with its images is {len(ids)} tokens; the context is {context}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    new_ids: list[int] = []
    text = ""
    finish = "length"
    for token in _generate(model, ids, pixels.to(device), sampling, context):
        if token in tokenizer.eos_ids:
            finish = "eos"
            break
        new_ids.append(token)
        full = tokenizer.decode(new_ids, skip_special_tokens=True)
        if not args.json:
            sys.stdout.write(full[len(text):])
            sys.stdout.flush()
        text = full
    elapsed = time.perf_counter() - start
    if args.json:
        print(json.dumps({"text": text, "token_ids": new_ids, "prompt_tokens": len(ids),
                          "new_tokens": len(new_ids), "finish_reason": finish, "images": len(images),
                          "image_tokens": ids.count(model.config.image_token_id), "seconds": round(elapsed, 3)},
                         ensure_ascii=False))
    else:
        sys.stdout.write("\n")
    return 0


def _generate_with_documents(args: argparse.Namespace) -> int:
    """--image with --docs: one chat turn through the chat engine (as --docs without images), the
    images in the user turn where the template places them, the library's passages in its text."""
    from ..engine.retrieval import send_with_documents
    from ..engine.session import ChatSession
    from ..engine.vision import ImageAttachment
    from .common import load_from_args, sampling_from_args
    from .generate import docs_limit, open_docs, print_sources, thinking_from_args

    try:  # checked (bounded, before decoding) before the library opens and the model loads
        attachments = []
        for path in map(Path, args.image):
            open_image(path)
            attachments.append(ImageAttachment(path.read_bytes(), path.name))
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    retriever = open_docs(args)
    if retriever is False:
        return 1
    try:
        backend, info = load_from_args(args)
        if not info.vision:
            print(f"error: this model cannot see images ({info.name}); --image needs a vision model (a LLaVA, "
                  "Idefics3, SmolVLM or Gemma 3 Hugging Face folder, or a GGUF file with --mmproj)", file=sys.stderr)
            return 1
        engine = backend.engine
        settings = sampling_from_args(args, backend.loaded.sampling_defaults)
        session = ChatSession(engine, system_prompt=args.system, template_variables=thinking_from_args(args, engine))
        try:
            stream = send_with_documents(session, args.prompt, settings, retriever, images=attachments,
                                         **docs_limit(args))
        except ValueError as exc:  # an image the processor refuses, a prompt too long for the context
            print(f"error: {exc}", file=sys.stderr)
            return 1
        for delta in stream:
            if not args.json:
                sys.stdout.write(delta)
                sys.stdout.flush()
        reply, documents = engine.reply, stream.result
        if args.json:
            print(json.dumps({"text": reply.text, "token_ids": reply.token_ids,
                              "prompt_tokens": reply.stats.prompt_tokens, "new_tokens": reply.stats.new_tokens,
                              "finish_reason": reply.finish_reason, "images": len(attachments),
                              "image_tokens": sum(backend.image_cost(image) for image in attachments),
                              "documents": documents.to_dict()}, ensure_ascii=False))
        else:
            sys.stdout.write("\n")
            print_sources(documents, sys.stdout)
        return 0
    finally:
        retriever.close()


def _load_gguf_with_mmproj(path: Path, mmproj: Path, device_name: str):
    """(LlavaModel, tokenizer, image settings, sampling defaults) from a GGUF file and its mmproj
    file; None after printing the error when the pair cannot work."""
    from ..engine.device import choose_device
    from ..text.tokenizer import Tokenizer
    from ..weights.mmproj import load_llava_gguf, mmproj_image_settings

    try:  # the mmproj file is read first: a wrong one fails before the text model loads
        model = load_llava_gguf(path, mmproj, device=str(choose_device(device_name)))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    return model, Tokenizer.from_gguf(path), mmproj_image_settings(model), {}


def _model_type(folder):
    from ..errors import CorruptFileError
    from ..paths import read_json_object

    path = folder / "config.json"
    try:
        return read_json_object(path).get("model_type") if path.is_file() else None
    except CorruptFileError:  # the loader reports it properly
        return None


@torch.inference_mode()
def _generate(model, ids: list[int], pixels: torch.Tensor, settings, context: int) -> Iterator[int]:
    from ..engine.sampling import sample_next

    decoder = model.decoder
    budget = min(settings.max_new_tokens, context - len(ids))
    generator: Optional[torch.Generator] = None
    if not settings.greedy:
        generator = torch.Generator()
        generator.manual_seed(settings.seed if settings.seed is not None else int(time.time_ns() % (1 << 63)))
    device = decoder.tok_embeddings.weight.device
    tokens = torch.tensor([ids], device=device)
    blocks = model.attention_blocks(tokens) if hasattr(model, "attention_blocks") else None
    # A sliding layer's window cache builds its own causal mask: Gemma 3's image blocks need the full one.
    decoder.setup_cache(1, len(ids) + budget, window_cache=blocks is None)
    try:
        logits = decoder(tokens, last_only=True, embeds=model.embed(tokens, pixels), attention_blocks=blocks)
        history = list(ids)
        for step in range(budget):
            window = history[-settings.repeat_last_n:] if settings.repeat_last_n > 0 else history
            token = sample_next(logits[0, -1].cpu(), settings, torch.tensor(window, dtype=torch.long), generator)
            yield token
            history.append(token)
            if step + 1 < budget:
                pos = torch.tensor([len(history) - 1], device=device)
                logits = decoder(torch.tensor([[token]], device=device), pos)
    finally:
        decoder.clear_cache()
