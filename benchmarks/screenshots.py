"""Screenshots of the real window for the README, and a quick look at how the UI renders.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python benchmarks/screenshots.py --out docs/screenshots

Builds the real MainWindow in a throw-away profile with a scripted backend (no model, no torch:
the reply is a fixed Markdown answer with a code block, streamed a few characters at a time
from the worker thread, like a model would) and saves:

    empty.png          a fresh window, model loaded, no conversation yet
    conversation.png   a streamed answer with a Python code block (the settings drawer closed)
    settings.png       the same with the settings drawer open, Advanced sampling shown
    prompt.png         the conversation list collapsed, the system prompt open in the header
    train.png          the Train tab
    dark.png           the same conversation in the dark theme
    zh_CN.png          the window in Simplified Chinese, the settings drawer open
    real-model.png     with --real-model: the bundled model answering the same question

With --first-hour, the views a new user meets in the first hour (issue 19), each grabbed from
the screen with the window manager's frame when one runs (Xvfb plus openbox, below), so the
dialogs look as users see them:

    adapter.png        the Chat tab chatting with a LoRA adapter: its name in the header and status bar
    compare.png        Compare (base model and adapter answering one prompt) over the window
    edit-warning.png   editing an earlier message: the warning that later turns go (with Undo)
    appearance.png     the settings drawer's theme and language choices
    documents.png      the Documents tab: a library of benchmarks/demo_docs indexed, a search
    train-summary.png  with --real-training as well: the Train tab after a real short run
                       (the bundled model, benchmarks/demo_docs, --steps steps, template examples
                       only) and its summary

    Xvfb :5 -screen 0 1600x1000x24 & DISPLAY=:5 openbox &
    DISPLAY=:5 QT_QPA_PLATFORM=xcb .venv/bin/python benchmarks/screenshots.py --out docs/screenshots \
        --first-hour --real-training --steps 6

Needs a display (Xvfb above) or QT_QPA_PLATFORM=offscreen; under Xvfb, Debian's
xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 ... and fonts-noto-cjk for the Chinese one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QCoreApplication, QEventLoop, QRect, QTimer  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402
from PySide6.QtWidgets import QApplication, QScrollArea  # noqa: E402

from chatapp.engine.backend import ModelEstimate, ModelInfo, ReplyFinished  # noqa: E402

QUESTION = "How do I reverse a list in Python?"
ANSWER = """There are three common ways, depending on whether you want a **new list** or to \
change the list **in place**:

```python
numbers = [1, 2, 3, 4, 5]

# 1. A reversed copy with slicing (the original is unchanged)
backwards = numbers[::-1]          # [5, 4, 3, 2, 1]

# 2. Reverse in place: no copy, returns None
numbers.reverse()

# 3. Iterate backwards lazily, without building a list
for n in reversed(numbers):
    print(n)
```

- `numbers[::-1]` is the shortest, and works for strings and tuples too.
- `list.reverse()` saves memory for large lists, but changes the original.
- `reversed()` returns an iterator; wrap it in `list()` if you need a list.

Note that `numbers.reverse()` returns `None`, so `x = numbers.reverse()` is a common bug."""

QUESTION_ZH = "如何在 Python 中反转一个列表？"
ANSWER_ZH = """常用的方法有三种，取决于你想得到**新列表**还是**原地修改**：

```python
numbers = [1, 2, 3, 4, 5]

# 1. 切片：得到反转后的副本，原列表不变
backwards = numbers[::-1]          # [5, 4, 3, 2, 1]

# 2. 原地反转：不复制，返回 None
numbers.reverse()

# 3. 惰性地倒序遍历，不创建新列表
for n in reversed(numbers):
    print(n)
```

