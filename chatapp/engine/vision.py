"""Images in the engine's chat path: the `VisionModel` protocol, LLaVA behind it, and the decoder
wrapper through which the Engine's prefill sees image features.

A user message may carry images (`ImageAttachment`: the file's bytes). The session renders the
conversation with one image marker per image where the chat template puts it (`render_with_images`),
then widens each marker into as many image-token positions as the model gives the image features.
`VisionDecoder` stands where the Engine expects a Transformer: it knows which prompt positions hold
which image, and when a forward pass covers them it swaps the token embeddings there for the image's
features. The Engine's prefix cache compares token ids, and two different images give the same ids,
so `VisionDecoder.set_prompt` cuts the Engine's cached prefix back to the first image that changed.

New vision families plug in through `load_vision` (one function choosing the loader) and the
`VisionModel` protocol (`image_token_count`, `embed`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol, Sequence

import torch
from torch import nn

from ..text.images import ImageError, open_image_bytes, preprocess, read_image_settings
from ..text.prompt import RenderedPrompt, render_and_encode

log = logging.getLogger(__name__)

MAX_IMAGES_PER_MESSAGE = 8  # a message's images; the context usually runs out sooner
_PIXEL_CACHE = 16  # preprocessed images kept, so a conversation's images are decoded once
_FEATURE_CACHE = 8  # images' features kept, for a prompt prefilled again after its cache was cut


class NoVisionError(ValueError):
    """Images were given to a model that reads text only."""

    def __init__(self, model: str) -> None:
        super().__init__(f"this model cannot see images ({model})")
        self.model = model


@dataclass(frozen=True)
class ImageAttachment:
    """An image attached to a user message: the file's bytes as given (decoded in the worker)."""

    data: bytes
    name: str = "image"

    @property
    def key(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def message_images(message: dict) -> list[ImageAttachment]:
    """The images of a message ({"role", "content", "images"?}): ImageAttachments, or bytes, or
    objects with `data` and `name` (storage.attachments.Attachment, as the window sends them)."""
    found = []
    for image in message.get("images") or ():
        if isinstance(image, ImageAttachment):
            found.append(image)
        elif isinstance(image, (bytes, bytearray)):
            found.append(ImageAttachment(bytes(image)))
        else:
            found.append(ImageAttachment(bytes(image.data), getattr(image, "name", "") or "image"))
    return found


class VisionModel(Protocol):
    """What the engine needs of a vision model (LLaVA now; other families implement the same)."""

    image_token_id: int
    name: str

    def prepare(self, image: Any) -> torch.Tensor:
        """A Pillow image -> pixel values (C, H, W) as the model's processor makes them."""

    def image_token_count(self, pixels: torch.Tensor) -> int:
        """Prompt positions the prepared image fills."""

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels (N, C, H, W) -> features (N, image_token_count, decoder dim)."""


class LlavaVision:
    """chatapp.model.vision.LlavaModel's image side, with its folder's image processor settings."""

    def __init__(self, model, settings, name: str) -> None:
        self.model, self.settings, self.name = model, settings, name
        self.image_token_id = model.config.image_token_id

    def prepare(self, image) -> torch.Tensor:
        return torch.from_numpy(preprocess(image, self.settings))

    def image_token_count(self, pixels: torch.Tensor) -> int:
        return self.model.config.tokens_for(pixels.shape[-2], pixels.shape[-1])

    @property
    def default_image_tokens(self) -> int:
        """Positions an image fills when the processor gives a fixed size (LLaVA's does)."""
        return self.model.config.tokens_per_image

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.image_features(pixels)


def is_vision_folder(spec: str | Path) -> bool:
    """Whether `spec` is a vision model folder we run (LLaVA today)."""
    from ..weights.llava import is_llava_folder

    try:
        path = Path(spec).expanduser()
        return path.is_dir() and is_llava_folder(path)
    except OSError:
        return False


def load_vision(folder: Path, device: str = "cpu", dtype: torch.dtype = torch.float32,
                progress=None) -> tuple[nn.Module, VisionModel]:
    """(decoder Transformer, VisionModel) from a vision model folder: the one place a family's
    loader is chosen."""
    from ..weights.llava import load_llava_folder

    model = load_llava_folder(folder, dtype=dtype, device=device, progress=progress)
    vision = LlavaVision(model, read_image_settings(folder), model.decoder.config.name or folder.name)
    return model.decoder, vision


@dataclass
class _Placed:
    start: int
    count: int
    key: str
    pixels: torch.Tensor


class VisionDecoder(nn.Module):
    """The decoder as the Engine sees it, with the current prompt's images spliced in."""

    def __init__(self, decoder: nn.Module, vision: VisionModel) -> None:
        super().__init__()
        self.decoder = decoder
        self.vision = vision
        self.vision_parts = getattr(vision, "model", None)  # registered, so .to() and memory see it
        self._placed: list[_Placed] = []
        self._pixels: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._features: OrderedDict[str, torch.Tensor] = OrderedDict()

    # -- what the Engine uses of a Transformer ----------------------------------------------
    @property
    def config(self):
        return self.decoder.config

    def setup_cache(self, *args, **kwargs):
        return self.decoder.setup_cache(*args, **kwargs)

    def clear_cache(self):
        return self.decoder.clear_cache()

    def can_resume(self, position: int) -> bool:
        check = getattr(self.decoder, "can_resume", None)
        return True if check is None else check(position)

    def forward(self, tokens: torch.Tensor, input_pos: Optional[torch.Tensor] = None,
                last_only: bool = False) -> torch.Tensor:
        if input_pos is None:
            input_pos = torch.arange(tokens.shape[1], device=tokens.device)
        first, last = int(input_pos[0]), int(input_pos[-1])
        hits = [p for p in self._placed if p.start <= last and p.start + p.count > first
                and self._holds_image(tokens, p, first, last)]
        if not hits:
            return self.decoder(tokens, input_pos, last_only=last_only)
        embeds = self.decoder.tok_embeddings(tokens)  # (1, T, dim)
        if self.decoder.config.embed_scale:
            embeds = embeds * torch.tensor(self.decoder.config.dim ** 0.5).to(embeds.dtype)
        embeds = embeds.clone()
        for placed in hits:
            features = self._features_of(placed).to(embeds.dtype)  # (count, dim)
            lo, hi = max(placed.start, first), min(placed.start + placed.count, last + 1)
            embeds[0, lo - first:hi - first] = features[lo - placed.start:hi - placed.start]
        return self.decoder(tokens, input_pos, last_only=last_only, embeds=embeds)

    def _holds_image(self, tokens: torch.Tensor, placed: _Placed, first: int, last: int) -> bool:
        """Whether this pass's tokens at `placed`'s positions are image tokens: a prompt run without
        set_prompt (scoring, a completion) never gets an earlier prompt's image."""
        lo, hi = max(placed.start, first), min(placed.start + placed.count, last + 1)
        return bool((tokens[0, lo - first:hi - first] == self.vision.image_token_id).all())

    def _features_of(self, placed: _Placed) -> torch.Tensor:
        features = self._features.get(placed.key)
        if features is None:
            device = self.decoder.tok_embeddings.weight.device
            with torch.inference_mode():
                features = self.vision.embed(placed.pixels[None].to(device))[0]  # (count, dim)
            if features.shape[0] != placed.count:
                raise ValueError(f"the image gives {features.shape[0]} features for {placed.count} positions")
            self._features[placed.key] = features
            while len(self._features) > _FEATURE_CACHE:
                self._features.popitem(last=False)
        else:
            self._features.move_to_end(placed.key)
        return features

    # -- prompts with images ------------------------------------------------------------------
    def pixels(self, image: ImageAttachment) -> torch.Tensor:
        """The image decoded and preprocessed (ImageError when it cannot be used); cached by content."""
        key = image.key
        pixels = self._pixels.get(key)
        if pixels is None:
            pixels = self.vision.prepare(open_image_bytes(image.data, image.name))
            self._pixels[key] = pixels
            while len(self._pixels) > _PIXEL_CACHE:
                self._pixels.popitem(last=False)
        else:
            self._pixels.move_to_end(key)
        return pixels

    def set_prompt(self, engine, ids: Sequence[int], placed: list[_Placed]) -> None:
        """Make `placed` (the prompt's images) current; cut `engine`'s cached prefix back to the
        first position where an image differs from what the cache was computed with."""
        cut = len(ids)
        old = {p.start: p for p in self._placed}
        new = {p.start: p for p in placed}
        for start in sorted(set(old) | set(new)):
            a, b = old.get(start), new.get(start)
            if a is None or b is None or a.key != b.key or a.count != b.count:
                cut = min(cut, start)
                break
        cached = getattr(engine, "_cached", None)
        if cached is not None and len(cached) > cut:
            engine._cached = cached[:cut]
        self._placed = list(placed)


def render_with_images(decoder: VisionDecoder, tokenizer, messages: Sequence[dict], *,
                       continue_final: bool = False, **variables) -> tuple[RenderedPrompt, list[_Placed]]:
    """Render `messages` (system first if any) with their images: each image a run of image-token
    positions where the chat template places it (a template that takes text only gets one marker
    line per image before the message's text). Message text stays text, as render_and_encode keeps it."""
    vision = decoder.vision
    images: list[ImageAttachment] = []
    parts_messages = []
    for message in messages:
        attached = message_images(message)
        if attached:
            if len(attached) > MAX_IMAGES_PER_MESSAGE:
                raise ImageError(f"a message can hold {MAX_IMAGES_PER_MESSAGE} images; this one has {len(attached)}")
            images += attached
            content = [{"type": "image"} for _ in attached] + [{"type": "text", "text": message["content"]}]
            parts_messages.append({"role": message["role"], "content": content})
        else:
            parts_messages.append({"role": message["role"], "content": message["content"]})
    if not images:
        return render_and_encode(tokenizer, list(messages), add_generation_prompt=not continue_final,
                                 continue_final=continue_final, **variables), []
    pixels = [decoder.pixels(image) for image in images]
    marking = _MarkingTokenizer(tokenizer, vision.image_token_id)
    from ..text.chat_template import ChatTemplateError

    prompt = None
    try:
        prompt = render_and_encode(marking, parts_messages, add_generation_prompt=not continue_final,
                                   continue_final=continue_final, **variables)
    except ChatTemplateError:  # a text-only template that cannot take a list of parts
        pass
    if prompt is None or prompt.ids.count(vision.image_token_id) != len(images):
        plain = [{"role": m["role"], "content": "".join(f"{marking.placeholder}\n" for _ in message_images(m))
                  + m["content"]} for m in messages]
        prompt = render_and_encode(marking, plain, add_generation_prompt=not continue_final,
                                   continue_final=continue_final, **variables)
    if prompt.ids.count(vision.image_token_id) != len(images):
        raise ValueError(f"the chat template placed {prompt.ids.count(vision.image_token_id)} image markers "
                         f"for {len(images)} image(s)")
    ids: list[int] = []
    placed: list[_Placed] = []
    it = iter(zip(images, pixels))
    for token in prompt.ids:
        if token != vision.image_token_id:
            ids.append(token)
            continue
        image, image_pixels = next(it)
        count = vision.image_token_count(image_pixels)
        placed.append(_Placed(len(ids), count, image.key, image_pixels))
        ids += [token] * count
    marker = tokenizer.id_to_token(vision.image_token_id) if hasattr(tokenizer, "id_to_token") else "<image>"
    return RenderedPrompt(ids=ids, text=prompt.text.replace(marking.placeholder, marker or "<image>"),
                          contained_markers=prompt.contained_markers,
                          markers=prompt.markers, folded_system=prompt.folded_system), placed


class _MarkingTokenizer:
    """The tokenizer, with one addition for render_with_images: a placeholder string (random per
    call, private-use characters: no typed text holds it) that the template's own text turns into
    the image marker. Message text is escaped by render_and_encode before this sees it."""

    def __init__(self, tokenizer, image_token_id: int) -> None:
        self._tokenizer = tokenizer
        self._image_token_id = image_token_id
        nonce = "".join(chr(0xE100 + secrets.randbelow(0x1700)) for _ in range(4))
        self.placeholder = f"\ue002{nonce}\ue003"

    def __getattr__(self, name: str):
        return getattr(self._tokenizer, name)

    def encode_markup(self, text: str) -> list[int]:
        encode = getattr(self._tokenizer, "encode_markup", self._tokenizer.encode)
        ids: list[int] = []
        for i, piece in enumerate(re.split(re.escape(self.placeholder), text)):
            if i:
                ids.append(self._image_token_id)
            if piece:
                ids += list(encode(piece))
        return ids


def vision_info(model) -> dict:
    """ModelInfo's image fields for a loaded model."""
    if not isinstance(model, VisionDecoder):
        return {}
    return {"vision": True, "max_images": MAX_IMAGES_PER_MESSAGE,
            "image_tokens": int(getattr(model.vision, "default_image_tokens", 0))}


def load_vision_model(spec: str, device: str = "auto", context_len: Optional[int] = None, progress=None,
                       adapter: Optional[str] = None, weights: str = "auto", **_ignored):
    """engine.loader.LoadedModel for a vision model folder: its decoder wrapped with the images.
    Vision models load in float32 only: `weights` other than auto/float32 is refused."""
    import time

    from ..text.tokenizer import Tokenizer
    from ..weights.hf_loader import hf_sampling_defaults
    from .device import choose_device
    from .loader import LoadedModel

    if adapter:
        raise ValueError("a LoRA adapter on a vision model is not supported yet")
    if weights not in ("auto", "float32"):
        raise ValueError(f"--weights {weights} is not supported for vision models yet: they load in float32 "
                         "(choose auto or float32)")
    start = time.perf_counter()
    path = Path(spec).expanduser()
    target = choose_device(device)
    report = progress or (lambda stage, fraction: None)
    report("config", 0.0)
    decoder, vision = load_vision(path, device=str(target),
                                  progress=lambda done, total: report("weights", done / total if total else 0.0))
    report("tokenizer", 0.0)
    tokenizer = Tokenizer.from_hf_folder(path)
    model = VisionDecoder(decoder, vision)
    report("ready", 1.0)
    return LoadedModel(name=decoder.config.name or path.name, path=path, kind="hf-folder", config=decoder.config,
                       model=model, tokenizer=tokenizer, device=target, dtype=torch.float32,
                       load_s=time.perf_counter() - start, sampling_defaults=hf_sampling_defaults(path),
                       weights="float32", weights_reason="vision models load in float32")


def estimate_vision_model(spec: str, device: str = "auto", context_len: Optional[int] = None, **_ignored) -> dict:
    """engine.loader.estimate_model's dict for a vision model folder (float32, the vision tower and
    projector counted with the weights); read from its config only."""
    from dataclasses import replace

    from ..model.transformer import Transformer
    from ..model.vision import LlavaModel
    from ..weights.llava import read_llava_config
    from .device import available_memory, choose_device, estimate_memory
    from .weights_option import fit_word

    path = Path(spec).expanduser()
    _family, config, llava = read_llava_config(path)
    with torch.device("meta"):
        shell = LlavaModel(llava, Transformer(replace(config, n_layers=1)))
    vision_params = sum(p.numel() for n, p in shell.named_parameters() if not n.startswith("decoder."))
    target = choose_device(device)
    context = min(context_len or config.max_seq_len, config.max_seq_len)
    estimate = estimate_memory(config, context, torch.float32)
    estimate = replace(estimate, weights_bytes=estimate.weights_bytes + 4 * vision_params)
    free = available_memory(target)
    return {"name": config.name or path.name, "n_params": config.n_params + vision_params, "context_len": context,
            "device": str(target), "dtype": "float32", "memory": estimate.describe(),
            "memory_bytes": estimate.total_bytes, "memory_parts": estimate.parts(), "free_bytes": free,
            "fits": free is None or estimate.total_bytes <= free, "weights": "float32",
            "fit": fit_word(estimate.total_bytes, free), "options": {}}
