"""Where a conversion writes: checks on the destination, its staging sibling, and the final
rename (an atomic exchange with ``--overwrite``).

The destination must not be the source, lie inside it or contain it; missing parents are
created (as ``save_pretrained`` does) and removed again when the conversion fails; an
existing destination is replaced only with ``overwrite`` and only once the new checkpoint is
complete. Staging directories of killed conversions are removed by the next conversion.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil

from ckptlens.lenses.errors import LensError, SourceError, Violation


class DestinationError(LensError):
    """The destination cannot be written (it exists, or its parent is not a directory)."""

    side = "destination"


def _destination_error(dst: str, expected: str, found: str) -> DestinationError:
    return DestinationError([Violation(dst, expected, found, "convert")])


def check_source_and_destination(src: str, dst: str, plan_only: bool, overwrite: bool) -> None:
    """Before anything is read: the source is a directory, the two paths do not nest, and
    (unless only planning) the destination can be written."""
    if not os.path.isdir(src):
        found = "a file" if os.path.lexists(src) else "nothing"
        raise SourceError([Violation(src, "a checkpoint directory", found, "convert")])
    real_src, real_dst = os.path.realpath(src), os.path.realpath(dst)
    if real_dst == real_src or _inside(real_dst, real_src):
        # a later conversion of the source would nest the old output (or overwrite the input)
        raise _destination_error(dst, "a path outside the source directory", "inside it")
    if _inside(real_src, real_dst):
        raise _destination_error(dst, "a path that does not contain the source", "contains it")
    if not plan_only:
        check_destination(dst, overwrite)


def _inside(path: str, directory: str) -> bool:
    return os.path.commonpath([path, directory]) == directory and path != directory


def check_destination(dst: str, overwrite: bool = False) -> None:
    """``dst`` is free (or a directory to replace, with ``overwrite``), and its nearest
    existing ancestor is a directory; checked again right before the final rename."""
    if os.path.lexists(dst):
        if not overwrite:
            raise _destination_error(
                dst, "a path that does not exist yet (or --overwrite)", "it exists"
            )
        if os.path.islink(dst) or not os.path.isdir(dst):
            raise _destination_error(dst, "a directory to replace", "not a directory")
    ancestor = os.path.dirname(os.path.abspath(dst))
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise _destination_error(dst, "a parent path of directories", f"{ancestor} is a file")


STAGING = re.compile(r"\.(.+)\.ckptlens-(\d+)\.tmp")


def temporary_sibling(dst: str) -> str:
    """Where ``dst`` is assembled: hidden, in the same directory (so the rename is atomic)."""
    parent, name = os.path.split(os.path.abspath(dst))
    return os.path.join(parent, f".{name}.ckptlens-{os.getpid()}.tmp")


def make_parents(dst: str) -> list[str]:
    """Create the missing parent directories of ``dst`` (as ``save_pretrained`` does); returns
    them, outermost first, so a failed conversion can remove them again."""
    missing = []
    parent = os.path.dirname(os.path.abspath(dst))
    while not os.path.exists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(missing):
        os.mkdir(directory)
    return list(reversed(missing))


def move_into_place(staging: str, dst: str) -> None:
    """Rename ``staging`` to ``dst``; an existing ``dst`` (``--overwrite``) is swapped out
    atomically where the kernel can (``renameat2`` with ``RENAME_EXCHANGE``), else moved
    aside first, and removed only once the new checkpoint is in place."""
    if not os.path.lexists(dst):
        os.rename(staging, dst)
        return
    if not _exchange(staging, dst):
        aside = f"{staging}.old"
        os.rename(dst, aside)
        os.rename(staging, dst)
        staging = aside
    shutil.rmtree(staging)


def _exchange(first: str, second: str) -> bool:
    """Atomically swap two paths (Linux ``renameat2``); ``False`` where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    return result == 0


def sync_directory(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_stale_temporaries(dst: str) -> None:
    """Staging directories left by a killed conversion (their process is gone)."""
    parent, name = os.path.split(os.path.abspath(dst))
    for entry in os.listdir(parent):
        match = STAGING.fullmatch(entry)
        if match and match[1] == name and not _alive(int(match[2])):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
