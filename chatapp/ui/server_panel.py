"""The window's local API server: a switch in the settings drawer, and the controller that runs
`chatapp.server` on the window's qasync loop with the chat's loaded model.

API requests run in the generation thread, queued behind the window's own reply and each
other (an `ApiJobRunner` living in that thread receives them as queued signals, in order,
between the worker's own requests). Each request has its own cancel event: the window's Stop
sets only the worker's, so it stops only the window's reply. The status bar says when an API
request is running. Off at every start; the address is shown with a Copy button when on.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QSpinBox, QWidget)

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765


def _tr(text: str) -> str:
    return QGuiApplication.translate("ServerPanel", text)


class ApiJobRunner(QObject):
    """Lives in the generation thread; runs each API job there, in the order they arrive."""

    def __init__(self, backend) -> None:
        super().__init__()
        self.backend = backend

    @Slot(object)
    def run(self, job_run) -> None:
        job_run(self.backend)  # Job.run never raises


class ServerController(QObject):
    """Starts and stops the API server on the running asyncio (qasync) loop."""

    state_changed = Signal(str, str)  # "off" | "on" | "failed", the address or the reason
    activity_changed = Signal(int)  # API requests running or queued
    _submit = Signal(object)  # to the runner in the generation thread (queued)

    def __init__(self, worker_thread, model_info: Callable[[], object], library_db: Optional[Path] = None,
                 parent: QObject | None = None, adapters: Callable[[], list] = lambda: []) -> None:
        super().__init__(parent)
        self._adapters = adapters  # the adapter folders known for the loaded model (the Train tab's list)
        self.runner = ApiJobRunner(worker_thread.worker.backend)
        self.runner.moveToThread(worker_thread.thread)
        self._submit.connect(self.runner.run)
        self._model_info = model_info
        self._library_db = library_db
        self.server = None  # chatapp.server.app.ApiServer while on
        self.url = ""
        self.active = 0

    def submit(self, job_run) -> None:
        self._submit.emit(job_run)

    def _ids(self):
        from ..server.app import model_ids_for

        info = self._model_info()
        return model_ids_for(info, self._adapters()) if info is not None else None

    def _on_activity(self, running: int) -> None:
        self.active = running
        self.activity_changed.emit(running)

    def start(self, port: int = DEFAULT_PORT, api_key: str = "", host: str = "127.0.0.1") -> None:
        """Start serving (asynchronously: state_changed says how it went)."""
        if self.server is not None:
            return
        if self._model_info() is None:
            self.state_changed.emit("failed", _tr("Load a model first: the server shares the chat's model."))
            return
        try:
            loop = asyncio.get_running_loop()  # qasync's, while the window runs
        except RuntimeError:
            self.state_changed.emit("failed", _tr("The window's event loop is not running."))
            return
        from ..server.app import ApiServer, ServerConfig

        config = ServerConfig(host=host, port=port, api_key=api_key,
                              library_db=str(self._library_db) if self._library_db else None)
        self.server = ApiServer(config, self.submit, self._ids, on_activity=self._on_activity)
        loop.create_task(self._start(self.server))

    async def _start(self, server) -> None:
        from ..server.app import ServerStartError

        try:
            self.url = await server.start()
        except ServerStartError as exc:
            self.server = None
            self.state_changed.emit("failed", str(exc))
            return
        if self.server is not server:  # switched off while it started
            await server.stop()
            return
        self.state_changed.emit("on", self.url)

    def stop(self) -> None:
        server, self.server, self.url = self.server, None, ""
        if server is None:
            return
        server.cancel_all()
        try:
            asyncio.get_running_loop().create_task(server.stop())
        except RuntimeError:  # no loop any more (the app is closing): nothing is listening
            pass
        self.state_changed.emit("off", "")

    def shutdown(self) -> None:
        """The window closes: stop serving and cancel every API generation."""
        self.stop()
        self.runner.deleteLater()


def adapters_for_model(entries, model: str) -> list:
    """The adapter folders among the adapters list's `entries` (training.outputs.TrainedOutput)
    made for `model` (the window's model setting): the ones the server offers beside the model."""
    def same(base: str) -> bool:
        base, spec = base or "default", model or "default"
        if base == spec:
            return True
        try:
            return Path(base).expanduser().resolve() == Path(spec).expanduser().resolve()
        except OSError:
            return False

    return [e.path for e in entries if e.kind == "adapter" and not e.error and same(e.base_model)]


class _ClickableLabel(QLabel):
    clicked = Signal()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        self.clicked.emit()
        super().mouseReleaseEvent(event)


class ServerPanel(QGroupBox):
    """The drawer's "Local API server" group: the switch, port, key, address and Copy. The port
    and key are kept in the settings (`save()` after a change); the switch is off at every start."""

    def __init__(self, controller: ServerController, parent: QWidget | None = None, settings=None,
                 save: Callable[[], None] = lambda: None) -> None:
        super().__init__(_tr("Local API server"), parent)
        self.controller = controller
        self.settings = settings  # storage.settings.AppSettings, or None: nothing kept
        self._save = save
        form = self._form = QFormLayout(self)
        # The switch's words wrap in a label beside it: as the checkbox's own text they would
        # widen the drawer past its edge (Copy cut off).
        self.switch = QCheckBox()
        self.switch.setAccessibleName(_tr("Local API server"))
        self.switch_label = _ClickableLabel(_tr("Serve the model to other programs (OpenAI API)"))
        self.switch_label.setWordWrap(True)
        self.switch_label.clicked.connect(self.switch.click)
        switch_row = QHBoxLayout()
        switch_row.addWidget(self.switch)
        switch_row.addWidget(self.switch_label, 1)
        self.port = QSpinBox(minimum=1, maximum=65535, value=DEFAULT_PORT)
        self.port.setAccessibleName(_tr("Port"))
        self.key = QLineEdit()
        self.key.setEchoMode(QLineEdit.Password)
        self.key.setPlaceholderText(_tr("none: any program on this computer may use it"))
        self.key.setAccessibleName(_tr("API key"))
        self.address = QLineEdit()
        self.address.setReadOnly(True)
        self.address.setAccessibleName(_tr("Server address"))
        self.copy_button = QPushButton(_tr("Copy"))
        self.copy_button.setAccessibleName(_tr("Copy the server address"))
        self.message = QLabel("")
        self.message.setWordWrap(True)
        row = QHBoxLayout()  # the address gets the drawer's width; Copy under it, by the message
        row.addWidget(self.message, 1)
        row.addWidget(self.copy_button)
        form.addRow(switch_row)
        form.addRow(_tr("Port"), self.port)
        form.addRow(_tr("API key"), self.key)
        form.addRow(_tr("Address"), self.address)
        form.addRow(row)
        self.setToolTip(_tr("Editors, scripts and agents on this computer can use the chat's model through "
                            "the OpenAI API at this address. Requests wait while the chat replies."))
        if settings is not None:
            self.port.setValue(settings.server_port)
            self.key.setText(settings.server_api_key)
        self.port.valueChanged.connect(self._keep)
        self.key.editingFinished.connect(self._keep)
        self.switch.toggled.connect(self._toggled)
        self.copy_button.clicked.connect(self.copy_address)
        controller.state_changed.connect(self._show_state)
        self._show_state("off", "")

    @Slot()
    def _keep(self) -> None:
        s = self.settings
        if s is None or (s.server_port, s.server_api_key) == (self.port.value(), self.key.text()):
            return
        s.server_port, s.server_api_key = self.port.value(), self.key.text()
        self._save()

    @Slot(bool)
    def _toggled(self, on: bool) -> None:
        if on:
            self._keep()
            self.message.setText(_tr("Starting…"))
            self.controller.start(port=self.port.value(), api_key=self.key.text())
        else:
            self.controller.stop()

    @Slot(str, str)
    def _show_state(self, state: str, detail: str) -> None:
        on = state == "on"
        self.address.setText(detail if on else "")
        self.address.setCursorPosition(0)  # the start in view ("http://..."), not the end
        self.address.setToolTip(detail if on else "")
        self._form.setRowVisible(self.address, on)  # with its "Address" label
        self.copy_button.setVisible(on)
        self.port.setEnabled(state != "on")
        self.key.setEnabled(state != "on")
        if state == "failed":
            self.switch.blockSignals(True)
            self.switch.setChecked(False)
            self.switch.blockSignals(False)
            self.message.setText(detail)
        elif on:
            self.message.setText(_tr("Serving the chat's model."))
        else:
            self.message.setText("")

    @Slot()
    def copy_address(self) -> None:
        QGuiApplication.clipboard().setText(self.address.text())


def activity_text(running: int) -> str:
    """The status bar's words for API requests running or waiting ("" for none)."""
    if running <= 0:
        return ""
    return _tr("API request running") if running == 1 else _tr("{n} API requests").format(n=running)
