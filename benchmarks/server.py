"""The local API server under load: requests per second and time to first token for 1 and 8
concurrent streaming clients (chat completions, greedy, a fixed number of new tokens).

    .venv/bin/python benchmarks/server.py [--model default] [--clients 1 8] [--requests 2] [--max-tokens 16]

The server runs in this process as `chatapp serve` runs it (its own event loop thread, one
model thread), on a free port; each client is a thread reading the SSE stream over plain
HTTP. Requests are answered one at a time (one model, one KV cache), so with 8 clients the
time to first token includes the wait in the queue. Prints one JSON object per client count.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def one_request(url: str, model: str, max_tokens: int, index: int) -> dict:
    """Stream one chat completion; (ttft_s, total_s, chunks)."""
    parsed = urlparse(url)
    body = json.dumps({"model": model, "stream": True, "max_tokens": max_tokens, "temperature": 0,
                       "messages": [{"role": "user", "content": f"Tell me about lighthouses, part {index}."}]})
    start = time.perf_counter()
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)
    conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200, response.read()
    ttft, chunks = None, 0
    for line in response:
        line = line.strip()
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
            chunks += 1
            if ttft is None:
                ttft = time.perf_counter() - start
    conn.close()
    return {"ttft_s": ttft if ttft is not None else float("nan"), "total_s": time.perf_counter() - start,
            "chunks": chunks}


def main() -> None:
    from chatapp.engine.backend import ChatBackend, LoadOptions
    from chatapp.server.app import ApiServer, ServerConfig, model_ids_for
    from chatapp.server.jobs import ModelThread

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--requests", type=int, default=2, help="requests per client")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()

    backend = ChatBackend()
    info = backend.load(args.model, LoadOptions(context_len=1024, threads=args.threads))
    ids = model_ids_for(info)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    model_thread = ModelThread(backend)
    server = ApiServer(ServerConfig(port=0), model_thread.submit, lambda: ids)
    url = asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
    one_request(url, ids.base, args.max_tokens, -1)  # warm-up
    for clients in args.clients:
        total = clients * args.requests
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(lambda i: one_request(url, ids.base, args.max_tokens, i), range(total)))
        wall = time.perf_counter() - start
        ttfts = sorted(r["ttft_s"] for r in results)
        print(json.dumps({"model": info.name, "clients": clients, "requests": total, "max_tokens": args.max_tokens,
                          "req_per_s": round(total / wall, 3),
                          "tokens_per_s": round(sum(r["chunks"] for r in results) / wall, 2),
                          "ttft_median_s": round(statistics.median(ttfts), 3),
                          "ttft_max_s": round(ttfts[-1], 3), "wall_s": round(wall, 2)}), flush=True)
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
    model_thread.close()


if __name__ == "__main__":
    main()
