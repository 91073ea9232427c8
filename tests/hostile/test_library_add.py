"""`chatapp library add` on what a folder of downloads may hold: FIFOs (given, or met in a folder),
loops of symbolic links (given, in a folder, a folder linking to itself or its parent), files
that cannot be read. Each ends in one error line or a report naming the file and why, never a
hang, and the good files are indexed."""

from __future__ import annotations

import errno
import json
import os

import pytest

from chatapp.cli import main
from tests.helpers.bounded import run_bounded

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs and symlinks: POSIX")


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("Apples are red. " * 20)
    (folder / "sub" / "b.md").write_text("# Bananas\n\nBananas are yellow. " * 10)
    os.mkfifo(folder / "pipe.txt")
    (folder / "loop1.txt").symlink_to("loop2.txt")
    (folder / "loop2.txt").symlink_to("loop1.txt")
    (folder / "sub" / "parent").symlink_to("..")  # a folder loop
    (folder / "sub" / "itself").symlink_to(folder / "sub")
    return folder


def _add(tmp_path, *paths, capsys=None):
    rc = main(["library", "--db", str(tmp_path / "library.sqlite3"), "add", "docs", *map(str, paths), "--json"])
    out, err = capsys.readouterr()
    return rc, out, err


def test_a_folder_with_fifos_and_link_loops_indexes_the_rest_without_hanging(tmp_path, docs):
    result = run_bounded(f"""
        import contextlib, io, json
        from chatapp.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            rc = main(["library", "--db", {str(tmp_path / "library.sqlite3")!r}, "add", "docs",
                       {str(docs)!r}, {str(tmp_path / "docs" / "pipe.txt")!r}, "--json"])
        report(rc=rc, out=out.getvalue())
    """, timeout=60)
    assert result["rc"] == 0
    indexed = json.loads(result["out"])
    assert indexed["indexed"] == 2  # a.txt, sub/b.md (once, though two links lead back to it)
    assert indexed["skipped"] == 3 and sorted(p["path"] for p in indexed["problems"]) == [
        str(docs / "loop1.txt"), str(docs / "loop2.txt")]
    assert all("Too many levels of symbolic links" in p["problem"] for p in indexed["problems"])
    from chatapp.documents.library import LibraryStore
    with LibraryStore(tmp_path / "library.sqlite3") as store:
        reasons = dict(store._conn.execute("SELECT path, reason FROM files WHERE status = 'skipped'").fetchall())
    assert reasons[str(docs / "pipe.txt")] == "not a regular file"


@pytest.mark.parametrize("name, words", [
    ("loop1.txt", "loop1.txt: cannot be added: a loop of symbolic links"),
    ("nothing.txt", "nothing.txt: no such file or folder"),
])
def test_a_path_given_that_cannot_be_added_is_one_line(tmp_path, docs, capsys, name, words):
    rc, out, err = _add(tmp_path, docs / "a.txt", docs / name, capsys=capsys)
    assert rc == 1 and out == "" and err.startswith("error: ") and words in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_a_folder_given_twice_through_a_loop_is_walked_once(tmp_path, docs, capsys):
    rc, out, _ = _add(tmp_path, docs / "sub" / "itself" / "itself" / "parent", capsys=capsys)
    assert rc == 0 and json.loads(out)["indexed"] == 2


def test_an_unreadable_file_is_reported_and_the_others_indexed(tmp_path, docs, capsys, monkeypatch):
    # as root chmod 000 still reads; the read itself is made to fail as it does for other users
    import chatapp.documents.reading as reading

    real = reading._read_bytes

    def refuse(path, limit):
        if path.name == "a.txt":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, limit)

    monkeypatch.setattr(reading, "_read_bytes", refuse)
    rc, out, _ = _add(tmp_path, docs, capsys=capsys)
    report = json.loads(out)
    assert rc == 0 and report["indexed"] == 1
    assert [str(docs / "a.txt"), "unreadable: permissionerror: permission denied"] in [
        [p["path"], p["problem"].lower()] for p in report["problems"]]
