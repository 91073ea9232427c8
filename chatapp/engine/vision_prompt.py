"""Prompts with images for the chat engine: attachments, `VisionDecoder` (the decoder as the Engine
sees it, image features spliced in) and `render_with_images`.

The session renders the conversation with the chat template; where the template writes a model's
image marker (`config.marker_token_id`: LLaVA's and Idefics3's `<image>`, Gemma 3's
`<start_of_image>`) the image's markup goes instead, as the model's processor writes it
(text.images.image_markup_text: Idefics3's tiles with their row/column tokens, Gemma 3's
`\\n\\n<start_of_image>` + image tokens + `<end_of_image>\\n\\n`), and the whole text is encoded at
once as transformers' processors do. Only the image-token positions inside each image's run take
the image's features, in order. The Engine's prefix cache compares token ids, and two different
images give the same ids, so `VisionDecoder.set_prompt` cuts the cached prefix back to the first
image that changed (and never inside an image: Gemma 3's image tokens attend to each other both
ways, so an image is prefilled whole).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Optional, Protocol, Sequence, Union

import torch
from torch import nn

from ..text.images import ImageError, open_image_bytes
from ..text.prompt import RenderedPrompt, render_and_encode

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
    """What the engine needs of a vision model (engine.vision.ModelVision, for every family)."""

    image_token_id: int  # the positions that take image features
    marker_token_id: int  # what a chat template writes for an image
    uses_blocks: bool  # image tokens attend both ways inside each image (Gemma 3): a full KV cache
    name: str

    def prepare(self, image: Any):
        """A Pillow image -> text.images.PreparedImage (pixels (tiles, C, H, W), tile grid)."""

    def image_token_count(self, prepared) -> int:
        """Image-token positions the prepared image fills."""

    def markup(self, tokenizer, prepared) -> Union[list[int], str]:
        """What stands for the image in the prompt: ids, or text encoded with its neighbours."""

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """One image's pixels (tiles, C, H, W) -> features (image_token_count, decoder dim)."""

    def attention_blocks(self, tokens: torch.Tensor) -> Optional[torch.Tensor]:
        """(T,) block ids of a one-row pass's image runs (uses_blocks only)."""


@dataclass
class _Placed:
    positions: tuple[int, ...]  # the image's image-token positions in the prompt, in order
    key: str
    pixels: torch.Tensor  # (tiles, C, H, W)

    @property
    def start(self) -> int:
        return self.positions[0]

    @property
    def end(self) -> int:
        return self.positions[-1] + 1

    @property
    def count(self) -> int:
        return len(self.positions)


@dataclass
class _Prepared:
    prepared: Any  # text.images.PreparedImage
    pixels: torch.Tensor  # (tiles, C, H, W)


