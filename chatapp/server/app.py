"""The OpenAI-compatible HTTP server: aiohttp on whichever asyncio loop runs it (qasync's in the
window, a plain one for `chatapp serve`).

Routes: GET /v1/models, POST /v1/chat/completions, POST /v1/completions (streaming as
server-sent events in OpenAI's chunk format, ending in `data: [DONE]`). Every error is
answered in OpenAI's error shape. The handlers never touch the model: each request becomes a
`jobs.Job` submitted to the model's thread, whose events come back through an asyncio queue.
A client that disconnects sets its own job's cancel event, so its generation stops within a
token (or never starts, if it was still queued).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from aiohttp import web

from .jobs import Job, Outcome
from .protocol import ApiError, Limits, decode_body, parse_chat, parse_completion
from .responses import ResponseWriter

log = logging.getLogger(__name__)
# Stopping waits this long for requests under way (aiohttp's default, 60 s, let a client that
# sent half a body hold the server's stop, and the window's quit, for a minute)
SHUTDOWN_TIMEOUT_S = 2.0


class ServerStartError(RuntimeError):
    """The server could not start (the port is taken, the address is not ours)."""


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    api_key: str = ""  # "": no key needed
    max_body_bytes: int = 32 << 20  # room for a few images as data URLs (base64: 4/3 of their bytes)
    limits: Limits = field(default_factory=Limits)
    cors_origins: tuple = ()  # e.g. ("http://localhost:3000",); empty: no CORS headers
    library_db: Optional[str] = None  # the document libraries' file (None: the user's)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"the port must be between 0 and 65535, got {self.port}")
        if self.max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes must be at least 1024, got {self.max_body_bytes}")


@dataclass
class ModelIds:
    """The ids /v1/models lists: the loaded model, and each adapter for it under its own id."""

    base: str
    adapters: dict = field(default_factory=dict)  # id -> adapter folder, the model's own adapter first

    @property
    def adapter(self) -> str:
        """The first adapter's id (the one the model wears, if any); "" for none."""
        return next(iter(self.adapters), "")

    def all(self) -> list:
        return [self.base, *self.adapters]

    def resolve(self, model: str) -> str:
        """The adapter folder a requested id runs with ("" for the bare model); ApiError if unknown."""
        if model == self.base:
            return ""
        if model in self.adapters:
            return self.adapters[model]
        raise ApiError(404, f"the model {model!r} does not exist; this server has: {', '.join(self.all())}",
                       "model", code="model_not_found")


