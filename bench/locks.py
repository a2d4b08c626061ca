"""One lock per run: two processes (two launchers, two users, a requeued Slurm job and its ghost)
never train the same run at once, and two concurrent runs of one split never both compute its floors.

``fcntl.flock`` on a lock file next to the run's checkpoint. The kernel releases the lock when the
holding process dies, however it dies (SIGKILL, a job killed by Slurm), so a crash never leaves a
stale lock behind. On a shared file system flock works across nodes on NFSv4 and on Lustre/GPFS
mounted with flock support (the usual cluster set-up). The lock file's content (host, pid, since) is
informative only: it names the holder in the line that says a run is skipped.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Optional

from bench.records import utc_now

#: A non-blocking attempt is retried for this long, since `bench status` probes a lock for a moment.
_GRACE_SECONDS = 0.5


def _open(path: Path) -> IO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a+")


def _try_lock(handle: IO, grace: float) -> bool:
    deadline = time.monotonic() + grace
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def holder(path: Path) -> str:
    """Who holds (or last held) the lock, as written by :func:`run_lock`: ``host pid N since T``."""
    try:
        info = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    if not info:
        return "another process"
    return f"{info.get('host', '?')} pid {info.get('pid', '?')} since {info.get('since', '?')}"


@contextmanager
def run_lock(path: Path, grace: float = _GRACE_SECONDS) -> Iterator[bool]:
    """Hold the run's lock for the ``with`` block; yields False at once (holding nothing) when
    another process holds it."""
    handle = _open(path)
    try:
        if not _try_lock(handle, grace):
            yield False
            return
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": utc_now()}))
        handle.flush()
        try:
            yield True
        finally:
            handle.seek(0)
            handle.truncate()  # an empty file: nobody holds it (the content is informative only)
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


@contextmanager
def waiting_lock(path: Path) -> Iterator[None]:
    """Hold ``path``'s lock for the ``with`` block, waiting for it (the floors of a split: the second
    process waits, then finds them written)."""
    handle = _open(path)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def is_locked(path: Path) -> Optional[bool]:
    """Whether a process holds ``path``'s lock now (None when there is no lock file). Takes the
    lock for an instant when it is free; :func:`run_lock`'s retries cover that instant."""
    if not Path(path).exists():
        return None
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
