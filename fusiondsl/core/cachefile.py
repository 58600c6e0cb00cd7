"""Cached artefacts that are checked before use: a SHA-256 of each file is kept beside it.

Every file fusiondsl caches (coefficient arrays, compiled C libraries, the parser's tables,
autotuning results) is written with :func:`store` (``<file>.sha256``, then the file, each
atomically) and read back with :func:`load` or :func:`verify`. A file whose bytes do not match
its hash (truncated, overwritten, edited by hand, or with no hash beside it) is removed with
one :class:`CacheWarning` line, and the caller rebuilds it; nothing corrupt is ever used.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from pathlib import Path

from fusiondsl.core.fileio import write_atomic

SUFFIX = ".sha256"


class CacheWarning(UserWarning):
    """A cached file was corrupt (or unusable) and is being rebuilt."""


def digest(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def hash_path(path: str | Path) -> Path:
    """Where the hash of ``path`` lives: ``<path>.sha256``."""
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def seal(path: str | Path) -> None:
    """Write the hash of the file at ``path`` beside it (for files another tool wrote)."""
    write_atomic(hash_path(path), digest(Path(path).read_bytes()) + "\n")


def store(path: str | Path, data: bytes) -> bool:
    """Cache ``data`` at ``path`` with its hash; ``False`` when the cache cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # the hash first: a process reading meanwhile finds no file (and builds its own, with
        # the same bytes) rather than a file with no hash, which it would remove as corrupt
        write_atomic(hash_path(path), digest(data) + "\n")
        write_atomic(path, data)
    except OSError:
        return False  # a read-only cache only costs rebuilding the artefact next time
    return True


def _expected(path: Path) -> str | None:
    try:
        return hash_path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def load(path: str | Path) -> bytes | None:
    """The bytes of a cached file if they match their hash; ``None`` if absent or corrupt.

    A corrupt file is removed (with its hash) and reported in one :class:`CacheWarning` line.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    want = _expected(path)
    if want != digest(data):
        reject(path, "hash mismatch" if want else "no hash beside it")
        return None
    return data


def verify(path: str | Path) -> bool:
    """Whether the file at ``path`` exists and matches its hash (a corrupt one is removed)."""
    return load(path) is not None


def reject(path: str | Path, reason: str) -> None:
    """Report a corrupt cached file in one line and remove it, so that it is rebuilt."""
    path = Path(path)
    warnings.warn_explicit(f"cache file {path} was corrupt ({reason}); rebuilding it",
                           CacheWarning, "fusiondsl", 0)
    for p in (path, hash_path(path)):
        with contextlib.suppress(OSError):
            p.unlink()
