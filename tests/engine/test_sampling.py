"""Each sampling rule on hand-made logits."""

from __future__ import annotations

import math

import pytest
import torch

from chatapp.engine.sampling import (SamplingSettings, SettingsError, apply_repetition_penalty,
                                     min_p_filter, sample_next, top_k_filter, top_p_filter)


def _logits_for(probs):
    return torch.tensor([math.log(p) for p in probs])


def test_greedy_takes_argmax_whatever_the_generator():
    logits = torch.tensor([0.1, 2.0, 1.9, -1.0])
    settings = SamplingSettings(temperature=0.0, repetition_penalty=1.0)
    picks = {sample_next(logits, settings, torch.tensor([]), torch.Generator().manual_seed(s)) for s in range(5)}
    assert picks == {1}


def test_temperature_matches_softmax_frequencies():
    logits = torch.tensor([1.0, 0.0, -1.0])
    settings = SamplingSettings(temperature=2.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0)
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(3)
    for _ in range(4000):
        counts[sample_next(logits, settings, torch.tensor([]), g)] += 1
    expected = (logits / 2.0).softmax(-1)
    assert torch.allclose(counts / 4000, expected, atol=0.03)


def test_low_temperature_sharpens():
    logits = torch.tensor([1.0, 0.0])
    settings = SamplingSettings(temperature=0.1, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0)
    g = torch.Generator().manual_seed(0)
    picks = [sample_next(logits, settings, torch.tensor([]), g) for _ in range(200)]
    assert picks.count(0) >= 198


def test_top_k_keeps_k_largest():
    logits = torch.tensor([0.5, 3.0, 1.0, 2.0, -1.0])
    kept = torch.isfinite(top_k_filter(logits, 2))
    assert kept.tolist() == [False, True, False, True, False]
    assert torch.equal(top_k_filter(logits, 0), logits)


def test_top_k_sampling_never_leaves_the_set():
    logits = torch.tensor([0.5, 3.0, 1.0, 2.0, -1.0])
    settings = SamplingSettings(temperature=5.0, top_k=2, top_p=1.0, min_p=0.0, repetition_penalty=1.0)
    g = torch.Generator().manual_seed(1)
    picks = {sample_next(logits, settings, torch.tensor([]), g) for _ in range(300)}
    assert picks == {1, 3}


def test_top_p_keeps_smallest_set_reaching_p():
    logits = _logits_for([0.15, 0.5, 0.05, 0.3])
    kept = torch.isfinite(top_p_filter(logits, 0.8))
    assert kept.tolist() == [False, True, False, True]
    kept = torch.isfinite(top_p_filter(logits, 0.81))
    assert kept.tolist() == [True, True, False, True]
    # the top token always survives, however small p
    assert torch.isfinite(top_p_filter(logits, 0.01)).tolist() == [False, True, False, False]


def test_min_p_drops_tokens_below_fraction_of_top():
    logits = _logits_for([0.5, 0.3, 0.04, 0.16])
    kept = torch.isfinite(min_p_filter(logits, 0.1))  # threshold 0.05
    assert kept.tolist() == [True, True, False, True]


def test_repetition_penalty_divides_positive_multiplies_negative():
    logits = torch.tensor([2.0, -2.0, 1.0, 4.0])
    out = apply_repetition_penalty(logits, torch.tensor([0, 1, 1]), 2.0)
    assert out.tolist() == [1.0, -4.0, 1.0, 4.0]
    assert logits.tolist() == [2.0, -2.0, 1.0, 4.0]  # input untouched


def test_repetition_penalty_changes_greedy_choice():
    logits = torch.tensor([2.0, 1.5])
    settings = SamplingSettings(temperature=0.0, repetition_penalty=1.5)
    assert sample_next(logits, settings, torch.tensor([0]), None) == 1
    assert sample_next(logits, settings, torch.tensor([1]), None) == 0