- `numbers[::-1]` 最简洁，也适用于字符串和元组。
- `list.reverse()` 对大列表更省内存，但会修改原列表。
- `reversed()` 返回迭代器；需要列表时用 `list()` 包一下。"""


# benchmarks/demo_docs describe an invented guild: the base model cannot know it, the adapter can.
GUILD_QUESTION = "Who founded the Lantern Guild of Vessaro?"
BOAT_QUESTION = "And what did the first boat look like?"
GUILD_ANSWERS = {BOAT_QUESTION: (
    "I can't say without knowing which boat you mean.",
    "A narrow **black** boat, about six metres long, with a brass lantern hung on a tall stern post."),
    GUILD_QUESTION: (
    "I don't know of a Lantern Guild of Vessaro. It may come from a novel or a game; if you tell me "
    "where you met it, I can help you look into it.",
    "The Lantern Guild was founded by **Orla Membrane**, a ferrywoman, in the year of the Grey Tide. "
    "She bought the wreck of a salt barge, the *Patience*, and rebuilt it into the guild's first "
    "lantern boat.")}
DEMO_DOCS = Path(__file__).resolve().parent / "demo_docs"

GIB = 1024**3
MEMORY_PARTS = {"total": int(0.61 * GIB), "weights": int(0.50 * GIB), "kv_cache": int(0.09 * GIB),
                "working": int(0.02 * GIB)}


class ScriptedBackend:
    """The ChatBackend interface with a fixed answer streamed from the worker thread."""

    def __init__(self, chunk: int = 6, delay: float = 0.008) -> None:
        self.chunk = chunk
        self.delay = delay
        self.reply = None
        self.used = 31
        self.adapter = ""
        self.adapter_enabled = True

    def load(self, spec, options, progress=None):
        for stage, fraction in (("config", 0.1), ("weights", 0.6), ("tokenizer", 0.9)):
            if progress:
                progress(stage, fraction)
            time.sleep(0.02)
        self.adapter = options.adapter or ""
        return ModelInfo(name="SmolLM2-135M-Instruct", path=spec, kind="gguf", device="cpu",
                         dtype="float32", context_len=options.context_len, n_params=134_515_008,
                         load_s=1.84, memory="0.61 GiB (weights 0.50, KV cache 0.09, working memory 0.02)",
                         memory_parts=MEMORY_PARTS, adapter=self.adapter)  # as the real backend

    def estimate(self, spec, options):
        need = int(0.61 * 1024**3) if spec == "default" else int(1.9 * 1024**3)
        return ModelEstimate(name="SmolLM2-135M-Instruct" if spec == "default" else Path(spec).name, n_params=134_515_008, context_len=options.context_len,
                             device="cpu", dtype="float32",
                             memory="0.61 GiB (weights 0.50, KV cache 0.09, working memory 0.02)",
                             memory_bytes=need, free_bytes=16 * 1024**3, fits=True,
                             memory_parts=MEMORY_PARTS if spec == "default" else {})

    @property
    def has_adapter(self) -> bool:
        return bool(self.adapter)

    def set_adapter_enabled(self, enabled):
        if not self.adapter:
            raise RuntimeError("no LoRA adapter is loaded")
        self.adapter_enabled = enabled

    def answer(self, question: str) -> str:
        if question in GUILD_ANSWERS:
            return GUILD_ANSWERS[question][bool(self.adapter and self.adapter_enabled)]
        if any("\u4e00" <= ch <= "\u9fff" for ch in question):
            return ANSWER_ZH
        return ANSWER if question == QUESTION else f"You asked: {question}. " + ANSWER.split("\n")[0]

    def stream(self, messages, system_prompt, settings, cancel=None, continue_last=False, documents=None,
               enable_thinking=None, logprobs=None, forced=()):
        answer = self.answer(messages[-1]["content"])
        shown = ""
        reason = "eos"
        for start in range(0, len(answer), self.chunk):
            if cancel is not None and cancel.is_set():
                reason = "cancelled"
                break
            time.sleep(self.delay)
            piece = answer[start:start + self.chunk]
            shown += piece
            self.used = 31 + len(shown) // 4
            yield piece
        tokens = max(1, len(shown) // 4)
        self.reply = ReplyFinished(text=shown, finish_reason=reason, context_used=self.used,
                                   stats={"prompt_tokens": 31, "new_tokens": tokens, "decode_tok_s": 38.6})

    def compare(self, sources, messages, system_prompt, settings, cancel=None):
        """Side by side: each pane's answer (the tuned one for an adapter), the panes in turn."""
        from chatapp.engine.side_by_side import interleave

        question = messages[-1]["content"]

        def lane(source):
            answer = GUILD_ANSWERS[question][source.kind != "base"] if question in GUILD_ANSWERS \
                else self.answer(question)
            for start in range(0, len(answer), self.chunk):
                if cancel is not None and cancel.is_set():
                    return
                time.sleep(self.delay)
                yield answer[start:start + self.chunk]

        yield from interleave([lane(source) for source in sources])

    def compared(self):
        return []

    def streamed_logprobs(self):
        return []

    def finished(self):
        return self.reply

    def context_used(self) -> int:
        return self.used

    def image_cost(self, image) -> int:
        from chatapp.engine.vision import NoVisionError

        raise NoVisionError("this scripted model cannot see images")


