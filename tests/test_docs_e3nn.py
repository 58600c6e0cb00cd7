"""docs/coming_from_e3nn.md runs: its ``python`` blocks in order, and prints what it shows."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "coming_from_e3nn.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(PAGE) if lang == language]


@pytest.mark.usefixtures("float64_default")
def test_the_page_runs_and_prints_what_it_shows() -> None:
    pytest.importorskip("e3nn")
    namespace: dict[str, object] = {"__name__": "coming_from_e3nn"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for k, code in enumerate(blocks("python")):
            exec(compile(code, f"coming_from_e3nn.md python block {k + 1}", "exec"), namespace)
    shown = blocks("text")
    assert len(shown) == 2
    for text in shown:  # the swap report and the .fd text, as printed
        assert text in printed.getvalue(), printed.getvalue()
