"""Hostile chat templates (from a model file) end in our ChatTemplateError, in bounded time and
memory, in the text layer, the generation backend and the command line alike.

The templates run in a child process whose address space is capped with RLIMIT_AS and whose
time limit is lowered, so that a missing bound shows up as a MemoryError, a crash or a timeout
instead of taking the test machine down.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from chatapp import limits
from chatapp.text import ChatTemplateError, Tokenizer, render_chat

ROOT = Path(__file__).resolve().parents[2]
CHILD_MEMORY = 768 << 20  # bytes of address space: ~160 MB is the child's baseline
CHILD_SECONDS = 0.5  # TEMPLATE_MAX_SECONDS in the child

# name -> (template, the words our error must contain)
HOSTILE = {
    "nested loops": ("{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}"
                     "{% endfor %}{% endfor %}{% endfor %}", "ran longer"),
    "loop filtered to nothing": ("{% for a in range(100000) %}{% for b in range(100000) if false %}{% endfor %}"
                                 "{% endfor %}", "ran longer"),
    "exponential macro": ("{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}",
                          "ran longer"),
    "string times 10**9 in set": ("{% set x = 'a' * 10**9 %}{{ x|length }}", "value of more than"),
    "string times 10**9 printed": ("{{ 'a' * 10**9 }}", "value of more than"),
    "list times 10**9": ("{{ ([1] * 10**9)|length }}", "value of more than"),
    "lipsum 10**7": ("{{ lipsum(10**7) }}", "to a function"),
    "lipsum many words": ("{{ lipsum(50, max=100000) }}", "lipsum() is limited"),
    "range 10**9": ("{% for i in range(10**9) %}{% endfor %}", "to a function"),
    "range 200000": ("{% for i in range(200000) %}{% endfor %}", "range of more than"),
    "power tower": ("{{ 10 ** 100000 }}", "bits"),
    "squaring": ("{% set ns = namespace(x=3) %}{% for i in range(40) %}{% set ns.x = ns.x * ns.x %}{% endfor %}",
                 "bits"),
    "doubling with +": ("{% set ns = namespace(x='a') %}{% for i in range(64) %}{% set ns.x = ns.x + ns.x %}"
                        "{% endfor %}", "value of more than"),
    "doubling with ~": ("{% set ns = namespace(x='a') %}{% for i in range(64) %}{% set ns.x = ns.x ~ ns.x %}"
                        "{% endfor %}", "value of more than"),
    "shared list tree": ("{% set ns = namespace(x=[1]) %}{% for i in range(64) %}{% set ns.x = [ns.x, ns.x] %}"
                         "{% endfor %}{{ ns.x }}", "value of more than"),
    "str.center": ("{{ 'a'.center(10**9) }}", "to a function"),
    "center filter, many times": ("{% for i in range(100) %}{{ 'a'|center(999999) }}{% endfor %}", "wrote more than"),
    "percent width": ("{{ '%999999999s' % 'a' }}", "width"),
    "format width": ("{{ '{:>999999999}'.format('a') }}", "width"),
    "format filter width": ("{{ '%999999999d'|format(1) }}", "width"),
    "indent": ("{% set s = '\\n' * 900000 %}{{ s|indent(1000) }}", "value of more than"),
    "replace": ("{% set s = 'a' * 900000 %}{{ s.replace('a', s) }}", "value of more than"),
    "replace filter": ("{% set s = 'a' * 900000 %}{{ s|replace('a', s) }}", "value of more than"),
    "join": ("{% set s = 'a' * 500000 %}{{ [s, s, s, s, s, s, s, s, s, s]|join }}", "value of more than"),
    "wordwrap": ("{% set s = 'a ' * 400000 %}{{ s|wordwrap(1, wrapstring='x' * 1000) }}", "value of more than"),
    "expandtabs": ("{% set s = '\\t' * 900000 %}{{ s.expandtabs(1000) }}", "value of more than"),
    "tojson indent": ("{% set ns = namespace(x=[1]) %}{% for i in range(10) %}{% set ns.x = [ns.x, ns.x, ns.x] %}"
                      "{% endfor %}{{ ns.x|tojson(indent=100000) }}", "value of more than"),
    "batch fill": ("{{ [1]|batch(10**9, 'x')|list|length }}", "to a function"),
    "macro writing a flood": ("{% macro f() %}{% for i in range(100000) %}{% for j in range(100000) %}"
                              + "x" * 60 + "{% endfor %}{% endfor %}{% endmacro %}{{ f()|length }}", "wrote more than"),
    "literal text in loops": ("{% for i in range(100000) %}{% for j in range(100000) %}" + "x" * 30
                              + "{% endfor %}{% endfor %}", "wrote more than"),
    "namespace holding itself": ("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", "nested more than"),
    "deep parentheses": ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "nested"),
    "huge source": ("x" * (limits.TEMPLATE_MAX_SOURCE_CHARS + 1), "characters long"),
}

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))
    from chatapp import limits
    limits.TEMPLATE_MAX_SECONDS = {seconds}
    from chatapp.text.chat_template import ChatTemplateError, render_chat
    cases = json.load(sys.stdin)
    results = {{}}
    for name, template in cases.items():
        start = time.perf_counter()
        try:
            text = render_chat(template, [{{"role": "user", "content": "hi"}}])
            outcome = ["rendered", False, len(text)]
        except ChatTemplateError as exc:
            outcome = ["ChatTemplateError", exc.exceeded_limit, exc.reason]
        except BaseException as exc:
            outcome = [type(exc).__name__, False, str(exc)[:200]]
        results[name] = outcome + [time.perf_counter() - start]
    # VmHWM is this program's peak; ru_maxrss would also count the parent's pages copied at fork.
    try:
        peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({{"results": results, "peak_mb": peak_kb / 1024}}))
""")