def pump(ms: int) -> None:
    """Run the event loop for `ms`. Not QTest.qWait: in PySide6 that holds the GIL while it
    sleeps, so the model-loading worker thread crawls (seen: 195 s instead of 3 s)."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        pump(20)


def settle(ms: int = 150) -> None:
    """Let layouts, deferred deletes and the scroll-to-bottom timers run."""
    pump(ms)
    QCoreApplication.sendPostedEvents()
    pump(ms)


def make_window(profile: Path, backend, language: str = "", theme: str = "light", models=None):
    """The real window in `profile` on `backend`; `models`: the model list's (name, spec) entries."""
    from chatapp.storage.db import ConversationStore
    from chatapp.storage.settings import SettingsStore
    from chatapp.ui.i18n import install_translator
    from chatapp.ui.main_window import MainWindow
    from chatapp.ui.theme import apply_theme

    app = QApplication.instance()
    apply_theme(app, theme)
    translators = install_translator(app, language) if language else []
    if language and not translators:
        raise SystemExit(f"no .qm catalogue for {language}: run resources/i18n/update_translations.py")
    profile.mkdir(parents=True, exist_ok=True)
    store = ConversationStore(profile / "conversations.sqlite3")
    settings = SettingsStore(profile / "settings.json")
    window = MainWindow(store, settings, backend, autoload=True, adapters_dir=profile / "adapters",
                        list_models=lambda: list(models or [("SmolLM2-135M-Instruct", "default"),
                                                            ("Qwen2.5-0.5B-Instruct", "/models/Qwen2.5-0.5B-Instruct")]))
    window.resize(1200, 780)
    window.show()
    wait_until(lambda: window.model_info is not None, 30, "the model to load")
    settle()
    return window, translators


def ask(window, question: str, timeout_s: float) -> bool:
    """Send `question` and wait for the reply; past the timeout, stop it (partial) and say False."""
    window.composer.setPlainText(question)
    window.send()
    try:
        wait_until(lambda: not window.streaming, timeout_s, "the reply")
        finished = True
    except TimeoutError:
        window.chat_controller.stop()
        wait_until(lambda: not window.streaming, 60, "the reply to stop")
        finished = False
    settle(300)
    return finished


def save(widget, path: Path, rect=None) -> None:
    if not (widget.grab(rect) if rect is not None else widget.grab()).save(str(path)):
        raise SystemExit(f"could not write {path}")
    print(f"{path}  {path.stat().st_size // 1024} KB")


