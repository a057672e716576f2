"""Writing results: whole or not at all, to a place checked before any work is done.

`check_output` refuses what cannot be written (a folder, a path under a file, an unwritable
folder) with an `InputError`; the commands call it before reading their input. `write_atomic`
writes a regular file through a temporary file and a rename, follows a symlink to its target
(the link stays a link) and writes a FIFO or a device (`/dev/stdout`) in place: none of them
is ever replaced by a regular file. A new file is readable by its owner only (patient data).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from trdstage.adapters.errors import InputError


def _target(path: Path) -> Path:
    """The file a write to `path` lands in: a symlink's (final) target, else `path`."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _is_special(path: Path) -> bool:
    """A FIFO, a character or block device, or a socket: written in place."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


def check_output(path: str | Path, option: str = "--output") -> None:
    """Raise `InputError` if `path` cannot receive a file; creates nothing."""
    if str(path).strip() in ("", "."):
        raise InputError(option, "empty path: give a file name")
    target = _target(Path(path))
    where = f"{option} {path}"
    if target.is_dir():
        raise InputError(where, "is a folder: give a file name")
    if _is_special(target):
        if not os.access(target, os.W_OK):
            raise InputError(where, "not writable")
        return
    if target.exists() and not target.is_file():
        raise InputError(where, "is not a regular file")
    folder = target.parent
    while not folder.exists():  # folders that do not exist yet are made at write time
        if folder.is_symlink():
            raise InputError(where, f"{folder} is a broken symlink")
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(where, f"{folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(where, f"cannot write in {folder} (permission denied)")
    if target.exists() and not os.access(target, os.W_OK):
        raise InputError(where, "not writable (permission denied)")


def write_atomic(path: str | Path, data: str | bytes, option: str = "--output") -> None:
    """Write `data` to `path` whole or not at all (see the module docstring); an `InputError`
    naming the path if it cannot be written."""
    check_output(path, option)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    target = _target(Path(path))
    try:
        if _is_special(target):
            with target.open("wb") as fh:
                fh.write(payload)
            return
        _replace(target, payload)
    except OSError as exc:
        raise InputError(f"{option} {path}", f"cannot write ({exc.strerror or exc})") from exc


def _replace(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # a file replaced keeps its permissions; a new one is private (0600): it holds patient data
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o600
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

