"""Update the Qt Linguist catalogue from the UI's `_tr("...")` calls, then compile it.

    python resources/i18n/update_translations.py            # update chatapp_zh_CN.ts, write .qm
    python resources/i18n/update_translations.py --check    # exit 1 if the .ts is out of date

Each module of chatapp/ui that shows text defines `_tr(text)`, which calls
`QGuiApplication.translate("<Context>", text)`; the context is the string literal found there.
Every `_tr(...)` call must take one plain string literal, or the string could not be found
here (an f-string or a variable is reported as an error: format after translating instead,
`_tr("{n} tokens").format(n=n)`).

We parse the sources with `ast` instead of running `pyside6-lupdate`, which does not know
our `_tr` helper. The .ts keeps existing translations; messages that left the code are
marked obsolete (and dropped if they were never translated); new ones are unfinished.
`pyside6-lrelease` then writes the .qm that `chatapp.ui.i18n.install_translator` loads.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
UI_DIR = REPO / "chatapp" / "ui"
LANGUAGES = ("zh_CN",)
HELPER = "_tr"


class ExtractionError(Exception):
    """A `_tr` call whose text cannot be read from the source, or a module without context."""


@dataclass
class Message:
    source: str
    translation: str = ""
    kind: str = "unfinished"  # "" (finished), "unfinished" or "obsolete"
    locations: list[tuple[str, int]] = field(default_factory=list)  # (path relative to the .ts, line)


# -- reading the sources ---------------------------------------------------------------------
def _module_context(tree: ast.Module, path: Path) -> str | None:
    """The literal context passed to translate() inside the module's `_tr`; None if no `_tr`."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == HELPER:
            for call in ast.walk(node):
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr == "translate" and call.args
                        and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)):
                    return call.args[0].value
            raise ExtractionError(f"{path}:{node.lineno}: {HELPER} does not call translate(\"Context\", text)")
    return None


