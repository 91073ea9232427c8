"""`/image` in `chatapp chat`: images attached to the next message.

    /image PATH     attach an image (several allowed, up to the model's limit)
    /image          list the attached images
    /image clear    drop them

Each image is opened and checked when attached (text.images.open_image: sizes before decoding,
damaged files), so a bad one is one line and the others stay; the context tokens it will fill (the
model's cost for that image) are shown then, with the total. A text-only model refuses /image
with one line and the chat goes on. The images go with the next message and are dropped only
once its reply has been written (a message that fails keeps them for the next try).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional


@dataclass
class PendingImages:
    """The images waiting for the next message, for a model that sees images (`vision`) or not."""

    model: str
    vision: bool
    max_images: int = 0  # 0: no limit the model states
    images: list = field(default_factory=list)  # engine.vision.ImageAttachment
    sizes: list = field(default_factory=list)  # (width, height) of each
    # the context positions an image fills (ChatBackend.image_cost), shown before sending
    cost: Optional[Callable] = None
    costs: list = field(default_factory=list)  # of each image, None where unknown

    @staticmethod
    def is_command(text: str) -> bool:
        return text == "/image" or text.startswith("/image ")

    def command(self, text: str) -> str:
        """Run one `/image ...` line; the line to show (ends with a newline)."""
        arg = text[len("/image"):].strip()
        if not arg:
            return self.listing()
        if arg == "clear":
            count = len(self.images)
            self.clear()
            return f"({count} image{'s' if count != 1 else ''} removed from the next message)\n"
        return self.attach(arg)

    def attach(self, path_text: str) -> str:
        from ..engine.vision import ImageAttachment
        from ..text.images import ImageError, open_image

        if not self.vision:
            return (f"(this model cannot see images ({self.model}); load a vision model to use /image, "
                    f"or go on with text)\n")
        if len(path_text) >= 2 and path_text[0] == path_text[-1] and path_text[0] in "'\"":
            path_text = path_text[1:-1]  # a quoted path (spaces)
        if self.max_images and len(self.images) >= self.max_images:
            return f"error: a message can hold {self.max_images} images; /image clear to start again\n"
        path = Path(path_text).expanduser()
        try:
            image = open_image(path)  # checks the size before decoding
            data = path.read_bytes()
        except ImageError as exc:
            return f"error: {exc}\n"
        except OSError as exc:
            return f"error: {path}: cannot read the image ({exc.strerror or exc})\n"
        attachment = ImageAttachment(data, path.name)
        try:  # the model's processor may refuse what Pillow read
            tokens = self.cost(attachment) if self.cost is not None else None
        except ValueError as exc:
            return f"error: {exc}\n"
        self.images.append(attachment)
        self.sizes.append((image.width, image.height))
        self.costs.append(tokens)
        return (f"(image {path.name} ({image.width}×{image.height}) goes with the next message: {self._count()}"
                f"{self._cost(tokens)})\n")

    def listing(self) -> str:
        if not self.images:
            return "(no images attached; /image PATH attaches one to the next message)\n"
        lines = [f"  {i}. {image.name} ({w}×{h}){f', {tokens} context tokens' if tokens is not None else ''}"
                 for i, (image, (w, h), tokens) in enumerate(zip(self.images, self.sizes, self.costs), start=1)]
        return f"(the next message's images: {self._count()}{self._cost()})\n" + "\n".join(lines) + "\n"

    def _cost(self, tokens: Optional[int] = None) -> str:
        """'; N context tokens, M in all' for the image just attached (or ', M context tokens in
        all' for the list); '' when the costs are unknown."""
        if any(c is None for c in self.costs) or not self.costs:
            return ""
        total = sum(self.costs)
        if tokens is None:
            return f", {total} context tokens in all"
        return f"; {tokens} context tokens, {total} in all"

    def _count(self) -> str:
        n = len(self.images)
        limit = f" of at most {self.max_images}" if self.max_images else ""
        return f"{n}{limit} image{'s' if n != 1 or self.max_images > 1 else ''}"  # "1 of at most 8 images"

    def clear(self) -> None:
        self.images, self.sizes, self.costs = [], [], []