def run_in_child(cases: dict[str, str], timeout: float = 120) -> dict:
    code = CHILD.format(memory=CHILD_MEMORY, seconds=CHILD_SECONDS)
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps(cases), capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def hostile_results() -> dict:
    return run_in_child({name: template for name, (template, _) in HOSTILE.items()})


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_template_ends_in_our_error_within_bounds(hostile_results, name):
    kind, exceeded, reason, seconds = hostile_results["results"][name]
    assert kind == "ChatTemplateError", reason
    assert exceeded, reason
    assert HOSTILE[name][1] in reason and "MemoryError" not in reason
    assert seconds < CHILD_SECONDS + 3.0  # a busy 2-core machine; unbounded cases run for minutes


def test_hostile_templates_stay_small_in_memory(hostile_results):
    assert hostile_results["peak_mb"] < 400  # of the 768 MB allowed: no case got near it


def test_ordinary_templates_still_render_in_the_child():
    ordinary = {
        "chatml": "",
        "loops and filters": "{% for m in messages %}{{ m['role']|upper }}: {{ m['content']|trim|center(20) }}"
                             "{{ ' '.join(['a', 'b']) }}{{ '%5d' % 42 }}{{ '{:>6}'.format('x') }}"
                             "{{ range(1000)|list|length }}{{ lipsum(2, html=False)|length > 0 }}{% endfor %}",
        "json tools": "{{ [{'name': 'f', 'parameters': {'a': [1, 2, {'b': 'c'}]}}]|tojson(indent=2) }}",
        "big but bounded": "{% for i in range(10000) %}{{ i }}{% endfor %}",
    }
    results = run_in_child(ordinary)["results"]
    assert {name: r[0] for name, r in results.items()} == {name: "rendered" for name in ordinary}


def test_the_limits_scale_with_the_conversation():
    # A long conversation (beyond TEMPLATE_MAX_CHARS) renders: the output budget grows with the input.
    long = [{"role": "user", "content": "x" * (limits.TEMPLATE_MAX_CHARS + 10)}]
    assert len(render_chat(None, long)) > limits.TEMPLATE_MAX_CHARS
    with pytest.raises(ChatTemplateError, match="value of more than"):
        render_chat("{{ messages[0]['content'] * 10 }}", long)


def test_fuzzed_templates_never_escape_our_error():
    """Seeded random combinations of loop, growth and output fragments: each renders or ends
    in ChatTemplateError, never another exception, within the time limit."""
    rng = random.Random(13)
    openers = ["{% for i in range(N) %}", "{% for m in messages * N %}", "{% if true %}", "{% macro f(n) %}"]
    bodies = ["{{ 'ab' * N }}", "{% set ns.s = ns.s ~ ns.s %}", "{% set ns.s = ns.s + ns.s %}", "{{ ns.s|length }}",
              "{{ lipsum(N) }}", "{{ ns.s|indent(N) }}", "{{ ns.s|center(N) }}", "{{ '%Nd' % 1 }}",
              "{{ [ns.s, ns.s]|join }}", "{{ ns.s.replace('a', ns.s) }}", "{{ 7 ** N }}", "text "]
    closers = {"{% for": "{% endfor %}", "{% if ": "{% endif %}", "{% mac": "{% endmacro %}{{ f(3) }}"}
    cases = {}
    for n in range(60):
        parts = ["{% set ns = namespace(s='a') %}"]
        for _ in range(rng.randint(1, 3)):
            opener = rng.choice(openers)
            parts.insert(1, opener)
            parts.append(rng.choice(bodies))
            parts.append(closers[opener[:6]])
        template = "".join(parts)
        for _ in range(template.count("N")):
            template = template.replace("N", str(rng.choice([2, 50, 1000, 10**5, 10**7, 10**9])), 1)
        cases[f"fuzz {n}"] = template
    results = run_in_child(cases)["results"]
    for name, (kind, _exceeded, reason, seconds) in results.items():
        assert kind in ("rendered", "ChatTemplateError"), (cases[name], kind, reason)
        assert seconds < CHILD_SECONDS + 3.0, cases[name]