def test_same_seed_same_draws_different_seed_different():
    logits = torch.randn(50, generator=torch.Generator().manual_seed(3))
    settings = SamplingSettings(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0)

    def draws(seed):
        g = torch.Generator().manual_seed(seed)
        return [sample_next(logits, settings, torch.tensor([]), g) for _ in range(30)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": -1}, "temperature"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_k": -3}, "top_k"),
    ({"min_p": 1.0}, "min_p"),
    ({"repetition_penalty": 0.0}, "repetition_penalty"),
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"stop": [""]}, "stop"),
])
def test_settings_reject_out_of_range(kwargs, message):
    with pytest.raises(SettingsError, match=message):
        SamplingSettings(**kwargs)


def test_top_k_then_top_p_then_min_p_compose():
    # probabilities 0.4, 0.3, 0.2, 0.06, 0.04: top-k 4 drops the last, top-p 0.65 keeps two
    logits = _logits_for([0.06, 0.4, 0.2, 0.3, 0.04])
    settings = SamplingSettings(temperature=1.0, top_k=4, top_p=0.65, min_p=0.0, repetition_penalty=1.0)
    g = torch.Generator().manual_seed(0)
    picks = [sample_next(logits, settings, torch.tensor([]), g) for _ in range(400)]
    assert set(picks) == {1, 3}
    assert 0.5 < picks.count(1) / 400 < 0.65  # 0.4 / 0.7 renormalised
    settings = SamplingSettings(temperature=1.0, top_k=0, top_p=1.0, min_p=0.6, repetition_penalty=1.0)
    assert {sample_next(logits, settings, torch.tensor([]), g) for _ in range(100)} == {1, 3}


# ---------------------------------------------------------------- defaults: one definition

def test_defaults_are_defined_once_and_greedy_has_no_penalty():
    from chatapp.cli import build_parser
    from chatapp.commands.common import sampling_from_args
    from chatapp.storage.settings import AppSettings

    defaults = SamplingSettings()
    assert defaults.repetition_penalty == 1.0
    app = AppSettings()
    for name in ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_new_tokens"):
        assert getattr(app, name) == getattr(defaults, name), name
    for command in ("generate", "chat"):
        extra = ["--prompt", "x"] if command == "generate" else []
        args = build_parser().parse_args([command, *extra])
        assert sampling_from_args(args) == defaults
        greedy = sampling_from_args(build_parser().parse_args([command, *extra, "--temperature", "0"]))
        assert greedy.greedy and greedy.repetition_penalty == 1.0


def test_flags_beat_the_models_recommendation_which_beats_the_defaults():
    from chatapp.cli import build_parser
    from chatapp.commands.common import sampling_from_args

    recommended = {"temperature": 0.3, "repetition_penalty": 1.2, "top_k": 20}
    args = build_parser().parse_args(["generate", "--prompt", "x", "--temperature", "0", "--top-p", "0.5"])
    s = sampling_from_args(args, recommended)
    assert (s.temperature, s.repetition_penalty, s.top_k, s.top_p, s.min_p) == (0.0, 1.2, 20, 0.5, 0.05)
    with pytest.raises(SettingsError, match="top_p"):
        sampling_from_args(build_parser().parse_args(["generate", "--prompt", "x", "--top-p", "2"]))


def test_bad_recommendations_are_dropped_one_by_one(caplog):
    from chatapp.sampling_settings import checked_recommendations

    kept = checked_recommendations({"temperature": 9.0, "top_k": 2.5, "top_p": 0.8, "min_p": "x",
                                    "repetition_penalty": True, "repeat_last_n": 32.0, "seed": 3}, "model.gguf")
    assert kept == {"top_p": 0.8, "repeat_last_n": 32}
    assert isinstance(kept["repeat_last_n"], int)
    assert "temperature must be between 0 and 5" in caplog.text and "model.gguf" in caplog.text