class VisionDecoder(nn.Module):
    """The decoder as the Engine sees it, with the current prompt's images spliced in."""

    def __init__(self, decoder: nn.Module, vision: VisionModel) -> None:
        super().__init__()
        self.decoder = decoder
        self.vision = vision
        self.vision_parts = getattr(vision, "model", None)  # registered, so .to() and memory see it
        self._placed: list[_Placed] = []
        self._prepared: OrderedDict[str, _Prepared] = OrderedDict()
        self._features: OrderedDict[str, torch.Tensor] = OrderedDict()

    # -- what the Engine uses of a Transformer ----------------------------------------------
    @property
    def config(self):
        return self.decoder.config

    def setup_cache(self, *args, window_cache: Optional[bool] = None, **kwargs):
        """The decoder's KV cache; a model whose images attend both ways (Gemma 3) needs every
        position kept (a sliding layer's window cache builds a causal mask of its own): asked for
        a window cache, it refuses as the model does."""
        if self.vision.uses_blocks:
            if window_cache:
                raise ValueError("attention_blocks need a full KV cache: setup_cache(..., window_cache=False)")
            window_cache = False
        if window_cache is not None:
            kwargs["window_cache"] = window_cache
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
        hits = []
        for placed in self._placed:
            if placed.start <= last and placed.end > first:
                where = self._inside(placed, first, last, tokens.device)
                if bool((tokens[0, where - first] == self.vision.image_token_id).all()):
                    hits.append((placed, where))  # a prompt run without set_prompt gets no earlier image
        if not hits:
            return self.decoder(tokens, input_pos, last_only=last_only)
        embeds = self.decoder.embed(tokens).clone()  # (1, T, dim), Gemma's scaled; image features are not
        for placed, where in hits:
            features = self._features_of(placed).to(embeds.dtype)  # (count, dim)
            offsets = torch.tensor(placed.positions, device=where.device)
            embeds[0, where - first] = features[(offsets >= first) & (offsets <= last)]
        blocks = self.vision.attention_blocks(tokens) if self.vision.uses_blocks else None
        return self.decoder(tokens, input_pos, last_only=last_only, embeds=embeds, attention_blocks=blocks)

    @staticmethod
    def _inside(placed: _Placed, first: int, last: int, device) -> torch.Tensor:
        """The image's positions that this pass (first..last) covers."""
        positions = torch.tensor(placed.positions, device=device)
        return positions[(positions >= first) & (positions <= last)]

    def _features_of(self, placed: _Placed) -> torch.Tensor:
        features = self._features.get(placed.key)
        if features is None:
            device = self.decoder.tok_embeddings.weight.device
            with torch.inference_mode():
                features = self.vision.embed(placed.pixels.to(device))  # (count, dim)
            if features.shape[0] != placed.count:
                raise ValueError(f"the image gives {features.shape[0]} features for {placed.count} positions")
            self._features[placed.key] = features
            while len(self._features) > _FEATURE_CACHE:
                self._features.popitem(last=False)
        else:
            self._features.move_to_end(placed.key)
        return features

    # -- prompts with images ------------------------------------------------------------------
    def prepared(self, image: ImageAttachment):
        """The image decoded and preprocessed (text.images.PreparedImage; ImageError when it cannot
        be used); cached by content."""
        return self._prepare(image).prepared

    def pixels(self, image: ImageAttachment) -> torch.Tensor:
        """The image's pixels (tiles, C, H, W) as the model's processor makes them."""
        return self._prepare(image).pixels

    def _prepare(self, image: ImageAttachment) -> _Prepared:
        key = image.key
        entry = self._prepared.get(key)
        if entry is None:
            prepared = self.vision.prepare(open_image_bytes(image.data, image.name))
            entry = _Prepared(prepared, torch.from_numpy(prepared.pixels))
            self._prepared[key] = entry
            while len(self._prepared) > _PIXEL_CACHE:
                self._prepared.popitem(last=False)
        else:
            self._prepared.move_to_end(key)
        return entry

    def set_prompt(self, engine, ids: Sequence[int], placed: list[_Placed]) -> None:
        """Make `placed` (the prompt's images) current; cut `engine`'s cached prefix back to the
        first image that differs from what the cache was computed with, and to an image's start
        where the reusable prefix would end inside it."""
        cut = len(ids)
        old = {p.start: p for p in self._placed}
        new = {p.start: p for p in placed}
        for start in sorted(set(old) | set(new)):
            a, b = old.get(start), new.get(start)
            if a is None or b is None or a.key != b.key or a.positions != b.positions:
                cut = min(cut, start)
                break
        cached = getattr(engine, "_cached", None)
        if cached is not None:
            common = 0
            for x, y in zip(cached[:cut], ids):
                if x != y:
                    break
                common += 1
            for p in placed:  # a prefix that stops inside an image runs the image again whole
                if p.start < common < p.end:
                    common = p.start
            if len(cached) > common:
                engine._cached = cached[:common]
        self._placed = list(placed)


