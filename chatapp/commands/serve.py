"""`chatapp serve`: the model behind a local OpenAI-compatible HTTP API, headless."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from ..arg_types import bounded_int
from .common import add_mmproj_option, add_model_options, load_from_args

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="serve the model over a local OpenAI-compatible HTTP API",
        description="Serve the model at http://HOST:PORT/v1 (GET /v1/models, POST /v1/chat/completions, "
                    "POST /v1/completions), for any OpenAI client. Ctrl-C stops it.",
        conflict_handler="resolve")  # --adapter below replaces the model options' single one
    add_model_options(p)
    add_mmproj_option(p)
    p.add_argument("--adapter", action="append", default=[], metavar="DIR",
                   help="a LoRA adapter folder (PEFT layout) for the model, served under its own model id "
                        "MODEL+FOLDER-NAME (repeatable; a request naming the model itself gets no adapter)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=bounded_int(0, 65535), default=8765, help="port (default 8765; 0: any free)")
    p.add_argument("--api-key", default=os.environ.get("CHATAPP_API_KEY", ""), metavar="KEY",
                   help="require 'Authorization: Bearer KEY' on every request (default: $CHATAPP_API_KEY, "
                        "else no key)")
    p.add_argument("--max-tokens", type=bounded_int(1, 1 << 20), default=4096,
                   help="the most new tokens one request may ask for (default 4096)")
    p.add_argument("--max-body", type=bounded_int(1024), default=32 << 20, metavar="BYTES",
                   help="the largest request body accepted (default 32 MiB: images come as data URLs)")
    p.add_argument("--cors", action="append", default=[], metavar="ORIGIN",
                   help="allow browser pages from ORIGIN (repeatable; '*' for any); default: none")
    p.set_defaults(func=cmd_serve)


async def _serve(server) -> None:
    url = await server.start()
    print(f"serving {url} (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()  # until cancelled (Ctrl-C)
    finally:
        await server.stop()


def cmd_serve(args: argparse.Namespace) -> int:
    from ..server.app import ApiServer, ServerConfig, ServerStartError, model_ids_for
    from ..server.jobs import ModelThread
    from ..server.protocol import Limits

    config = ServerConfig(host=args.host, port=args.port, api_key=args.api_key, max_body_bytes=args.max_body,
                          limits=Limits(max_tokens=args.max_tokens,
                                        default_max_tokens=min(512, args.max_tokens)),
                          cors_origins=tuple(args.cors))
    adapters = list(args.adapter)
    args.adapter = adapters[0] if adapters else None  # the model wears the first; the others per request
    backend, info = load_from_args(args)  # no model, no server: a load error is the command's error
    for folder in adapters[1:]:  # each must fit the model: a bad one is an error now, not per request
        try:
            backend.wear_adapter(folder)
        except Exception as exc:  # noqa: BLE001 - the command's error, named
            print(f"error: adapter {folder}: {exc}", file=sys.stderr)
            return 1
    backend.wear_adapter(args.adapter or "")
    ids = model_ids_for(info, adapters)
    model_thread = ModelThread(backend)
    server = ApiServer(config, model_thread.submit, lambda: ids)
    try:
        asyncio.run(_serve(server))
    except ServerStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        model_thread.close()
    return 0