class ApiServer:
    """`submit(run)` runs `run(backend)` in the model's thread; `model_ids()` the ids to serve
    (None: no model loaded). `on_activity(running)` hears how many API requests are running."""

    def __init__(self, config: ServerConfig, submit: Callable[[Callable], None],
                 model_ids: Callable[[], Optional[ModelIds]],
                 on_activity: Optional[Callable[[int], None]] = None) -> None:
        self.config = config
        self._submit = submit
        self._model_ids = model_ids
        self._on_activity = on_activity
        self.active = 0
        self._jobs: set = set()  # the jobs of requests being answered
        self._runner: Optional[web.AppRunner] = None
        self.port = config.port  # the bound port once started (config.port 0: any free one)
        self.created = int(time.time())

    # -- life -----------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes,
                              middlewares=[self._errors, self._auth])
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        if self.config.cors_origins:
            app.router.add_route("OPTIONS", "/{tail:.*}", self._preflight)
            app.on_response_prepare.append(self._cors_headers)
        return app

    async def start(self) -> str:
        """Bind and serve; returns the base URL. ServerStartError if the address cannot be used."""
        runner = web.AppRunner(self.build_app(), handler_cancellation=True, access_log=None,
                               shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ServerStartError(f"cannot listen on {self.config.host}:{self.config.port}: "
                                   f"{exc.strerror or exc} (is another server using the port?)") from exc
        self._runner = runner
        sockets = [s for s in (site._server.sockets if site._server else [])]  # type: ignore[union-attr]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("API server on %s", self.url)
        return self.url

    @property
    def url(self) -> str:
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"http://{host}:{self.port}/v1"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def running(self) -> bool:
        return self._runner is not None

    def cancel_all(self) -> None:
        """Stop every request's generation (the window is closing)."""
        for job in list(self._jobs):
            job.cancel.set()

    # -- middlewares ----------------------------------------------------------------------
    @web.middleware
    async def _errors(self, request: web.Request, handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return web.json_response(exc.body(), status=exc.status)
        except web.HTTPException as exc:  # aiohttp's own: 404 route, 405 method, 413 body too large
            if exc.status < 400:
                raise
            message = exc.text or exc.reason
            if exc.status == 413:
                message = f"the request body is larger than {self.config.max_body_bytes} bytes"
            return web.json_response(ApiError(exc.status, message, code=str(exc.status)).body(), status=exc.status)

    @web.middleware
    async def _auth(self, request: web.Request, handler) -> web.StreamResponse:
        key = self.config.api_key
        if key and request.method != "OPTIONS":
            given = request.headers.get("Authorization", "")
            token = given[7:].strip() if given[:7].lower() == "bearer " else ""
            if not hmac.compare_digest(token.encode(), key.encode()):
                raise ApiError(401, "a valid API key is required: send 'Authorization: Bearer KEY'",
                               code="invalid_api_key")
        return await handler(request)

    async def _preflight(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _cors_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin", "")
        if origin and ("*" in self.config.cors_origins or origin in self.config.cors_origins):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"

    # -- routes ---------------------------------------------------------------------------
    def _ids(self) -> ModelIds:
        ids = self._model_ids()
        if ids is None:
            raise ApiError(503, "no model is loaded", code="model_not_loaded", kind="server_error")
        return ids

    async def _models(self, request: web.Request) -> web.Response:
        ids = self._ids()
        data = [{"id": i, "object": "model", "created": self.created, "owned_by": "chatapp"}
                for i in ids.all()]
        return web.json_response({"object": "list", "data": data})

    async def _body(self, request: web.Request) -> Any:
        return decode_body(await request.read())  # at most max_body_bytes: aiohttp answers 413 beyond

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        job = parse_chat(await self._body(request), self.config.limits)
        return await self._serve(request, job)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        job = parse_completion(await self._body(request), self.config.limits)
        return await self._serve(request, job)

    async def _serve(self, request: web.Request, job_request) -> web.StreamResponse:
        adapter = self._ids().resolve(job_request.model)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()

        def emit(kind: str, payload: Any) -> None:  # from the model's thread
            loop.call_soon_threadsafe(events.put_nowait, (kind, payload))

        job = Job(job_request, adapter, emit, library_db=self.config.library_db)
        writer = ResponseWriter(job_request, f"{'chatcmpl' if job_request.kind == 'chat' else 'cmpl'}-"
                                             f"{uuid.uuid4().hex[:24]}", int(time.time()))
        self._activity(+1)
        self._jobs.add(job)
        finished = False
        try:
            self._submit(job.run)
            response: Optional[web.StreamResponse] = None
            while True:
                kind, payload = await events.get()
                if kind == "error":
                    finished = True
                    if response is None:
                        raise payload
                    await self._send(response, {"error": payload.body()["error"]})
                    break
                if kind == "prompt":  # completions with echo: the prompt comes first
                    if job_request.stream:
                        response = await self._open_stream(request)
                        await self._send(response, writer.echo_chunk(payload))
                    continue
                if kind == "delta":
                    if not job_request.stream:
                        writer.add(payload)
                        continue
                    if response is None:
                        response = await self._open_stream(request)
                        for chunk in writer.opening():
                            await self._send(response, chunk)
                    await self._send(response, writer.chunk(payload))
                    continue
                finished = True  # "done"
                outcome: Outcome = payload
                if not job_request.stream:
                    return web.json_response(writer.whole(outcome))
                if response is None:
                    response = await self._open_stream(request)
                    for chunk in writer.opening():
                        await self._send(response, chunk)
                for chunk in writer.closing(outcome):
                    await self._send(response, chunk)
                break
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        finally:
            if not finished:  # the client went away (or the handler failed): stop its generation
                job.cancel.set()
                log.info("API client disconnected; its generation was cancelled")
            self._jobs.discard(job)
            self._activity(-1)

    async def _open_stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        return response

    @staticmethod
    async def _send(response: web.StreamResponse, chunk: dict) -> None:
        await response.write(b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n")

    def _activity(self, change: int) -> None:
        self.active += change
        if self._on_activity is not None:
            try:
                self._on_activity(self.active)
            except Exception:  # a status display must not break a request
                log.exception("activity callback failed")



def model_ids_for(info, adapters=()) -> ModelIds:
    """The ids for a loaded model (engine.backend.ModelInfo) and the adapter folders known for it
    (`adapters`; the one the model wears comes first): the model's name, and name+folder-name for
    the model wearing each adapter (a repeated folder name gets -2, -3...)."""
    from pathlib import Path

    base = info.name or Path(info.path).name or "model"
    folders: list = []
    for folder in ([info.adapter] if getattr(info, "adapter", "") else []) + [str(a) for a in adapters]:
        if folder and not any(_same_path(folder, f) for f in folders):
            folders.append(folder)
    ids: dict = {}
    for folder in folders:
        name = f"{base}+{Path(folder).name}"
        n = 2
        while name in ids or name == base:
            name, n = f"{base}+{Path(folder).name}-{n}", n + 1
        ids[name] = folder
    return ModelIds(base=base, adapters=ids)


def _same_path(a: str, b: str) -> bool:
    from pathlib import Path

    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except OSError:
        return a == b