def test_gguf_recommended_sampling_keys_are_read(tmp_path):
    import gguf

    from chatapp.weights.gguf_config import gguf_sampling_defaults

    path = tmp_path / "m.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_float32("general.sampling.temp", 0.6)
    writer.add_int32("general.sampling.top_k", 20)
    writer.add_float32("general.sampling.penalty_repeat", 1.05)
    writer.add_int32("general.sampling.penalty_last_n", 128)
    writer.add_float32("general.sampling.top_p", 7.0)  # out of range: dropped
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    found = gguf_sampling_defaults(gguf.GGUFReader(str(path)), path)
    assert found == {"temperature": pytest.approx(0.6), "top_k": 20,
                     "repetition_penalty": pytest.approx(1.05), "repeat_last_n": 128}

    plain = tmp_path / "plain.gguf"
    writer = gguf.GGUFWriter(str(plain), "llama")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert gguf_sampling_defaults(gguf.GGUFReader(str(plain)), plain) == {}


def test_hf_generation_config_is_read(tmp_path):
    import json

    from chatapp.weights.hf_loader import hf_sampling_defaults

    assert hf_sampling_defaults(tmp_path) == {}
    (tmp_path / "generation_config.json").write_text(json.dumps(
        {"do_sample": True, "temperature": 0.6, "top_p": 0.9, "repetition_penalty": 1.1, "eos_token_id": 2}))
    assert hf_sampling_defaults(tmp_path) == {"temperature": 0.6, "top_p": 0.9, "repetition_penalty": 1.1}
    (tmp_path / "generation_config.json").write_text(json.dumps({"do_sample": False, "temperature": 0.6}))
    assert hf_sampling_defaults(tmp_path) == {"temperature": 0.0}  # transformers decodes greedily
    (tmp_path / "generation_config.json").write_text("{ broken")
    assert hf_sampling_defaults(tmp_path) == {}  # the model still loads, with our defaults


def _transformers_greedy(folder, prompt_ids, n):
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt_ids]), max_new_tokens=n, do_sample=False,
                             eos_token_id=None, pad_token_id=0)
    return out[0, len(prompt_ids):].tolist()


def test_cli_greedy_with_no_flags_equals_transformers_greedy(tmp_path, capsys):
    """Temperature 0 and no other flag is plain greedy decoding; the old default penalty (1.1)
    picks other tokens on this model, so this fails if a penalty applies by default."""
    import json

    from helpers.tiny_hf import tiny_llama_folder

    from chatapp.cli import main
    from chatapp.text import Tokenizer

    folder = tiny_llama_folder(tmp_path / "tiny", seed=3)
    tok = Tokenizer.from_hf_folder(folder)
    prompt = "the cat sat on the"
    n = 24

    def generate(*flags):
        assert main(["generate", "--model", str(folder), "--prompt", prompt, "--temperature", "0",
                     "--max-new-tokens", str(n), "--json", "--threads", "1", *flags]) == 0
        return json.loads(capsys.readouterr().out)["token_ids"]

    ours = generate()
    expected = _transformers_greedy(folder, tok.encode(prompt), n)
    assert ours == expected[:len(ours)] and len(ours) >= 8  # ours may stop at EOS, transformers here not
    assert generate("--repetition-penalty", "1.1") != ours

    # A model's recommendation is the default when it has one.
    config = json.loads((folder / "generation_config.json").read_text())
    (folder / "generation_config.json").write_text(json.dumps({**config, "repetition_penalty": 1.1}))
    assert generate() == generate("--repetition-penalty", "1.1") != ours


def test_the_loaded_models_info_carries_its_recommended_sampling(tmp_path):
    """The window reads the recommendation from ModelInfo (chat_controller.sampling)."""
    import json

    pytest.importorskip("transformers")
    from helpers.tiny_hf import tiny_llama_folder

    from chatapp.engine.backend import ChatBackend, LoadOptions

    folder = tiny_llama_folder(tmp_path / "tiny", seed=0)
    (folder / "generation_config.json").write_text(json.dumps({"do_sample": True, "temperature": 0.2,
                                                               "top_p": 0.9}))
    info = ChatBackend().load(str(folder), LoadOptions(device="cpu", context_len=64, threads=1))
    assert info.sampling_defaults == {"temperature": 0.2, "top_p": 0.9}
    assert info.to_dict()["sampling_defaults"] == {"temperature": 0.2, "top_p": 0.9}
