"""The validator and the parser's errors: every bad spec fails where and how it says it will.

Each ``tests/specs/bad/*.fd`` starts with one ``# expect: LINE:COL: message`` line per error,
in the order they must be reported (sorted by position).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import fusiondsl
from fusiondsl import FusionError
from fusiondsl.cli.main import main

SPECS = Path(__file__).parent / "specs"
BAD = sorted((SPECS / "bad").glob("*.fd"))
GOOD = sorted((SPECS / "good").glob("*.fd"))
EXPECT = re.compile(r"# expect: (\d+):(\d+): (.+)")


def expectations(path: Path) -> list[tuple[int, int, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = EXPECT.fullmatch(line.strip())
        if m is None:
            break
        out.append((int(m[1]), int(m[2]), m[3]))
    return out


def load_error(path: Path) -> FusionError:
    with pytest.raises(FusionError) as info:
        fusiondsl.load(path)
    return info.value


def test_enough_bad_specs() -> None:
    assert len(BAD) >= 25
    assert all(expectations(p) for p in BAD), "every bad spec starts with '# expect:'"


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_spec_positions_and_messages(path: Path) -> None:
    err = load_error(path)
    got = [(d.span.line, d.span.col, d.message) for d in err.diagnostics]
    want = expectations(path)
    assert len(got) == len(want), err.render()
    for (line, col, message), (wline, wcol, wtext) in zip(got, want, strict=True):
        assert (line, col) == (wline, wcol), err.render()
        assert wtext in message, err.render()
    assert got == sorted(got, key=lambda d: (d[0], d[1], d[2]))


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_spec_renders_with_caret(path: Path) -> None:
    err = load_error(path)
    text = err.render()
    assert "Traceback" not in text
    source = path.read_text(encoding="utf-8").splitlines()
    lines = text.splitlines()
    for d in err.diagnostics:
        head = f"{path}:{d.span.line}:{d.span.col}: error: {d.message}"
        assert head in lines, text
        k = lines.index(head)
        assert lines[k + 1] == "  " + source[d.span.line - 1]
        caret = lines[k + 2]
        assert caret.startswith("  ") and caret.strip().startswith("^")
        assert caret.index("^") - 2 == d.span.col - 1
        assert set(caret.strip()) <= {"^", "~"}
        assert str(err) == text


def test_first_diagnostic_and_notes() -> None:
    err = load_error(SPECS / "bad" / "unknown_name.fd")
    assert err.first is err.diagnostics[0]
    assert "note: names in scope: x" in err.render()


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_good_spec_checks_clean(path: Path) -> None:
    prog = fusiondsl.load(path)
    assert prog.diagrams


def test_parse_error_is_fusion_error_with_source() -> None:
    with pytest.raises(FusionError) as info:
        fusiondsl.loads("let H = 1o +\n", "spec.fd")
    assert info.value.render().startswith("spec.fd:1:")


# ---- the command line --------------------------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fusiondsl.cli.main", *args],
        capture_output=True, text=True, check=False,
    )


def test_cli_check_bad_exits_1_without_traceback() -> None:
    for path in (SPECS / "bad" / "several_errors.fd", SPECS / "bad" / "syntax_stray_char.fd"):
        proc = run_cli("check", str(path))
        assert proc.returncode == 1
        assert "Traceback" not in proc.stderr
        assert f"{path}:" in proc.stderr and "error:" in proc.stderr
        assert "^" in proc.stderr


def test_cli_check_good_prints_one_line_per_diagram() -> None:
    proc = run_cli("check", *map(str, GOOD))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    expected = [(str(p), name) for p in GOOD for name in fusiondsl.load(p).names]
    assert len(lines) == len(expected)
    for line, (path, name) in zip(lines, expected, strict=True):
        assert line.startswith(f"{path}: {name}: ")


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_cli_main_on_every_bad_spec(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    line, col, _ = expectations(path)[0]
    assert f"{path}:{line}:{col}: error:" in captured.err


def test_cli_mixed_files_report_bad_and_summarise_good(capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = GOOD[0], SPECS / "bad" / "unused_leg.fd"
    assert main(["check", str(bad), str(good)]) == 1
    captured = capsys.readouterr()
    assert "input leg 'w' is never used" in captured.err
    assert captured.out.count("\n") == len(fusiondsl.load(good).names)


def test_cli_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["check", str(tmp_path / "nope.fd")]) == 1
    assert "Traceback" not in capsys.readouterr().err
