"""Screenshots of "look inside the model" with the real default model (real probabilities):

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python benchmarks/inspector_screenshots.py \
        --out docs/screenshots [--adapter DIR]

1. token-view.png: a reply with its Tokens view open, one token selected, its alternatives.
2. branches.png: four versions of the reply (the first, a regenerated one, one continued from
   an alternative, another regenerated one), the second deleted, version 2 of 3 shown: `< 2/3 >`,
   the one that continued from the alternative, with that token selected.
3. finetune-diff.png: with --adapter (a LoRA adapter of the default model, e.g. one taught
   benchmarks/knowledge_docs), a passage of those documents scored with the adapter off and on,
   coloured by the change. Without --adapter the view says no adapter is loaded.
4. side-by-side-streaming.png and side-by-side.png: the base model (left) and the adapter (right,
   or the base model again without --adapter) answering one question with one seed, while both
   stream and when both are done.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from PySide6.QtWidgets import QApplication  # noqa: E402

from screenshots import close, save, settle, wait_until  # noqa: E402

QUESTION = "Name three colours of the rainbow."
COMPARE_QUESTION = "Who founded Halvorsen Lenswerks, and in which year?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--adapter", default="")
    parser.add_argument("--profile", type=Path, default=Path("/tmp/inspector-profile"))
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from chatapp.ui.app import create_window

    app, window = create_window(autoload=False, profile_dir=args.profile)
    window.resize(1250, 820)
    window.show()
    window.settings.temperature = 0.8
    window.settings.seed = 3
    window.settings.max_new_tokens = 48
    window.settings.threads = args.threads  # on a shared machine 2 torch threads can collapse; 1 does not
    window.settings_panel.apply(window.settings)
    window.model.load("default", adapter=args.adapter or None)
    wait_until(lambda: window.loading_spec is None and window.model_info is not None, args.timeout, "the model")
    chat = window.chat_controller
    window.composer.setPlainText(QUESTION)
    window.send()
    wait_until(lambda: not window.streaming, args.timeout, "the reply")
    chat.regenerate()
    wait_until(lambda: not window.streaming, args.timeout, "the second version")
    reply = window.chat.messages[1]
    reply.tokens_button.setChecked(True)
    tokens = reply.tokens
    position = min(range(len(tokens)), key=lambda i: tokens[i]["logprob"])  # the least certain token
    reply.token_view.select(position)
    settle(400)
    window.chat.verticalScrollBar().setValue(window.chat.verticalScrollBar().maximum())
    settle(300)
    save(window, args.out / "token-view.png")
    print("selected token", position, repr(tokens[position]["token"]), "top",
          [(t["token"], round(2.718281828 ** t["logprob"], 3)) for t in tokens[position]["top"]])
    alternative = next(t for t in tokens[position]["top"] if t["id"] != tokens[position]["id"])
    chat.continue_from_alternative(1, position, alternative["id"])
    wait_until(lambda: not window.streaming, args.timeout, "the reply from the alternative")
    print("continued from", repr(alternative["token"]), "new reply",
          repr(window.store.messages(window.current_id)[-1].content[:120]))
    chat.regenerate()
    wait_until(lambda: not window.streaming, args.timeout, "the fourth version")
    for _ in range(2):  # to version 2, the regenerated one (the first again: the seed is fixed)
        chat.switch_branch(1, -1)
    assert window.chat.messages[1].version == (2, 4), window.chat.messages[1].version
    chat.delete_branch(1)  # three are left: the first, the one from the alternative, the fourth
    for _ in range(3):
        step = 2 - window.chat.messages[1].version[0]
        if step:
            chat.switch_branch(1, 1 if step > 0 else -1)
    settle(400)
    window.chat.messages[1].tokens_button.setChecked(True)
    window.chat.messages[1].token_view.select(position)  # the token taken from the alternatives
    settle(400)
    window.chat.verticalScrollBar().setValue(0)
    settle(300)
    save(window, args.out / "branches.png")
    print("versions", window.chat.messages[1].version, "shown",
          repr(window.store.messages(window.current_id)[-1].content[:120]))
    passage = (HERE / "knowledge_docs" / "01_founding.md").read_text(encoding="utf-8")[:900]
    window.open_finetune_diff()
    view = window.finetune_diff
    view.set_text(passage)
    started = time.monotonic()
    view.request()
    wait_until(lambda: not view.running, args.timeout, "the scoring")
    print(f"scored in {time.monotonic() - started:.1f} s: {view.summary.text()}")
    if view.scores:
        view._show_token(max(range(len(view.scores)), key=lambda i: view.scores[i].difference or 0))
    settle(400)
    save(view, args.out / "finetune-diff.png")
    view.close()
    side_by_side(window, args)
    close(window)
    QApplication.instance().quit()
    return 0


def side_by_side(window, args) -> None:
    from chatapp.engine.side_by_side import PaneSource

    view = window.training_panel.compare_view
    right = PaneSource("adapter", args.adapter) if args.adapter else PaneSource()
    if args.adapter:
        view.set_adapters([(Path(args.adapter).name, args.adapter)])
    view.set_sources((PaneSource(), right))
    view.prompt.setPlainText(COMPARE_QUESTION)
    view.seed.setValue(5)
    view.resize(1000, 520)
    view.show()
    view.raise_()
    started = time.monotonic()
    view.request()
    wait_until(lambda: not view.running or all(len(p.reply) > 16 for p in view.panes), args.timeout,
               "both panes streaming")
    view.render()
    settle(200)
    save(view, args.out / "side-by-side-streaming.png")
    print("while streaming:", [len(p.reply) for p in view.panes], "characters")
    wait_until(lambda: not view.running, args.timeout, "the comparison")
    settle(300)
    save(view, args.out / "side-by-side.png")
    print(f"side by side in {time.monotonic() - started:.1f} s:",
          [(p.status.text(), p.reply[:100]) for p in view.panes])
    view.close()


if __name__ == "__main__":
    sys.exit(main())
