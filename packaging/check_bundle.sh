#!/usr/bin/env bash
# Smoke-check a built bundle: packaging/check_bundle.sh [dist/chatapp]
#
# Runs the frozen app's --version, --startup-probe (time from process start to a shown window,
# offscreen; the first run after evicting the bundle from the page cache), self-test (window, default
# model, one streamed reply) and a headless `generate`; checks that test-only packages
# (transformers, peft, accelerate, pytest) are not in the bundle; prints the folder and archive
# sizes. Exits non-zero on the first failure. COMPARE_SOURCE=1 also times the start from source;
# CHECK_TRAIN=1 also runs a 2-step LoRA `train` (the default knowledge recipe, whose model-written
# answers stop at their 4-minute cap here: ~5 min on 2 cores) and an `eval` of its adapter.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP_DIR="${1:-$ROOT/dist/chatapp}"
APP="$APP_DIR/chatapp"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export QT_QPA_PLATFORM=offscreen

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
json_field() { "$PY" -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(d.get(sys.argv[1]))' "$1"; }
now() { date +%s.%N; }
elapsed() { "$PY" -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }

[ -x "$APP" ] || fail "no executable at $APP (build with: make package)"

step "version"
version_out="$("$APP" --version)" || fail "--version exited non-zero"
echo "$version_out"
expected="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -1)"
[[ "$version_out" == *"$expected"* ]] || fail "--version says '$version_out', pyproject says $expected"

step "startup probe (3 runs; before the first, the bundle's files are evicted from the page cache)"
# posix_fadvise(DONTNEED) drops this bundle's clean pages without root (drop_caches needs it);
# shared system libraries stay cached, so "cold" here is a lower bound of a real cold start.
"$PY" - "$APP_DIR" <<'PY' || echo "(could not evict the page cache: run 1 is warm)"
import os, sys
for folder, _, files in os.walk(sys.argv[1]):
    for name in files:
        path = os.path.join(folder, name)
        if not os.path.islink(path):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
PY
for run in 1 2 3; do
    t0="$(now)"
    out="$("$APP" --startup-probe 2>/dev/null)" || fail "--startup-probe exited non-zero: $out"
    t1="$(now)"
    [ "$(json_field ok <<<"$out")" = "True" ] || fail "startup probe: $out"
    echo "run $run: window shown after $(json_field window_s <<<"$out") s from process start; process wall $(elapsed "$t0" "$t1") s"
done
if [ "${COMPARE_SOURCE:-0}" = 1 ] && [ -x "$ROOT/.venv/bin/python" ]; then
    out="$("$ROOT/.venv/bin/python" "$ROOT/packaging/entry.py" --startup-probe 2>/dev/null)"
    echo "from source (python packaging/entry.py): window shown after $(json_field window_s <<<"$out") s"
fi

step "self-test (offscreen window, default model, one streamed reply)"
t0="$(now)"
out="$("$APP" self-test 2> >(grep -v propagateSizeHints >&2))" || fail "self-test exited non-zero: $out"
t1="$(now)"
echo "$out"
[ "$(json_field ok <<<"$out")" = "True" ] || fail "self-test: $out"
echo "self-test wall $(elapsed "$t0" "$t1") s"

step "generate (headless)"
t0="$(now)"
out="$("$APP" generate --model default --prompt "Hello" --max-new-tokens 8 --json)" || fail "generate exited non-zero: $out"
t1="$(now)"
echo "$out"
tokens="$(json_field new_tokens <<<"$out")"
[ "$tokens" != "None" ] && [ "$tokens" -gt 0 ] || fail "generate produced no tokens: $out"
echo "generate wall $(elapsed "$t0" "$t1") s"

step "image input (Pillow in the bundle; the default model has no vision: a clear refusal)"
work_img="$(mktemp -d)"
"$PY" -c 'import struct, sys, zlib
row = b"\x00" + b"\xff\x00\x00" * 4
raw = zlib.compress(row * 4)
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)' "$work_img/red.png"
if out="$("$APP" generate --model default --image "$work_img/red.png" --prompt "What colour?" 2>&1)"; then
    fail "generate --image on a text-only model exited zero: $out"
fi
echo "$out" | tail -n 1
grep -qi "image" <<<"$out" && ! grep -q "Traceback" <<<"$out" || fail "no clear image error: $out"
rm -rf "$work_img"

