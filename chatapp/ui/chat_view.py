"""The conversation: one widget per message, Markdown prose and code blocks with copy buttons.

Long because a message's widget carries every action on it (copy, edit in place, regenerate,
continue, its versions `< 2/3 >`, sources, the prompt) and the view relays them by index.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication, QPalette
from PySide6.QtWidgets import (QFileDialog, QFrame, QHBoxLayout, QLabel, QMessageBox, QPlainTextEdit, QPushButton,
                               QScrollArea, QSizePolicy, QToolButton, QVBoxLayout, QWidget)

from ..text.thinking import split_thinking
from .highlight import CodeHighlighter
from .markdown import Segment, split_markdown
from .sources_view import PromptDialog, SourceDialog, SourceList
from .thinking_view import ThinkingBox
from .token_view import TokenView


def _tr(text: str) -> str:
    return QGuiApplication.translate("ChatView", text)


class CodeBlock(QFrame):
    MAX_LINES = 30  # taller blocks scroll inside themselves

    def __init__(self, segment: Segment, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("codeBlock")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 4, 6, 8)
        layout.setSpacing(2)
        header = QHBoxLayout()
        self.language = QLabel()
        self.language.setObjectName("codeLanguage")
        self.copy_button = QToolButton(text=_tr("Copy code"))
        self.copy_button.setAccessibleName(_tr("Copy code block"))
        self.copy_button.setAutoRaise(True)
        self.copy_button.clicked.connect(self.copy)
        header.addWidget(self.language)
        header.addStretch(1)
        header.addWidget(self.copy_button)
        layout.addLayout(header)
        self.editor = QPlainTextEdit(readOnly=True)
        self.editor.setObjectName("codeText")
        self.editor.setFrameShape(QFrame.NoFrame)
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
        self.editor.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.editor.setVerticalScrollBarPolicy(Qt.ScrollBarAsNeeded)
        self.editor.document().setDocumentMargin(2)
        # a long line brings a horizontal scroll bar, which needs room of its own
        self.editor.horizontalScrollBar().rangeChanged.connect(self._fit_height)
        layout.addWidget(self.editor)
        self.highlighter = CodeHighlighter(self.editor.document(), segment.language, self._dark())
        self.set_code(segment.text, segment.language)

    def _dark(self) -> bool:
        return self.editor.palette().color(QPalette.Base).lightness() < 128

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().changeEvent(event)
        if event.type() == QEvent.PaletteChange and hasattr(self, "highlighter"):
            self.highlighter.set_dark(self._dark())  # the theme changed

    def set_code(self, code: str, language: str = "") -> None:
        # while a reply streams, the fence line can arrive in pieces ("```pyt", "```python")
        self.language.setText(language or _tr("code"))
        self.highlighter.set_language(language)
        if self.editor.toPlainText() != code:
            self.editor.setPlainText(code)
        self._fit_height()

    def _fit_height(self) -> None:
        """Exactly the lines of code (up to MAX_LINES), so no blank space and no vertical bar."""
        # measured per line: a line with CJK text falls back to a taller font than the monospace one
        document = self.editor.document()
        layout = document.documentLayout()
        block, lines, text_height = document.firstBlock(), 0, 0.0
        while block.isValid() and lines < self.MAX_LINES:
            text_height += layout.blockBoundingRect(block).height()
            block, lines = block.next(), lines + 1
        height = text_height + 2 * document.documentMargin() + 2 * self.editor.frameWidth() + 2
        bar = self.editor.horizontalScrollBar()
        if bar.maximum() > 0:
            height += bar.sizeHint().height()
        self.editor.setFixedHeight(int(height))

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.editor.toPlainText())
        _flash(self.copy_button, _tr("Copied"), _tr("Copy code"))


def _flash(button: QToolButton, text: str, back: str, ms: int = 1500) -> None:
    """Say on the button that it worked (Copy -> Copied), then put its label back."""
    button.setText(text)
    QTimer.singleShot(ms, button, lambda: button.setText(back))


class MessageWidget(QFrame):
    copy_requested = Signal(int)
    edit_requested = Signal()
    edit_submitted = Signal(int, str)
    edit_with_images = Signal(int, str, object)  # index, text, the new version's images (some removed or added)
    add_images_requested = Signal()  # while editing: "Add image…"
    regenerate_requested = Signal()
    continue_requested = Signal()
    prompt_requested = Signal()  # "What the model saw"
    branch_step = Signal(int)  # -1: the previous version of this message, +1: the next
    alternative_chosen = Signal(int, int)  # token position, token id: continue from this alternative
    delete_version_requested = Signal()

    def __init__(self, index: int, role: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.role = role
        self.text = text
        self.setObjectName(f"{role}Message")
        self.setFrameShape(QFrame.StyledPanel)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Maximum)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(12, 6, 12, 10)
        header = QHBoxLayout()
        self.role_label = QLabel(f"<b>{_tr('You') if role == 'user' else _tr('Assistant')}</b>")
        self.status_label = QLabel("")
        self.status_label.setObjectName("messageStatus")
        # the status takes the free width and wraps there (a long note never widens the column)
        self.status_label.setWordWrap(True)
        self.status_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        header.addWidget(self.role_label)
        # `< 2/3 >`: the versions of this message (regenerate, edit-and-resend), shown when there are several
        self.version = (1, 1)
        self.previous_button = QToolButton(text="<")
        self.previous_button.setAccessibleName(_tr("Previous version"))
        self.previous_button.setAutoRaise(True)
        self.previous_button.clicked.connect(lambda: self.branch_step.emit(-1))
        self.version_label = QLabel("")
        self.version_label.setObjectName("messageVersion")
        self.next_button = QToolButton(text=">")
        self.next_button.setAccessibleName(_tr("Next version"))
        self.next_button.setAutoRaise(True)
        self.next_button.clicked.connect(lambda: self.branch_step.emit(1))
        self.delete_version_button = QToolButton(text=_tr("Delete version"))
        self.delete_version_button.setAccessibleName(_tr("Delete this version and what follows it"))
        self.delete_version_button.clicked.connect(self.delete_version_requested)
        for widget in (self.previous_button, self.version_label, self.next_button):
            header.addWidget(widget)
        header.addWidget(self.status_label, 1)
        self.copy_button = QToolButton(text=_tr("Copy"))
        self.copy_button.setAccessibleName(_tr("Copy message"))
        self.copy_button.clicked.connect(self.copy)
        header.addWidget(self.copy_button)
        self.edit_button = QToolButton(text=_tr("Edit"))
        self.edit_button.setAccessibleName(_tr("Edit message and resend"))
        self.edit_button.clicked.connect(self.edit_requested)
        self.edit_button.setVisible(role == "user")
        header.addWidget(self.edit_button)
        self.regenerate_button = QToolButton(text=_tr("Regenerate"))
        self.regenerate_button.setAccessibleName(_tr("Regenerate reply"))
        self.regenerate_button.clicked.connect(self.regenerate_requested)
        self.regenerate_button.setVisible(False)
        header.addWidget(self.regenerate_button)
        self.continue_button = QToolButton(text=_tr("Continue"))
        self.continue_button.setAccessibleName(_tr("Continue the reply where it stopped"))
        self.continue_button.clicked.connect(self.continue_requested)
        self.continue_button.setVisible(False)
        self.can_continue = False  # the reply stopped before its end (token limit, Stop)
        header.addWidget(self.continue_button)
        self.prompt_button = QToolButton(text=_tr("What the model saw"))
        self.prompt_button.setAccessibleName(_tr("Show the exact prompt of this reply"))
        self.prompt_button.clicked.connect(self.prompt_requested)
        self.prompt_button.setVisible(False)
        self.prompt = ""  # the exact prompt of this reply, "" when unknown
        header.addWidget(self.prompt_button)
        self.tokens_button = QToolButton(text=_tr("Tokens"))
        self.tokens_button.setAccessibleName(_tr("Colour each token by its probability"))
        self.tokens_button.setCheckable(True)
        self.tokens_button.setVisible(False)
        self.tokens_button.toggled.connect(self._show_token_view)
        self.tokens: list = []  # the reply's tokens with their probabilities (token_view.py)
        self.token_view: TokenView | None = None  # made when first shown
        header.addWidget(self.tokens_button)
        header.addWidget(self.delete_version_button)
        outer.addLayout(header)
        self.thinking = ThinkingBox()  # a reply's reasoning (Qwen3's <think>), collapsed above it
        outer.addWidget(self.thinking)
        self.body = QVBoxLayout()
        outer.addLayout(self.body)
        self.sources: list = []  # the passages the reply was given
        self.query = ""  # the question: its words are highlighted in a passage
        self.source_list = SourceList()
        self.source_list.setVisible(False)
        outer.addWidget(self.source_list)
        self._segment_widgets: list[QWidget] = []
        self._editor: QPlainTextEdit | None = None
        self.set_text(text)

    # -- content --------------------------------------------------------------------------
    def set_text(self, text: str) -> None:
        """Render text; widgets of unchanged segments are reused (cheap while streaming)."""
        self.text = text
        if self.role == "assistant":
            split = split_thinking(text)
            self.thinking.show_reply(split)
            segments = split_markdown(split.answer)
        else:
            segments = [Segment("text", text)]
        for i, segment in enumerate(segments):
            widget = self._segment_widgets[i] if i < len(self._segment_widgets) else None
            fits = (isinstance(widget, CodeBlock) if segment.kind == "code" else isinstance(widget, QLabel))
            if widget is not None and not fits:
                for stale in self._segment_widgets[i:]:
                    stale.deleteLater()
                del self._segment_widgets[i:]
                widget = None
            if widget is None:
                widget = CodeBlock(segment) if segment.kind == "code" else self._prose_label()
                self.body.addWidget(widget)
                self._segment_widgets.append(widget)
            if segment.kind == "code":
                widget.set_code(segment.text, segment.language)
            elif self.role == "assistant":
                widget.setText(segment.text)
            else:
                widget.setText(segment.text)
        for stale in self._segment_widgets[len(segments):]:
            stale.deleteLater()
        del self._segment_widgets[len(segments):]

    def _prose_label(self) -> QLabel:
        label = QLabel()
        label.setTextFormat(Qt.MarkdownText if self.role == "assistant" else Qt.PlainText)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextSelectableByMouse | Qt.LinksAccessibleByMouse)
        label.setOpenExternalLinks(False)
        return label

    def set_images(self, images: list, thumbnailer) -> None:
        """Show the message's images (objects with data and name) as thumbnails under its header."""
        from .message_images import MessageImages

        if getattr(self, "images_row", None) is not None:
            self.images_row.deleteLater()
        self.images_row = MessageImages(images, thumbnailer)
        self.layout().insertWidget(1, self.images_row)

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def set_sources(self, sources: list, query: str) -> None:
        self.sources, self.query = list(sources), query
        self.source_list.set_sources(self.sources)

    def set_prompt(self, prompt: str) -> None:
        self.prompt = prompt
        self.prompt_button.setVisible(bool(prompt))

    def set_tokens(self, tokens: list) -> None:
        """The reply's tokens (while it streams, those so far); the view follows when it is open."""
        self.tokens = list(tokens)
        self.tokens_button.setVisible(bool(self.tokens))
        if self.token_view is not None and not self.token_view.isHidden():
            self.token_view.set_tokens(self.tokens)

    def _show_token_view(self, shown: bool) -> None:
        if shown and self.token_view is None:
            self.token_view = TokenView()
            self.token_view.alternative_chosen.connect(self.alternative_chosen)
            self.layout().insertWidget(self.layout().indexOf(self.source_list), self.token_view)
        if self.token_view is not None:
            if shown:
                self.token_view.set_tokens(self.tokens)
            self.token_view.setVisible(shown)

    def set_version(self, number: int, total: int, idle: bool = True) -> None:
        """`< number/total >`, hidden for a message with one version; switching only while idle."""
        self.version = (number, total)
        several = total > 1
        self.version_label.setText(f"{number}/{total}" if several else "")
        for widget in (self.previous_button, self.version_label, self.next_button):
            widget.setVisible(several)
        self.previous_button.setEnabled(idle and number > 1)
        self.next_button.setEnabled(idle and number < total)
        self.delete_version_button.setVisible(several and idle)

    def copy(self) -> None:
        # a reply's answer, without its reasoning
        text = split_thinking(self.text).answer if self.role == "assistant" else self.text
        QGuiApplication.clipboard().setText(text)
        _flash(self.copy_button, _tr("Copied"), _tr("Copy"))

    # -- editing --------------------------------------------------------------------------
    def start_edit(self, later_messages: int = 0) -> None:
        """Edit in place: the text is replaced by an editor (not shown twice). `later_messages`:
        how many messages follow this one's reply; saving makes a new version of this message, the
        later messages stay with the earlier version, and the box says so."""
        if self._editor is not None:
            return
        for widget in self._segment_widgets:
            widget.hide()
        self._editor = QPlainTextEdit(self.text)
        self._editor.setAccessibleName(_tr("Edited message"))
        self._editor.setMaximumHeight(160)
        self.edit_warning = QLabel(_tr("Saving starts a new version of this message; the {n} later messages "
                                       "stay with the earlier version (< > on the message switches).").format(
                                           n=later_messages))
        self.edit_warning.setObjectName("editWarning")
        self.edit_warning.setWordWrap(True)
        self.edit_warning.setVisible(later_messages > 0)
        buttons = QHBoxLayout()
        save = QPushButton(_tr("Save && resend"))
        cancel = QPushButton(_tr("Cancel"))
        if self.role == "user":  # images for the new version (the row shows them, with Remove toggles)
            add = QPushButton(_tr("Add image…"))
            add.clicked.connect(self.add_images_requested)
            buttons.addWidget(add)
        save.clicked.connect(self._submit_edit)
        cancel.clicked.connect(self._end_edit)
        buttons.addStretch(1)
        buttons.addWidget(cancel)
        buttons.addWidget(save)
        self._edit_row = QWidget()
        self._edit_row.setLayout(buttons)
        self.body.addWidget(self._editor)
        self.body.addWidget(self.edit_warning)
        self.body.addWidget(self._edit_row)
        if getattr(self, "images_row", None) is not None:
            self.images_row.set_editing(True)
        self._editor.setFocus()

    def _submit_edit(self) -> None:
        text = self._editor.toPlainText() if self._editor else ""
        row = getattr(self, "images_row", None)
        if row is not None and row.pending:
            row.say_still_reading()  # Save again once it shows
            return
        images = row.chosen() if row is not None else []
        if row is not None and row.changed():  # the user removed or added images
            if text.strip() or images:
                self.edit_with_images.emit(self.index, text, images)
        elif text.strip():
            self.edit_submitted.emit(self.index, text)
        self._end_edit()

    def _end_edit(self) -> None:
        if self._editor is not None:
            for widget in (self._editor, self.edit_warning, self._edit_row):
                widget.hide()
                widget.deleteLater()
            self._editor = None
            for widget in self._segment_widgets:
                widget.show()
            if getattr(self, "images_row", None) is not None:
                self.images_row.set_editing(False)

    def is_editing(self) -> bool:
        return self._editor is not None