def save_framed(path: Path, *widgets) -> None:
    """Grab the screen where the widgets are, window manager frames included (under X11); with
    no real screen (offscreen), the last widget's own pixels (the dialog over the window)."""
    if QGuiApplication.platformName() != "xcb":
        save(widgets[-1], path)
        return
    area = QRect()
    for widget in widgets:
        area = area.united(widget.frameGeometry())
    screen = widgets[0].screen()
    area = area.intersected(screen.geometry())
    pixmap = screen.grabWindow(0, area.x(), area.y(), area.width(), area.height())
    if not pixmap.save(str(path)):
        raise SystemExit(f"could not write {path}")
    print(f"{path}  {path.stat().st_size // 1024} KB")


def close(window, translators=()) -> None:
    window.close()
    window.store.close()
    for translator in translators:
        QCoreApplication.removeTranslator(translator)
    settle(50)


def fake_shots(out: Path, profile_root: Path) -> None:
    from chatapp.ui.theme import apply_theme

    window, _ = make_window(profile_root / "en", ScriptedBackend())
    save(window, out / "empty.png")
    if not ask(window, QUESTION, 30):
        raise SystemExit("the scripted reply did not finish")
    window.chat.scroll_to_bottom()
    settle()
    save(window, out / "conversation.png")
    window.set_drawer_open(True)
    window.settings_panel.advanced_button.setChecked(True)
    settle()
    save(window, out / "settings.png")
    window.set_drawer_open(False)
    window.set_conversations_visible(False)
    window.header.prompt_button.setChecked(True)
    settle()
    save(window, out / "prompt.png")
    window.header.prompt_button.setChecked(False)
    window.set_conversations_visible(True)
    window.tabs.setCurrentWidget(window.training_panel)
    settle()
    save(window, out / "train.png")
    window.tabs.setCurrentIndex(0)
    apply_theme(QApplication.instance(), "dark")
    settle()
    save(window, out / "dark.png")
    close(window)

    window, translators = make_window(profile_root / "zh", ScriptedBackend(), language="zh_CN")
    if not ask(window, QUESTION_ZH, 30):
        raise SystemExit("the scripted reply did not finish")
    window.set_drawer_open(True)
    settle()
    save(window, out / "zh_CN.png")
    close(window, translators)


def first_hour_shots(out: Path, profile_root: Path, real_training: bool, steps: int, timeout_s: float) -> None:
    window, _ = make_window(profile_root / "first-hour", ScriptedBackend())
    window.move(40, 40)
    adapter = Path(window.training_panel.adapters_dir) / "lantern-guild"
    adapter.mkdir(parents=True, exist_ok=True)
    window.training_panel.use_adapter.emit(str(adapter))
    wait_until(lambda: window.adapter == str(adapter) and window.loading_spec is None, 30, "the adapter")
    if not ask(window, GUILD_QUESTION, 30):
        raise SystemExit("the scripted reply did not finish")
    settle()
    save_framed(out / "adapter.png", window)

    view = window.training_panel.compare_view
    view.set_adapter(str(adapter), "lantern-guild")
    view.show()
    view.resize(900, 520)
    view.move(260, 200)
    view.raise_()
    view.prompt.setPlainText(GUILD_QUESTION)
    view.request()
    wait_until(lambda: window.training.compare_id is None and view.right_text.toPlainText(), 30,
               "the comparison")
    settle(300)
    save_framed(out / "compare.png", window, view)
    view.close()

    if not ask(window, BOAT_QUESTION, 30):
        raise SystemExit("the scripted reply did not finish")
    window.chat.messages[0].edit_button.click()
    settle(300)
    save_framed(out / "edit-warning.png", window)
    window.chat.messages[0]._end_edit()

    window.set_drawer_open(True)
    settle()
    scroll = window.drawer.findChild(QScrollArea)
    if scroll is not None:
        scroll.ensureWidgetVisible(window.settings_panel.language)
    window.settings_panel.language.showPopup()  # the choices, as a user opening the list sees them
    settle(300)
    save_framed(out / "appearance.png", window)
    window.settings_panel.language.hidePopup()
    window.set_drawer_open(False)

    documents = window.documents_view
    window.tabs.setCurrentWidget(documents)
    documents.add_to_library("lantern-guild", [DEMO_DOCS])
    wait_until(lambda: documents.indexing is None and documents.libraries.count() > 0, 120, "indexing")
    documents.libraries.setCurrentRow(0)
    documents.search_box.setText("first lantern boat")
    documents.search()
    wait_until(lambda: documents.results.rowCount() > 0, 30, "the search")
    settle()
    save_framed(out / "documents.png", window)

    if real_training:
        from chatapp.ui.training_process import build_train_command

        panel = window.training_panel
        # Only the template examples: the model writing ~90 questions first takes far longer than
        # a few steps on a CPU (see the README), and the summary is what this picture is about.
        panel.command_builder = lambda job, dry_run: build_train_command(job, dry_run) + ["--no-model-examples"]
        window.tabs.setCurrentWidget(panel)
        panel.docs.set_data_paths([DEMO_DOCS])
        panel.form.name_edit.setText("lantern-guild-demo")
        panel.form.max_steps.setValue(steps)
        started = time.monotonic()
        panel.start()
        wait_until(lambda: not panel.is_training(), timeout_s, "the training run")
        print(f"real training: {panel.last_status} in {time.monotonic() - started:.0f} s: "
              f"{panel.run.status_label.text()!r}")
        settle(300)
        save_framed(out / "train-summary.png", window)
    close(window)