# -- the same error in every path, naming the model file ---------------------------------------
LOOP = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"


@pytest.fixture
def fast_limits(monkeypatch):
    monkeypatch.setattr(limits, "TEMPLATE_MAX_SECONDS", 0.3)


@pytest.fixture
def hostile_folder(tmp_path) -> Path:
    """A tokenizer.json folder whose template loops for ever."""
    from tokenizers import Tokenizer as HFBackend
    from tokenizers import models, pre_tokenizers

    backend = HFBackend(models.BPE(vocab={c: i for i, c in enumerate(pre_tokenizers.ByteLevel.alphabet())}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.add_special_tokens(["<|im_end|>"])
    backend.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": LOOP, "eos_token": "<|im_end|>"}))
    return tmp_path


def test_tokenizer_error_names_the_model_file_and_what_to_do(fast_limits, hostile_folder):
    tokenizer = Tokenizer.from_hf_folder(hostile_folder)
    start = time.perf_counter()
    with pytest.raises(ChatTemplateError) as caught:
        tokenizer.apply_chat_template([{"role": "user", "content": "hi"}])
    assert time.perf_counter() - start < 2
    message = str(caught.value)
    assert str(hostile_folder) in message and "ran longer than 0.3 s" in message
    assert "chatapp/limits.py" in message and "use another copy of the model" in message
    assert caught.value.exceeded_limit and caught.value.source == str(hostile_folder)


def test_generation_backend_stops_with_the_same_error(fast_limits, hostile_folder):
    """What the window's worker runs: ChatBackend.stream (the worker reports any exception)."""
    from chatapp.engine.backend import ChatBackend
    from chatapp.engine.sampling import SamplingSettings

    backend = ChatBackend()
    backend.engine = SimpleNamespace(tokenizer=Tokenizer.from_hf_folder(hostile_folder), context_len=4096)
    start = time.perf_counter()
    with pytest.raises(ChatTemplateError, match="ran longer than"):
        list(backend.stream([{"role": "user", "content": "hi"}], "", SamplingSettings()))
    assert time.perf_counter() - start < 2


def test_cli_prints_one_line_and_fails(fast_limits, tmp_path, capsys):
    pytest.importorskip("transformers")
    from tests.helpers.tiny_hf import tiny_llama_folder

    from chatapp import cli

    model = tiny_llama_folder(tmp_path / "model")
    config = json.loads((model / "tokenizer_config.json").read_text())
    config["chat_template"] = LOOP
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    (model / "chat_template.jinja").unlink(missing_ok=True)
    capsys.readouterr()  # what writing the model printed
    start = time.perf_counter()
    code = cli.main(["generate", "--model", str(model), "--chat", "--prompt", "hi", "--threads", "1"])
    assert time.perf_counter() - start < 30
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1, err
    assert str(model) in err[0] and "ran longer than" in err[0] and "Traceback" not in err[0]


def test_template_that_renders_nothing_is_a_clear_error(hostile_folder):
    tokenizer = Tokenizer.from_hf_folder(hostile_folder)
    tokenizer.chat_template = "{% if false %}x{% endif %}"
    from chatapp.text import render_and_encode

    with pytest.raises(ChatTemplateError, match="rendered no text") as caught:
        render_and_encode(tokenizer, [{"role": "user", "content": "hi"}])
    assert str(hostile_folder) in str(caught.value)


def test_syntax_error_says_what_to_do(hostile_folder):
    tokenizer = Tokenizer.from_hf_folder(hostile_folder)
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }"
    with pytest.raises(ChatTemplateError, match="syntax error on line 1") as caught:
        tokenizer.apply_chat_template([{"role": "user", "content": "hi"}])
    assert str(hostile_folder) in str(caught.value) and "use another copy of the model" in str(caught.value)
    assert caught.value.unusable and not caught.value.exceeded_limit
    tokenizer.chat_template = "{{ raise_exception('roles must alternate') }}"
    with pytest.raises(ChatTemplateError, match="roles must alternate") as caught:
        tokenizer.apply_chat_template([{"role": "user", "content": "hi"}])
    assert not caught.value.unusable and "another copy" not in str(caught.value)  # the conversation's fault
