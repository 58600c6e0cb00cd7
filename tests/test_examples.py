"""Every spec in examples/ checks clean, through the library and through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

import fusiondsl
from fusiondsl.cli.main import main

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.fd"))


def test_there_are_enough_examples():
    names = {p.stem for p in EXAMPLES}
    assert len(EXAMPLES) >= 10
    assert {"fctp", "conv", "fusion3", "fusion4", "product_basis", "spins", "single_path",
            "so3", "sixj", "ninej", "open_graph", "fusion_block"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_checks_clean(path):
    prog = fusiondsl.load(path)
    assert prog.names
    assert path.stem in prog.names  # the file is named after its main diagram


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_has_a_header_naming_its_source(path):
    header = path.read_text(encoding="utf-8").split("\n\n")[0]
    assert header.startswith("# ")
    assert any(word in header for word in ("e3nn", "NequIP", "MACE", "arXiv 2211.07482"))


def test_cli_checks_every_example(capsys):
    assert main(["check", *map(str, EXAMPLES)]) == 0
    out = capsys.readouterr().out
    for path in EXAMPLES:
        assert f"{path}: {path.stem}:" in out
