"""Build the packaged app: dist/chatapp/ and dist/chatapp-<version>-<platform>.tar.gz (.zip on Windows).

    .venv/bin/python packaging/build.py        # what `make package` runs
    options: --clean (PyInstaller without its cache), --no-strip, --no-prune, --no-archive,
             --skip-install

Steps, each timed: install the pinned PyInstaller into this interpreter's environment if it is
missing; run PyInstaller on packaging/chatapp.spec (which excludes and prunes, printing what each
rule saved); on Linux strip the symbol tables from the bundled shared libraries that still
carry them (libtorch_cpu.so alone: ~90 MB); archive. Prints the folder and archive sizes and
writes them, with the times, to dist/build-report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from buildinfo import PACKAGING, ROOT, platform_tag, project_name_version  # noqa: E402

PYINSTALLER = "pyinstaller==6.22.3"  # keep in step with the `package` extra in pyproject.toml
DIST = ROOT / "dist"
WORK = ROOT / "build" / "pyinstaller"
MIB = 1024 * 1024


def say(message: str) -> None:
    print(f"build.py: {message}", flush=True)


def ensure_pyinstaller(skip: bool) -> None:
    wanted = PYINSTALLER.split("==")[1]
    try:
        import PyInstaller
        have = PyInstaller.__version__
    except ImportError:
        have = None
    if have == wanted or skip:
        return
    say(f"installing {PYINSTALLER} (found {have or 'none'}) into {sys.prefix}")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", PYINSTALLER], check=True)


def run_pyinstaller(clean: bool, prune: bool, log_path: Path) -> None:
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
           "--distpath", str(DIST), "--workpath", str(WORK), str(PACKAGING / "chatapp.spec")]
    if clean:
        cmd.insert(3, "--clean")
    env = dict(os.environ, CHATAPP_PACKAGING_NO_PRUNE="0" if prune else "1")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log, \
            subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, errors="replace") as proc:
        for line in proc.stdout:
            log.write(line)
            if "chatapp.spec:" in line or "ERROR" in line or "Traceback" in line:
                print(line, end="", flush=True)
    if proc.returncode:
        raise SystemExit(f"error: PyInstaller failed ({proc.returncode}); see {log_path}")


def _has_symtab(path: Path) -> bool:
    """An ELF file with a .symtab section (a full symbol table; only .dynsym is needed to run)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:  # 64-bit little-endian only
                return False
            shoff, = struct.unpack_from("<Q", head, 0x28)
            shentsize, shnum = struct.unpack_from("<HH", head, 0x3A)
            f.seek(shoff)
            table = f.read(shentsize * shnum)
    except (OSError, struct.error):
        return False
    return any(struct.unpack_from("<I", table, i * shentsize + 4)[0] == 2 for i in range(shnum))


def strip_libraries(folder: Path) -> int:
    """`strip --strip-unneeded` on bundled shared libraries that carry a symbol table.

    Executables are left alone: a PyInstaller executable carries its archive after the ELF data.
    So are the libraries auditwheel grafted into `<package>.libs/` folders: patchelf rewrote
    them, and GNU strip turns such a file into one the loader refuses ("ELF load command
    address/offset not page-aligned", seen with numpy.libs/libscipy_openblas64_*.so).
    """
    if not sys.platform.startswith("linux") or not shutil.which("strip"):
        say("strip: skipped (not Linux, or no `strip` on PATH)")
        return 0
    saved = 0
    for path in sorted(folder.rglob("*.so*")):
        if path.is_symlink() or not path.is_file() or path.parent.name.endswith(".libs"):
            continue
        if not _has_symtab(path):
            continue
        before = path.stat().st_size
        subprocess.run(["strip", "--strip-unneeded", str(path)], check=True)
        after = path.stat().st_size
        saved += before - after
        if before - after > MIB:
            say(f"strip: {path.relative_to(folder)} {before / MIB:.1f} -> {after / MIB:.1f} MiB")
    say(f"strip: saved {saved / MIB:.1f} MiB")
    return saved


def folder_size(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def archive(source: Path, name: str, version: str) -> Path:
    stem = f"{name}-{version}-{platform_tag()}"
    if sys.platform == "win32":
        target = DIST / f"{stem}.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for path in sorted(source.rglob("*")):
                zf.write(path, Path(source.name) / path.relative_to(source))
    else:  # tar keeps the symlinks of a macOS .app and of the Linux folder
        target = DIST / f"{stem}.tar.gz"
        with tarfile.open(target, "w:gz", compresslevel=6) as tf:
            tf.add(source, arcname=source.name)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clean", action="store_true", help="ignore PyInstaller's cache")
    parser.add_argument("--no-strip", action="store_true", help="keep symbol tables")
    parser.add_argument("--no-prune", action="store_true",
                        help="contrib's torch hook and no pruning (to measure, or to rule pruning out)")
    parser.add_argument("--no-archive", action="store_true", help="build the folder only")
    parser.add_argument("--skip-install", action="store_true", help="do not install PyInstaller")
    args = parser.parse_args(argv)

    name, version = project_name_version()
    report: dict = {"name": name, "version": version, "platform": platform_tag(), "times_s": {}}
    started = time.perf_counter()

    def step(label: str, func, *a):
        t0 = time.perf_counter()
        result = func(*a)
        report["times_s"][label] = round(time.perf_counter() - t0, 1)
        say(f"{label}: {report['times_s'][label]} s")
        return result

    step("install", ensure_pyinstaller, args.skip_install)
    report["pruned"] = not args.no_prune
    step("pyinstaller", run_pyinstaller, args.clean, not args.no_prune, ROOT / "build" / "pyinstaller.log")
    folder = DIST / name
    app_bundle = DIST / f"{name}.app"
    if not args.no_strip:
        report["strip_saved_mib"] = round(step("strip", strip_libraries, folder) / MIB, 1)
    report["folder"] = str(folder.relative_to(ROOT))
    report["folder_mib"] = round(folder_size(folder) / MIB, 1)
    say(f"folder {folder.relative_to(ROOT)}: {report['folder_mib']} MiB")
    if not args.no_archive:
        source = app_bundle if sys.platform == "darwin" and app_bundle.is_dir() else folder
        target = step("archive", archive, source, name, version)
        report["archive"] = str(target.relative_to(ROOT))
        report["archive_mib"] = round(target.stat().st_size / MIB, 1)
        say(f"archive {target.relative_to(ROOT)}: {report['archive_mib']} MiB")
    report["times_s"]["total"] = round(time.perf_counter() - started, 1)
    (DIST / "build-report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    say(f"total: {report['times_s']['total']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
