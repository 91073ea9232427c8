"""`/image` in `chatapp chat`: images attached to the next message.

    /image PATH     attach an image (several allowed, up to the model's limit)
    /image          list the attached images
    /image clear    drop them

Each image is opened and checked when attached (text.images.open_image: sizes before decoding,
damaged files), so a bad one is one line and the others stay. A text-only model refuses /image
with one line and the chat goes on. The images go with the next message and are dropped only
once its reply has been written (a message that fails keeps them for the next try).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class PendingImages:
    """The images waiting for the next message, for a model that sees images (`vision`) or not."""

    model: str
    vision: bool
    max_images: int = 0  # 0: no limit the model states
    images: list = field(default_factory=list)  # engine.vision.ImageAttachment
    sizes: list = field(default_factory=list)  # (width, height) of each

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
        self.images.append(ImageAttachment(data, path.name))
        self.sizes.append((image.width, image.height))
        return f"(image {path.name} ({image.width}×{image.height}) goes with the next message: {self._count()})\n"

    def listing(self) -> str:
        if not self.images:
            return "(no images attached; /image PATH attaches one to the next message)\n"
        lines = [f"  {i}. {image.name} ({w}×{h})"
                 for i, (image, (w, h)) in enumerate(zip(self.images, self.sizes), start=1)]
        return f"(the next message's images: {self._count()})\n" + "\n".join(lines) + "\n"

    def _count(self) -> str:
        n = len(self.images)
        limit = f" of at most {self.max_images}" if self.max_images else ""
        return f"{n}{limit} image{'s' if n != 1 else ''}"

    def clear(self) -> None:
        self.images, self.sizes = [], []
