"""Atomic writes: a crash leaves the previous file (or directory) or nothing, never half of one."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _create_unique(path, ".tmp",
                               lambda p: os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)))
    if path.exists():  # a replacement keeps the permissions of the file it replaces
        os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; on success it takes the place of ``path``.

    An existing ``path`` is first renamed aside and removed only after the new one is in place, so a
    crash at any moment leaves either the old directory, the new one, or (between two renames) none,
    plus a hidden leftover that the next write to the same place clears.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.partial"):
        shutil.rmtree(stale, ignore_errors=True)
    temporary = _create_unique(path, ".partial", lambda p: os.mkdir(p, 0o777))
    try:
        yield temporary
        _fsync_tree(temporary)
        if path.exists():
            retired = _create_unique(path, ".partial", lambda p: os.mkdir(p, 0o700))
            os.replace(path, retired / path.name)
            os.replace(temporary, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(temporary, path)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def _create_unique(path: Path, suffix: str, create) -> Path:
    """Create a hidden sibling of ``path`` with a random name. ``create`` passes the mode to the system
    call, so the process umask applies as it would to a plain open() or mkdir() (tempfile's 0600/0700
    would leave reports and bundles unreadable to the user's group)."""
    for _ in range(100):
        candidate = path.parent / f".{path.name}.{secrets.token_hex(6)}{suffix}"
        try:
            create(candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"cannot create a temporary name beside {path}")


def _fsync_tree(root: Path) -> None:
    for file in root.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