def extract_file(path: Path) -> tuple[str | None, list[tuple[str, int]], list[str]]:
    """(context, [(text, line)], [errors]) for one module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    context = _module_context(tree, path)
    found: list[tuple[str, int]] = []
    errors: list[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == HELPER):
            continue
        arg = node.args[0] if len(node.args) == 1 and not node.keywords else None
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            found.append((arg.value, node.lineno))
        else:
            errors.append(f"{path}:{node.lineno}: {HELPER}() needs one plain string literal, "
                          f"got {ast.unparse(node)}")
    if found and context is None:
        errors.append(f"{path}: calls {HELPER}() but defines no {HELPER} with a translate context")
    return context, sorted(found, key=lambda item: item[1]), errors


def extract(ui_dir: Path = UI_DIR, relative_to: Path = HERE) -> tuple[dict[str, dict[str, Message]], list[str]]:
    """{context: {source: Message}} for every `_tr` string under ui_dir, in source order."""
    contexts: dict[str, dict[str, Message]] = {}
    errors: list[str] = []
    for path in sorted(ui_dir.rglob("*.py")):  # ui/training/ and any other subpackage too
        context, found, file_errors = extract_file(path)
        errors += file_errors
        rel = Path(os.path.relpath(path, relative_to)).as_posix()
        for text, line in found:
            message = contexts.setdefault(context, {}).setdefault(text, Message(text))
            message.locations.append((rel, line))
    return contexts, errors


# -- the .ts file ----------------------------------------------------------------------------
def read_ts(path: Path) -> dict[str, dict[str, Message]]:
    if not path.exists():
        return {}
    contexts: dict[str, dict[str, Message]] = {}
    for ctx in ET.parse(path).getroot().iter("context"):
        name = ctx.findtext("name", "")
        messages = contexts.setdefault(name, {})
        for msg in ctx.iter("message"):
            source = msg.findtext("source", "")
            node = msg.find("translation")
            translation = (node.text or "") if node is not None else ""
            kind = node.get("type", "") if node is not None else "unfinished"
            messages[source] = Message(source, translation, "obsolete" if kind == "vanished" else kind)
    return contexts


def merge(found: dict[str, dict[str, Message]], old: dict[str, dict[str, Message]]) -> dict[str, dict[str, Message]]:
    """Found messages with their old translations, then the old ones that are gone (obsolete)."""
    merged: dict[str, dict[str, Message]] = {}
    for context in sorted(set(found) | set(old)):
        new_msgs, old_msgs = found.get(context, {}), old.get(context, {})
        out: dict[str, Message] = {}
        for source, message in new_msgs.items():
            before = old_msgs.get(source)
            if before is not None and before.translation:
                # a message that comes back from obsolete wants a look before it counts as done
                kind = "unfinished" if before.kind == "obsolete" else before.kind
                message = Message(source, before.translation, kind, list(message.locations))
            out[source] = message
        for source, before in old_msgs.items():
            if source not in new_msgs and before.translation:  # keep the work, out of the .qm
                out[source] = Message(source, before.translation, "obsolete")
        if out:
            merged[context] = out
    return merged


def _esc(text: str, attribute: bool = False) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace('"', "&quot;") if attribute else text.replace("'", "&apos;")


def render_ts(contexts: dict[str, dict[str, Message]], language: str) -> str:
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<!DOCTYPE TS>",
             f'<TS version="2.1" language="{language}" sourcelanguage="en">']
    for context, messages in contexts.items():
        lines += ["<context>", f"    <name>{_esc(context)}</name>"]
        for message in messages.values():
            lines.append("    <message>")
            for filename, line in message.locations:
                lines.append(f'        <location filename="{_esc(filename, True)}" line="{line}"/>')
            lines.append(f"        <source>{_esc(message.source)}</source>")
            kind = f' type="{message.kind}"' if message.kind else ""
            lines.append(f"        <translation{kind}>{_esc(message.translation)}</translation>")
            lines.append("    </message>")
        lines.append("</context>")
    lines.append("</TS>")
    return "\n".join(lines) + "\n"


def ts_path(language: str) -> Path:
    return HERE / f"chatapp_{language}.ts"


def lrelease_command() -> str:
    beside = Path(sys.executable).parent / "pyside6-lrelease"
    found = str(beside) if beside.exists() else shutil.which("pyside6-lrelease") or shutil.which("lrelease")
    if not found:
        raise SystemExit("pyside6-lrelease not found: install PySide6-Essentials")
    return found


def compile_qm(ts: Path) -> Path:
    qm = ts.with_suffix(".qm")
    subprocess.run([lrelease_command(), "-silent", str(ts), "-qm", str(qm)], check=True)
    return qm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a .ts is out of date")
    parser.add_argument("--no-qm", action="store_true", help="update the .ts files only")
    args = parser.parse_args(argv)

    found, errors = extract()
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        return 2
    status = 0
    for language in LANGUAGES:
        ts = ts_path(language)
        merged = merge(found, read_ts(ts))
        text = render_ts(merged, language)
        unfinished = sum(m.kind == "unfinished" for msgs in merged.values() for m in msgs.values())
        obsolete = sum(m.kind == "obsolete" for msgs in merged.values() for m in msgs.values())
        total = sum(len(msgs) for msgs in found.values())
        if args.check:
            current = ts.read_text(encoding="utf-8") if ts.exists() else ""
            if current != text:
                print(f"{ts.name}: out of date, run {Path(__file__).name}", file=sys.stderr)
                status = 1
            if unfinished:
                print(f"{ts.name}: {unfinished} unfinished translations", file=sys.stderr)
                status = 1
            continue
        ts.write_text(text, encoding="utf-8")
        print(f"{ts.name}: {total} strings, {unfinished} unfinished, {obsolete} obsolete")
        if not args.no_qm:
            print(f"wrote {compile_qm(ts).name}")
    return status


if __name__ == "__main__":
    sys.exit(main())
