"""Atomic file and folder writes: a reader sees the old content or the new one, never half of it.

:func:`atomic_path` yields a temporary path beside the target
(``.<name>.partial-<random><ext>``) for any writer (``joblib.dump``,
``torch.save``, ``open``); when the block succeeds the file is flushed to
disk and moved onto the target with :func:`os.replace`, so a crash, a full
disk or Ctrl-C leaves the previous file intact. :func:`atomic_folder` does the
same for a folder of files. On failure the temporary is removed, and an
:class:`OSError` is re-raised with a message naming the *target* path, its
cause and the fix.

A process killed with ``kill -9`` cannot clean up. Each temporary is therefore
locked (:func:`fcntl.flock`) while it is written; the next write to the same
target removes every ``.<name>.partial-*`` left behind whose lock is free, i.e.
whose writer is gone. (Where ``flock`` does not exist, Windows, a file still
open in another process cannot be removed, which serves the same purpose.)

Example
-------
>>> import joblib
>>> with atomic_path("model.joblib") as temporary:  # doctest: +SKIP
...     joblib.dump(estimator, temporary)
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import tempfile
from typing import Iterator

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["atomic_folder", "atomic_path", "remove_stale_partials", "write_bytes_atomically"]

_PARTIAL = ".partial-"

#: what to do about the usual causes of a failed write
_ADVICE = {
    errno.ENOSPC: "free some disk space or choose another folder",
    errno.EDQUOT: "free some space within your disk quota or choose another folder",
    errno.EACCES: "choose a folder you may write to",
    errno.EPERM: "choose a folder you may write to",
    errno.EROFS: "the file system is read-only; choose another folder",
    errno.ENOENT: "create the folder first or choose an existing one",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
}


def _partial_prefix(path: str) -> tuple[str, str]:
    folder, name = os.path.split(os.path.abspath(path))
    return folder, f".{name}{_PARTIAL}"


def _write_error(path: str, exc: OSError) -> OSError:
    """An ``OSError`` of the same kind as ``exc`` whose message names ``path`` (not a temporary) and the cause."""
    cause = exc.strerror or str(exc) or type(exc).__name__
    advice = _ADVICE.get(exc.errno, "check the path and the disk")
    folder = os.path.dirname(os.path.abspath(path))
    if exc.errno == errno.ENOENT and not os.path.isdir(folder):
        cause = f"the folder {folder!r} does not exist"
    message = f"Cannot write {path!r}: {cause}; {advice}. Nothing was changed at that path."
    return OSError(exc.errno, message) if exc.errno is not None else OSError(message)


def _default_mode(directory: bool) -> int:
    """The permissions ``open``/``mkdir`` would give a new file or folder (mkstemp's are private: 0600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock on an open file or folder; False when another process holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.remove(path)


def remove_stale_partials(path: str) -> list[str]:
    """Remove the temporaries of ``path`` left by writers that are gone (killed, crashed).

    A temporary whose writer is alive is locked and kept.

    Parameters
    ----------
    path : str
        The target file or folder whose ``.<name>.partial-*`` siblings to clean.

    Returns
    -------
    list of str
        The temporaries removed.
    """
    folder, prefix = _partial_prefix(path)
    removed = []
    for candidate in glob.glob(os.path.join(glob.escape(folder), glob.escape(prefix) + "*")):
        try:
            fd = os.open(candidate, os.O_RDONLY)
        except OSError:
            continue
        try:
            if not _try_lock(fd):
                continue  # its writer is still at work
            _remove(candidate)
            removed.append(candidate)
        finally:
            os.close(fd)
    return removed


def _fsync(path: str) -> None:
    """Flush a file's (or a folder entry's) data to disk, where the platform allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _partial(path: str, folder_kind: bool) -> Iterator[tuple[str, int]]:
    """Create the locked temporary for ``path``; remove it if the block fails; map OSErrors to ``path``."""
    path = os.fspath(path)
    folder, prefix = _partial_prefix(path)
    temporary, fd = None, None
    try:
        remove_stale_partials(path)
        if folder_kind:
            temporary = tempfile.mkdtemp(prefix=prefix, dir=folder)
            fd = os.open(temporary, os.O_RDONLY)
        else:
            fd, temporary = tempfile.mkstemp(prefix=prefix, suffix=os.path.splitext(path)[1], dir=folder)
        _try_lock(fd)
        if os.path.exists(path):
            os.chmod(temporary, os.stat(path).st_mode & 0o7777)
        else:
            os.chmod(temporary, _default_mode(folder_kind))
        yield temporary, fd
    except BaseException as exc:  # also KeyboardInterrupt: never leave the temporary behind
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
            fd = None
        if temporary is not None:
            _remove(temporary)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from exc
        raise
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary file path that replaces ``path`` when the block succeeds.

    Parameters
    ----------
    path : str or path-like
        The file to write. Its folder must exist. The temporary keeps the
        extension of ``path`` (writers such as ``joblib.dump`` choose their
        format by it).

    Yields
    ------
    str
        The temporary path to write to (an empty file exists there).

    Raises
    ------
    OSError
        The writer's or the move's own ``OSError`` (full disk, unwritable or
        missing folder), with a message naming ``path``; ``path`` is then
        unchanged and the temporary removed.
    """
    path = os.fspath(path)
    with _partial(path, folder_kind=False) as (temporary, fd):
        mode = os.stat(temporary).st_mode & 0o7777  # the old file's permissions, or the umask's
        yield temporary
        os.chmod(temporary, mode)  # writers that recreate the file (safetensors) leave it 0600
        _fsync(temporary)
        if os.name == "nt":  # Windows cannot rename a file that is open
            os.close(fd)
        os.replace(temporary, path)
    _fsync(os.path.dirname(os.path.abspath(path)))


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary folder that becomes ``path`` when the block succeeds.

    ``path`` must not exist yet or be a folder; an existing one is replaced
    (moved aside to ``.<name>.partial-old-*`` for the instant of the swap,
    then removed).

    Parameters
    ----------
    path : str or path-like
        The folder to create. Its parent must exist.

    Yields
    ------
    str
        An empty temporary folder to fill.

    Raises
    ------
    OSError
        As :func:`atomic_path`, naming ``path``.
    """
    path = os.fspath(path)
    with _partial(path, folder_kind=True) as (temporary, fd):
        yield temporary
        for name in os.listdir(temporary):
            _fsync(os.path.join(temporary, name))
        _fsync(temporary)
        if os.name == "nt":
            os.close(fd)
        old = None
        if os.path.isdir(path):
            folder, prefix = _partial_prefix(path)
            old = tempfile.mkdtemp(prefix=prefix + "old-", dir=folder)
            os.replace(path, old)  # onto the empty folder just made
        os.rename(temporary, path)
        if old is not None:
            _remove(old)
    _fsync(os.path.dirname(os.path.abspath(path)))


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