def render_with_images(decoder: VisionDecoder, tokenizer, messages: Sequence[dict], *,
                       continue_final: bool = False, **variables) -> tuple[RenderedPrompt, list[_Placed]]:
    """Render `messages` (system first if any) with their images: each image's markup where the chat
    template places its marker (a template that takes text only gets one marker line per image
    before the message's text). Message text stays text, as render_and_encode keeps it."""
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
    prepared = [decoder._prepare(image) for image in images]
    runs = [vision.markup(tokenizer, entry.prepared) for entry in prepared]
    marker = tokenizer.id_to_token(vision.marker_token_id)
    if not marker:
        raise ValueError(f"the tokenizer has no token {vision.marker_token_id} for images")
    from ..text.chat_template import ChatTemplateError

    options = dict(add_generation_prompt=not continue_final, continue_final=continue_final, **variables)
    marking = _MarkingTokenizer(tokenizer, marker, runs)
    prompt = None
    try:
        prompt = render_and_encode(marking, parts_messages, **options)
    except ChatTemplateError:  # a text-only template that cannot take a list of parts
        pass
    if prompt is None or marking.seen != len(images):
        marking = _MarkingTokenizer(tokenizer, marker, runs)
        plain = [{"role": m["role"], "content": "".join(f"{marking.placeholder}\n" for _ in message_images(m))
                  + m["content"]} for m in messages]
        prompt = render_and_encode(marking, plain, **options)
    if marking.seen != len(images):
        raise ValueError(f"the chat template placed {marking.seen} image markers for {len(images)} image(s)")
    counts = [vision.image_token_count(entry.prepared) for entry in prepared]
    slots = [i for i, token in enumerate(prompt.ids) if token == vision.image_token_id]
    if len(slots) != sum(counts):
        raise ValueError(f"the prompt holds {len(slots)} image tokens for {sum(counts)} image positions")
    placed, at = [], 0
    for image, entry, count in zip(images, prepared, counts):
        placed.append(_Placed(tuple(slots[at:at + count]), image.key, entry.pixels))
        at += count
    return RenderedPrompt(ids=prompt.ids, text=prompt.text.replace(marking.placeholder, marker),
                          contained_markers=prompt.contained_markers,
                          markers=prompt.markers, folded_system=prompt.folded_system), placed


class _MarkingTokenizer:
    """The tokenizer as render_and_encode sees it for render_with_images: where the template's text
    holds the image marker (or a placeholder, random per call, private-use characters, that the
    text-only fallback writes) the next image's markup goes. Message text is escaped by
    render_and_encode before this sees it, so a marker typed by the user stays text."""

    def __init__(self, tokenizer, marker: str, runs: Sequence[Union[list[int], str]]) -> None:
        self._tokenizer = tokenizer
        self._runs = list(runs)
        self.seen = 0  # markers met, images placed or not
        nonce = "".join(chr(0xE100 + secrets.randbelow(0x1700)) for _ in range(4))
        self.placeholder = f"\ue002{nonce}\ue003"
        self._split = re.compile(f"{re.escape(self.placeholder)}|{re.escape(marker)}")
        self._marker = marker

    def __getattr__(self, name: str):
        return getattr(self._tokenizer, name)

    def _next_run(self) -> Union[list[int], str]:
        run = self._runs[self.seen] if self.seen < len(self._runs) else self._marker  # extra: counted, refused
        self.seen += 1
        return run

    def encode_markup(self, text: str) -> list[int]:
        encode = getattr(self._tokenizer, "encode_markup", self._tokenizer.encode)
        pieces = self._split.split(text)
        runs = [self._next_run() for _ in pieces[1:]]
        if all(isinstance(run, str) for run in runs):  # one text, encoded whole as the processors do
            return list(encode("".join(piece + (runs[i] if i < len(runs) else "") for i, piece in enumerate(pieces))))
        ids: list[int] = []
        for i, piece in enumerate(pieces):
            if i:
                run = runs[i - 1]
                ids += list(encode(run)) if isinstance(run, str) else list(run)
            if piece:
                ids += list(encode(piece))
        return ids
