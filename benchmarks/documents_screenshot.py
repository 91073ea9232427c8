"""Screenshot of chat with documents: a reply with numbered sources, and a source's passage.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python benchmarks/documents_screenshot.py \
        --out docs/screenshots/documents-chat.png

The real window in a throw-away profile, the demo documents (benchmarks/demo_docs) indexed
into a real library, and a scripted backend that searches it from the worker thread as
ChatBackend does (no model, no torch): the reply cites the passages it was given. Saves one
image: the window with the reply and its sources on the left, the passage dialog opened from
source [1] on the right, the question's words highlighted.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from window_with_dialog import run  # noqa: E402  (puts the checkout and benchmarks/ on the path)

from PySide6.QtCore import QPoint  # noqa: E402

from screenshots import ScriptedBackend, ask  # noqa: E402

from chatapp.documents.library import LibraryStore  # noqa: E402
from chatapp.engine.backend import ReplyFinished  # noqa: E402
from chatapp.engine.retrieval import Source, build_query, with_passages  # noqa: E402

QUESTION = "Who founded the Lantern Guild, and how did the first boat come about?"
ANSWER = ("The guild was founded by **Orla Membrane**, a ferrywoman, in the year of the Grey Tide [1]. "
          "She bought the wreck of a salt barge called the *Patience* for three copper gulls, cut away "
          "the broken deck and rebuilt the hull into a narrow black boat with a brass lantern on a tall "
          "stern post [2].")


class DocumentsBackend(ScriptedBackend):
    passages = 3

    def stream(self, messages, system_prompt, settings, cancel=None, continue_last=False, documents=None,
               enable_thinking=None, logprobs=None, forced=()):
        sources, left_out = (), 0
        if documents is not None:
            with LibraryStore(documents.db_path) as store:
                hits = store.search(documents.name, build_query(messages))
            sources = tuple(Source(i + 1, h.path, h.heading, h.start, h.end, h.text)
                            for i, h in enumerate(hits[:self.passages]))
            left_out = len(hits) - len(sources)
        prompt = (f"<|im_start|>system\n{system_prompt}<|im_end|>\n<|im_start|>user\n"
                  f"{with_passages(messages[-1]['content'], sources)}<|im_end|>\n<|im_start|>assistant\n")
        shown = ""
        for start in range(0, len(ANSWER), self.chunk):
            shown += ANSWER[start:start + self.chunk]
            yield ANSWER[start:start + self.chunk]
        self.used = 900
        self.reply = ReplyFinished(text=shown, finish_reason="eos", context_used=self.used,
                                   stats={"prompt_tokens": 850, "new_tokens": len(shown) // 4, "decode_tok_s": 37.9},
                                   prompt=prompt, sources=sources, left_out=left_out,
                                   library=documents.name if documents else "")


def index_demo_docs(profile: Path) -> None:
    with LibraryStore(profile / "library.sqlite3") as store:  # where the window looks for libraries
        store.add("Lantern Guild", [HERE / "demo_docs"])
        store.index("Lantern Guild")


def shoot(window):
    """The reply with its sources, and source [1]'s passage (returned, for the bottom right)."""
    window.documents_selector.choose("Lantern Guild")
    if not ask(window, QUESTION, 30):
        raise SystemExit("the scripted reply did not finish")
    dialog = window.chat.open_source(len(window.chat.messages) - 1, 1)
    dialog.resize(560, 430)
    return dialog, QPoint(window.width() - dialog.width() - 20, window.height() - dialog.height() - 40)


def main(argv=None) -> int:
    return run(argv, __doc__, "documents-chat.png", DocumentsBackend(), shoot, prepare=index_demo_docs)


if __name__ == "__main__":
    sys.exit(main())
