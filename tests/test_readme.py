"""The README runs: its ``python`` blocks execute in order, its ``fd`` block checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import fusiondsl

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README) if lang == language]


def test_the_readme_has_code_to_run() -> None:
    assert len(blocks("python")) >= 3
    assert len(blocks("fd")) == 1


def test_the_fd_block_is_examples_conv(monkeypatch: pytest.MonkeyPatch) -> None:
    (text,) = blocks("fd")
    ours = fusiondsl.loads(text, "README.md").diagram("conv")
    theirs = fusiondsl.load(ROOT / "examples" / "conv.fd").diagram("conv")
    assert ours.to_text() == theirs.to_text()


def test_the_python_blocks_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """In one namespace, from the repository root, as a reader would paste them."""
    pytest.importorskip("torch")
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {"__name__": "readme"}
    for k, code in enumerate(blocks("python")):
        if "from e3nn" in code:
            pytest.importorskip("e3nn")
        exec(compile(code, f"README.md python block {k + 1}", "exec"), namespace)
