"""Screenshot of a conversation with an image: the image in the user's message, a reply, a second
image waiting in the composer's tray (its context cost and the model's limit), and the first image
opened larger.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python benchmarks/images_screenshot.py \
        --out docs/screenshots/images.png

The real window in a throw-away profile with a scripted vision backend (no model, no torch): the
images go through the window's own path (decoded and thumbnailed off the GUI thread, stored with
the message). The picture is drawn here (a bar chart), so the run needs no files.
"""

from __future__ import annotations

import io
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from window_with_dialog import run  # noqa: E402  (puts the checkout and benchmarks/ on the path)

from PySide6.QtCore import QPoint  # noqa: E402

from screenshots import ScriptedBackend, ask, wait_until  # noqa: E402

from chatapp.engine.backend import ReplyFinished  # noqa: E402

QUESTION = "What does this chart show, and which month was best?"
ANSWER = ("It is a bar chart of monthly sales from January to June. Sales rise steadily from "
          "January, dip in April, and **June** is the best month, about twice January's figure.")


def chart_png(width: int = 440, height: int = 300) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    values = [40, 55, 62, 48, 70, 86]
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun"]
    draw.line([(50, 20), (50, height - 50), (width - 20, height - 50)], fill="black", width=2)
    step = (width - 90) // len(values)
    for i, (value, month) in enumerate(zip(values, months)):
        x = 70 + i * step
        top = height - 50 - value * 2.6
        draw.rectangle([x, top, x + step - 25, height - 52], fill=(66, 133, 244) if i != 5 else (219, 68, 55))
        draw.text((x + 8, height - 40), month, fill="black")
        draw.text((x + 8, top - 14), str(value), fill="black")
    draw.text((width // 2 - 50, 4), "Monthly sales", fill="black")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def photo_png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (300, 200), (135, 206, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 130, 300, 200], fill=(34, 139, 34))
    draw.ellipse([220, 20, 270, 70], fill=(255, 215, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


MODEL = "llava-1.5-7b-hf"
MODELS = [(MODEL, "/models/llava-1.5-7b-hf"), ("SmolLM2-135M-Instruct", "default")]
# LLaVA 1.5 7B in float32 as our estimate counts it: 7.06 B parameters (26.3 GiB), a 4096-token KV
# cache (2 x 32 layers x 4096 x 4096 floats, 4.0 GiB)
PARAMS = 7_063_427_072
MEMORY = "30.6 GiB (weights 26.3, KV cache 4.0, working memory 0.3)"
PARTS = {"total": int(30.6 * 1024**3), "weights": int(26.3 * 1024**3), "kv_cache": int(4.0 * 1024**3),
         "working": int(0.3 * 1024**3)}


class VisionBackend(ScriptedBackend):
    def load(self, spec, options, progress=None):
        info = super().load(spec, options, progress)
        return replace(info, name=MODEL, kind="hf-folder", vision=True, max_images=8, image_tokens=576,
                       n_params=PARAMS, memory=MEMORY, memory_parts=PARTS, load_s=9.7)

    def estimate(self, spec, options):
        estimate = super().estimate(spec, options)
        if spec != MODELS[0][1]:
            return estimate
        return replace(estimate, name=MODEL, n_params=PARAMS, memory=MEMORY, memory_bytes=PARTS["total"],
                       free_bytes=64 * 1024**3, memory_parts=PARTS)

    def image_cost(self, image) -> int:
        return 576  # LLaVA 1.5: one token per 14-pixel patch of a 336-pixel image, whatever its size

    def stream(self, messages, system_prompt, settings, cancel=None, continue_last=False, **_):
        shown = ""
        for start in range(0, len(ANSWER), self.chunk):
            shown += ANSWER[start:start + self.chunk]
            yield ANSWER[start:start + self.chunk]
        self.used = 640
        self.reply = ReplyFinished(text=shown, finish_reason="eos", context_used=self.used,
                                   stats={"prompt_tokens": 610, "new_tokens": len(shown) // 4, "decode_tok_s": 21.4})


def shoot(window):
    """The conversation with the chart, a second image waiting, and the chart opened larger (returned)."""
    tray = window.image_tray
    tray.add_bytes(chart_png(), "sales-chart.png")
    wait_until(lambda: len(tray.images) == 1, 30, "the image to be read")
    if not ask(window, QUESTION, 30):
        raise SystemExit("the scripted reply did not finish")
    row = window.chat.messages[0].images_row
    wait_until(lambda: not row.buttons[0].icon().isNull(), 30, "the message's thumbnail")
    tray.add_bytes(photo_png(), "garden.png")
    window.composer.setPlainText("And this one?")
    wait_until(lambda: len(tray.images) == 1, 30, "the second image")
    dialog = row.open(0)
    wait_until(lambda: dialog.shown, 30, "the larger view")
    return dialog, QPoint(window.width() - dialog.width() - 20, 150)


def choose_the_vision_model(profile: Path) -> None:
    """The profile's saved model is the LLaVA, so the model list shows what is loaded."""
    from chatapp.storage.settings import SettingsStore

    store = SettingsStore(profile / "settings.json")
    settings = store.load()
    settings.model = MODELS[0][1]
    store.save(settings)


def main(argv=None) -> int:
    return run(argv, __doc__, "images.png", VisionBackend(), shoot, prepare=choose_the_vision_model, models=MODELS)


if __name__ == "__main__":
    sys.exit(main())
