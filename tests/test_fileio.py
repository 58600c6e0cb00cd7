"""Atomic writes: the old file or the new one, never half of either, never a stray temp file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fusiondsl.core.fileio import atomic_open, write_atomic


def test_write_replaces_and_has_the_usual_mode(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    write_atomic(path, "old")
    write_atomic(path, "néw")
    assert path.read_text(encoding="utf-8") == "néw"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_an_error_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    write_atomic(path, b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic_open(path) as f:
        f.write(b"half")
        raise RuntimeError("boom")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
