#!/usr/bin/env bash
# Build the llama.cpp reference for benchmarks/quantized.py in a virtual environment of its own.
#
# llama-cpp-python compiles llama.cpp's C++ with the system compiler (10-60 minutes on a small,
# shared machine). It is a benchmark reference only: it never goes into the app's .venv, never
# into tests. Usage:
#   benchmarks/llamacpp_venv.sh [VENV_DIR]        (default benchmarks/.llamacpp-venv, git-ignored)
# Environment: PYTHON (interpreter for the venv, default python3), CMAKE_BUILD_PARALLEL_LEVEL
# (default 1: the build shares the machine), LLAMA_CPP_PYTHON_SPEC (default llama-cpp-python).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/.llamacpp-venv}"
python="${PYTHON:-python3}"
spec="${LLAMA_CPP_PYTHON_SPEC:-llama-cpp-python}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-1}"
# A CPU build for this machine: native instructions (AVX-512 here), no GPU back end, no server.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF}"

target="$(cd "$(dirname "$venv")" 2>/dev/null && pwd)/$(basename "$venv")"
app_venv="$(cd "$here/.." && pwd)/.venv"
case "$target" in
  "$app_venv"|*/main/.venv) echo "refusing to install llama-cpp-python into the app's venv: $venv" >&2; exit 2;;
esac

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
echo "building $spec into $venv (CMAKE_ARGS=$CMAKE_ARGS, parallel=$CMAKE_BUILD_PARALLEL_LEVEL)"
start=$(date +%s)
"$venv/bin/python" -m pip install --no-cache-dir -v "$spec"
echo "built in $(( $(date +%s) - start )) s"
"$venv/bin/python" -c "import llama_cpp; print('llama_cpp', llama_cpp.__version__)"