step "serve (the local OpenAI-compatible API, one completion)"
port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$APP" serve --model default --port "$port" > /tmp/chatapp-serve-$$.log 2>&1 &
serve_pid=$!
"$PY" - "$port" <<'EOF' || { kill "$serve_pid" 2>/dev/null; cat /tmp/chatapp-serve-$$.log; fail "the API server did not answer"; }
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}/v1"
for _ in range(240):
    try:
        models = json.load(urllib.request.urlopen(base + "/models", timeout=2))
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("no answer on /v1/models within 120 s")
body = json.dumps({"model": models["data"][0]["id"], "max_tokens": 8, "temperature": 0,
                   "messages": [{"role": "user", "content": "Hello"}]}).encode()
request = urllib.request.Request(base + "/chat/completions", body, {"Content-Type": "application/json"})
reply = json.load(urllib.request.urlopen(request, timeout=120))
print("models:", [m["id"] for m in models["data"]], "reply:", repr(reply["choices"][0]["message"]["content"]),
      "usage:", reply["usage"])
assert reply["usage"]["completion_tokens"] > 0
EOF
# SIGTERM (a background job of a script ignores SIGINT, so Ctrl-C's signal would not reach it)
kill -TERM "$serve_pid"
for _ in $(seq 40); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.5; done
if kill -0 "$serve_pid" 2>/dev/null; then kill -KILL "$serve_pid"; fail "serve did not stop on SIGTERM within 20 s"; fi
wait "$serve_pid" || true
rm -f /tmp/chatapp-serve-$$.log

if [ "${CHECK_TRAIN:-0}" = 1 ]; then
    step "train (2 LoRA steps on generated documents) and eval of the adapter"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/docs"
    for i in 1 2 3 4 5 6; do
        for j in $(seq 40); do echo "Document $i, line $j: the zebra Quill lives on Korvath and eats blue moss."; done > "$work/docs/doc$i.txt"
    done
    t0="$(now)"
    out="$("$APP" train --model default --data "$work/docs" --out "$work/adapter" --max-steps 2 \
        --block-size 64 --batch-size 2 --eval-every 0 --progress jsonl)" || fail "train exited non-zero: $out"
    t1="$(now)"
    tail -1 <<<"$out"
    [ "$(json_field status <<<"$out")" = "completed" ] || fail "train did not complete"
    echo "train wall $(elapsed "$t0" "$t1") s"
    out="$("$APP" eval --model default --adapter "$work/adapter" --data "$work/docs" --json)" || fail "eval exited non-zero: $out"
    echo "$out"
fi

step "test-only packages absent"
found="$(find "$APP_DIR" -maxdepth 3 -type d \( -name transformers -o -name peft -o -name accelerate -o -name pytest -o -name _pytest \) | head -5)"
[ -z "$found" ] || fail "found in the bundle: $found"
if "$PY" -c "import PyInstaller" 2>/dev/null; then
    "$PY" - "$APP" <<'EOF' || fail "test-only modules in the bundle's PYZ archive"
import sys
from PyInstaller.archive.readers import CArchiveReader
exe = CArchiveReader(sys.argv[1])
names = set()
for name, (*_, typecode) in exe.toc.items():
    if typecode == "z":  # the PYZ archive of Python modules
        names |= set(exe.open_embedded_archive(name).toc)
bad = sorted(n for n in names if n.split(".")[0] in {"transformers", "peft", "accelerate", "pytest", "_pytest"})
print(f"PYZ: {len(names)} modules; test-only: {bad or 'none'}")
sys.exit(1 if bad else 0)
EOF
else
    echo "(PyInstaller not importable with $PY: PYZ listing skipped)"
fi

step "sizes"
du -sh "$APP_DIR"
echo "folder: $(du -sb "$APP_DIR" | cut -f1) bytes"
shopt -s nullglob
for archive in "$(dirname "$APP_DIR")"/chatapp-*.tar.gz "$(dirname "$APP_DIR")"/chatapp-*.zip; do
    echo "archive: $(basename "$archive") $(du -h "$archive" | cut -f1) ($(stat -c %s "$archive") bytes)"
done

echo
echo "OK: bundle checks passed"
