"""Advisory file locks: one app instance per data folder (told, not refused), and short
read-modify-write sections on shared files (the settings file).

`fcntl.flock` on POSIX (`msvcrt.locking` on Windows): the kernel lets go of a lock when its
process ends, however it ends, so a crash never leaves a stale lock to clean up. A flock
belongs to an open file, so two windows in one process also see each other (as tests do).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Iterator, Optional

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt


def _lock(fd: int, blocking: bool) -> bool:
    """Take the exclusive lock on `fd`; False if another holder has it and `blocking` is False."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        else:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK, 1)
    except (BlockingIOError, PermissionError):
        return False
    except OSError as exc:
        if blocking:
            raise
        log.debug("lock refused: %s", exc)
        return False
    return True


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the lock file `path` (created if missing) for a short section; waits for other holders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _lock(fd, blocking=True)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


class InstanceLock:
    """Held for the life of a window: `acquire()` says whether this is the only instance using
    the folder. The lock file names the holder's process id (for a person looking; the lock
    itself is the kernel's, released when that process ends, crashed or not)."""

    def __init__(self, folder: Path, name: str = "chatapp.lock") -> None:
        self.path = Path(folder) / name
        self._fd: Optional[int] = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """True if this process now holds the lock; False if another instance holds it."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _lock(fd, blocking=False):
            os.close(fd)
            return False
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:  # the pid is only informative
            log.debug("could not write %s: %s", self.path, exc)
        self._fd = fd
        return True

    def holder(self) -> Optional[int]:
        """The process id the lock file names (the holder, or a process that has ended), None if unreadable."""
        try:
            return int(self.path.read_text(encoding="ascii").split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            _unlock(fd)
        finally:
            os.close(fd)