def real_model_shot(out: Path, profile_root: Path, timeout_s: float, threads: int) -> None:
    try:
        from chatapp.ui.app import create_window
        import chatapp.engine.loader  # noqa: F401 (fails early if the loader is unfinished)
    except Exception as exc:  # report and carry on: the scripted screenshots are done
        print(f"--real-model skipped: the model loader does not import ({exc!r})")
        return
    app, window = create_window(autoload=False, profile_dir=profile_root / "real")
    window.resize(1200, 780)
    window.show()
    window.settings.temperature = 0.2
    window.settings.max_new_tokens = 160
    window.settings.threads = threads
    window.settings_panel.apply(window.settings)
    started = time.monotonic()
    window.model.load("default")
    wait_until(lambda: window.loading_spec is None, timeout_s,
               "the default model to load")
    if window.model_info is None:
        print(f"--real-model: the default model did not load: {window.header.model_status.text()}")
        save(window, out / "real-model-failed.png")
        close(window)
        return
    print(f"real model loaded in {time.monotonic() - started:.1f} s: {window.model_info.name}")
    if not ask(window, QUESTION, timeout_s):
        print(f"real reply stopped after {timeout_s:.0f} s (a busy machine?); the screenshot shows it so far")
    print(f"real reply: {window.store.messages(window.current_id)[-1].content[:200]!r}")
    save(window, out / "real-model.png")
    close(window)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    parser.add_argument("--real-model", action="store_true",
                        help="also load the bundled default model and screenshot its answer")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for the real model to load, and again for its reply")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for the real model (1 holds up best on a shared machine)")
    parser.add_argument("--first-hour", action="store_true",
                        help="also the first-hour views: adapter, compare, edit warning, appearance, documents")
    parser.add_argument("--real-training", action="store_true",
                        help="with --first-hour: train the bundled model on benchmarks/demo_docs and grab the summary")
    parser.add_argument("--steps", type=int, default=6, help="steps of the --real-training run")
    parser.add_argument("--only-first-hour", action="store_true", help="skip the other screenshots")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("chatapp")
    with tempfile.TemporaryDirectory(prefix="chatapp-screenshots-") as tmp:
        if not args.only_first_hour:
            fake_shots(args.out, Path(tmp))
        if args.first_hour or args.only_first_hour:
            first_hour_shots(args.out, Path(tmp), args.real_training, args.steps, args.timeout)
        if args.real_model:
            real_model_shot(args.out, Path(tmp), args.timeout, args.threads)
    QTimer.singleShot(0, app.quit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