class ChatView(QScrollArea):
    """A column of MessageWidgets; follows the bottom while a reply streams.

    Implements the chat controller's `ChatViewPort` (append, truncate, show_text, show_status,
    allow_continue, update_actions, clear), addressing messages by index.
    """

    edit_submitted = Signal(int, str)
    edit_with_images = Signal(int, str, object)  # index, text, the new version's images
    regenerate_requested = Signal()
    continue_requested = Signal()
    branch_requested = Signal(int, int)  # message index, -1 / +1: show another version of it
    alternative_requested = Signal(int, int, int)  # message index, token position, token id
    delete_branch_requested = Signal(int)  # message index (confirmed by the user)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setAccessibleName(_tr("Conversation"))
        container = QWidget()
        container.setObjectName("chatColumn")
        # messages sit on the text background (white / near black), not the grey window
        container.setBackgroundRole(QPalette.Base)
        container.setAutoFillBackground(True)
        self.column = QVBoxLayout(container)
        self.column.setSpacing(10)
        self.column.addStretch(1)
        self.setWidget(container)
        self.messages: list[MessageWidget] = []
        self.source_dialog: SourceDialog | None = None  # the passage opened last
        self.prompt_dialog: PromptDialog | None = None
        self.thumbnailer = None  # ui.images.Thumbnailer for the messages' images
        self.empty_label = QLabel(_tr("Send a message to start the conversation."))
        self.empty_label.setAlignment(Qt.AlignCenter)
        self.empty_label.setObjectName("emptyState")
        self.empty_label.setWordWrap(True)
        self.empty_label.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Expanding)  # centred vertically
        # a far larger stretch than the column's trailing one: the hint sits in the middle
        self.column.insertWidget(0, self.empty_label, 100)

    def clear(self) -> None:
        for widget in self.messages:
            widget.deleteLater()
        self.messages.clear()
        self.empty_label.show()

    def add_message(self, role: str, text: str) -> MessageWidget:
        self.empty_label.hide()
        widget = MessageWidget(len(self.messages), role, text)
        widget.edit_submitted.connect(self.edit_submitted)
        widget.edit_with_images.connect(self.edit_with_images)
        widget.add_images_requested.connect(lambda w=widget: self.add_images_to_edit(w.index))
        widget.edit_requested.connect(lambda w=widget: self.start_edit(w.index))
        widget.regenerate_requested.connect(self.regenerate_requested)
        widget.continue_requested.connect(self.continue_requested)
        widget.source_list.source_clicked.connect(lambda n, w=widget: self.open_source(w.index, n))
        widget.prompt_requested.connect(lambda w=widget: self.open_prompt(w.index))
        widget.branch_step.connect(lambda step, w=widget: self.branch_requested.emit(w.index, step))
        widget.delete_version_requested.connect(lambda w=widget: self.confirm_delete_version(w.index))
        widget.alternative_chosen.connect(
            lambda position, token, w=widget: self.alternative_requested.emit(w.index, position, token))
        widget.set_version(1, 1)
        self.column.insertWidget(self.column.count() - 1, widget)
        self.messages.append(widget)
        self.update_actions(True)
        self.scroll_to_bottom()
        return widget

    def confirm_delete_version(self, index: int) -> None:
        """Ask, then delete the version of message `index` shown (and what follows it)."""
        later = len(self.messages) - index - 1
        if later == 0:
            text = _tr("Delete this version of the message? The other versions stay.")
        elif later == 1:
            text = _tr("Delete this version of the message and the message after it? The other versions stay.")
        else:
            text = _tr("Delete this version of the message and the {n} messages after it? "
                       "The other versions stay.").format(n=later)
        answer = QMessageBox.question(self, _tr("Delete version"), text)
        if answer == QMessageBox.Yes:
            self.delete_branch_requested.emit(index)

    def start_edit(self, index: int) -> None:
        """Edit message `index` in place, saying how many later messages stay with the earlier version."""
        later = sum(1 for m in self.messages[index + 1:] if m.role == "user")
        removed = len(self.messages) - index - 2 if later else 0  # beyond this message's own reply
        if self.messages[index].role == "user" and getattr(self.messages[index], "images_row", None) is None:
            self.show_images(index, [])  # a row to add images to
        self.messages[index].start_edit(later_messages=removed)

    def add_images_to_edit(self, index: int) -> None:
        """"Add image…" while message `index` is edited: files chosen are read off the GUI thread."""
        from .images import image_files_filter

        row = getattr(self.messages[index], "images_row", None)
        if row is None or not self.messages[index].is_editing():
            return
        paths, _ = QFileDialog.getOpenFileNames(self, _tr("Add images"), "", image_files_filter())
        row.add_paths(paths)

    # -- ChatViewPort ---------------------------------------------------------------------
    def append(self, role: str, text: str) -> int:
        return self.add_message(role, text).index

    def truncate(self, count: int) -> None:
        """Remove the message widgets from index `count` on (a new version replaces the tail);
        the earlier ones stay as they are: nothing else is laid out again."""
        for widget in self.messages[count:]:
            self.column.removeWidget(widget)
            widget.hide()
            widget.deleteLater()
        del self.messages[count:]
        if not self.messages:
            self.empty_label.show()

    def show_text(self, index: int, text: str) -> None:
        follow = self.at_bottom()
        self.messages[index].set_text(text)
        if follow:
            self.scroll_to_bottom()

    def show_status(self, index: int, text: str) -> None:
        self.messages[index].set_status(text)

    def allow_continue(self, index: int, allowed: bool) -> None:
        self.messages[index].can_continue = allowed

    def show_sources(self, index: int, sources: list, query: str) -> None:
        self.messages[index].set_sources(sources, query)

    def show_images(self, index: int, images: list) -> None:
        if self.thumbnailer is None:  # made on first use: the pool thread starts only with images
            from .images import Thumbnailer
            self.thumbnailer = Thumbnailer(self)
        self.messages[index].set_images(images, self.thumbnailer)

    def show_prompt(self, index: int, prompt: str) -> None:
        self.messages[index].set_prompt(prompt)

    def show_branches(self, index: int, number: int, total: int) -> None:
        self.messages[index].set_version(number, total)

    def show_tokens(self, index: int, tokens: list) -> None:
        self.messages[index].set_tokens(tokens)

    # -- a reply's sources and prompt ---------------------------------------------------------
    def open_source(self, index: int, number: int) -> SourceDialog:
        """The passage numbered `number` of message `index`, in a dialog of its own."""
        message = self.messages[index]
        source = next(s for s in message.sources if s.number == number)
        self.source_dialog = SourceDialog(source, message.query, self)
        self.source_dialog.show()
        return self.source_dialog

    def open_prompt(self, index: int) -> PromptDialog:
        self.prompt_dialog = PromptDialog(self.messages[index].prompt, self)
        self.prompt_dialog.show()
        return self.prompt_dialog

    def update_actions(self, idle: bool) -> None:
        """Regenerate (and Continue, for a reply cut short) only on the last reply, and edits
        only while no reply streams."""
        for i, widget in enumerate(self.messages):
            last_reply = i == len(self.messages) - 1 and widget.role == "assistant"
            widget.regenerate_button.setVisible(last_reply and idle)
            widget.continue_button.setVisible(last_reply and idle and widget.can_continue)
            widget.edit_button.setVisible(widget.role == "user" and idle)
            widget.set_version(*widget.version, idle=idle)

    def at_bottom(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - 40

    def scroll_to_bottom(self) -> None:
        QTimer.singleShot(0, lambda: self.verticalScrollBar().setValue(self.verticalScrollBar().maximum()))
