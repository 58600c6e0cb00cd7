"""The command line as a new user meets it: odd files, helpful output, options with help."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from fusiondsl.cli import main as cli
from fusiondsl.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GOOD = "diagram d(x: 1o, y: 1o) -> z: 0e + 1e {\n    z = fuse(x, y)\n}\n"


def _write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# ---- check ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "# nothing but a comment\n", "let H = 1o\n"],
                         ids=["empty", "comment", "let"])
def test_check_says_there_is_no_diagram(tmp_path: Path, text: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    empty, good = _write(tmp_path, "empty.fd", text), _write(tmp_path, "good.fd", GOOD)
    assert main(["check", str(empty), str(good)]) == 1
    out = capsys.readouterr()
    assert out.err.startswith(f"{empty}: error: no diagram in {empty}\n")
    assert out.out == f"{good}: d: (x: 1x1o, y: 1x1o) -> z: 1x0e+1x1e | 2 paths | 0 weights\n"


def test_check_accepts_a_byte_order_mark(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "bom.fd", b"\xef\xbb\xbf" + GOOD.encode())
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: d: ")


def test_check_reports_deep_nesting_without_a_traceback(tmp_path: Path) -> None:
    deep = _write(tmp_path, "deep.fd", "let H = " + "(" * 2000 + "1o" + ")" * 2000 + "\n"
                  + "diagram d(x: 0e, y: 0e) -> z: 0e { z = " + "fuse(" * 2000 + "x, y"
                  + ")" * 2000 + " }\n")
    proc = subprocess.run([sys.executable, "-m", "fusiondsl.cli.main", "check", str(deep)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr
    assert proc.stderr.startswith(f"{deep}:1:73: error: brackets are nested more than 64 deep")


def test_check_goes_on_after_a_missing_file(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, "good.fd", GOOD)
    assert main(["check", str(tmp_path / "missing.fd"), str(good)]) == 1
    out = capsys.readouterr()
    assert "missing.fd" in out.err and out.out.startswith(f"{good}: d: ")


def test_check_verbose_shows_legs_domains_and_edges(capsys: pytest.CaptureFixture[str]) -> None:
    block, graph = EXAMPLES / "fusion_block.fd", EXAMPLES / "sixj.fd"
    assert main(["check", "-v", str(block), str(graph)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "  leg h: node 16x0e+16x1o+16x2e (144 columns)" in out
    assert "  leg y: edge 1x0e+1x1o+1x2e (9 columns)" in out
    assert any("edge_index [2, num_edges]" in line for line in out)
    assert "  edge j4: 1x1/2" in out


def test_check_verbose_shows_what_auto_would_choose(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, "good.fd", GOOD)
    assert main(["check", "-v", str(good)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("  backend (auto, the default): ") for line in out)
    monkeypatch.setattr("fusiondsl.backends.c.runtime.available", lambda: False)
    assert main(["check", "-v", str(good)]) == 0
    assert "because no C compiler" in capsys.readouterr().out


# ---- help and options ----------------------------------------------------------------------
def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli._parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_option_of_every_command_has_help() -> None:
    missing = [f"{name} {action.dest}" for name, parser in _subparsers().items()
               for action in parser._actions
               if not isinstance(action, argparse._HelpAction) and not action.help]
    assert not missing, missing


def test_bench_takes_a_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = _subparsers()["bench"]
    assert bench.parse_args(["f.fd", "--backend", "c"]).backend == "c"
    assert "--backend" in bench.format_help()
    with pytest.raises(SystemExit):
        bench.parse_args(["f.fd", "--backend", "fast"])
    capsys.readouterr()
    tiny = _write(tmp_path, "tiny.fd", "diagram t(x: 2x1o, y: 1o) -> z: 2x0e "
                  "{ z = fuse(x, y) weights uvu }\n")
    assert main(["bench", str(tiny), "--backend", "einsum", "--batch", "4", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("backend einsum, batch 4") and "forward" in out


# ---- compile -------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["einsum", "c"])
def test_compile_says_what_it_wrote_and_how_to_redo_it(tmp_path: Path, target: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fctp.py"
    spec = str(EXAMPLES / "fctp.fd")
    args = ["compile", spec, "--target", target, "-o", str(out)]
    assert main(args) == 0
    source = out.read_text(encoding="utf-8")
    lines = len(source.splitlines())
    assert capsys.readouterr().out == (f"wrote {out}: {target} source of diagram 'fctp' "
                                       f"({lines} lines)\n")
    assert "fusiondsl.cli.gallery" not in source
    extra = " --target c" if target == "c" else ""
    command = f"fusiondsl compile {spec}{extra} -o {out}"
    assert source.count(f"regenerate with `{command}`") == (2 if target == "c" else 1)
    compile(source, str(out), "exec")


def test_a_hostile_file_name_stays_out_of_the_generated_code(tmp_path: Path) -> None:
    name = 'x"""\nimport os; os.system("touch PWNED")\n"""y.fd'  # issue 12, item 1
    spec = _write(tmp_path, name, GOOD)
    out = tmp_path / "out.py"
    assert main(["compile", str(spec), "-o", str(out)]) == 0
    source = out.read_text(encoding="utf-8")
    exec(compile(source, str(out), "exec"), {})
    assert not list(tmp_path.glob("PWNED")) and not Path("PWNED").exists()


def test_the_gallery_keeps_its_own_command() -> None:
    from fusiondsl.backends.pysource import REGENERATE
    from fusiondsl.nn.layers import generate
    from fusiondsl.nn.program import load

    d = load(EXAMPLES / "fctp.fd").diagram()
    assert f"regenerate with `{REGENERATE}`" in generate(d, "einsum", spec_name="fctp.fd")[0]


# ---- demo and draw -------------------------------------------------------------------------
def test_demo_reports_every_bad_file_and_goes_on(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "a_good.fd", GOOD)
    bad = _write(tmp_path, "b_bad.fd", "diagram d(x: 1o) -> z: 1e {\n    z = fuse(x, q)\n}\n")
    typo = _write(tmp_path, "c_typo.fd", "diagarm d(x: 1o) -> z: 1o { z = fuse(x, x) }\n")
    empty = _write(tmp_path, "d_empty.fd", "")
    (tmp_path / "e_good.fd").write_text((EXAMPLES / "sixj.fd").read_text())
    assert main(["demo", str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert f"{bad}:2:17: error: unknown name 'q'" in out.err
    assert f"{typo}:1:1: error: unexpected name 'diagarm'" in out.err
    assert f"{empty}: error: no diagram in {empty}" in out.err
    rows = out.out.splitlines()
    assert any(r.startswith("a_good.fd") and r.endswith("ok") for r in rows)
    assert any(r.startswith("e_good.fd") for r in rows)  # after the bad ones
    assert rows[-1] == "3 file(s) or layer(s) FAILED"


def test_demo_of_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", str(tmp_path / "nope")]) == 1
    assert "no folder" in capsys.readouterr().err


@pytest.mark.parametrize(("output", "diagram", "message"), [
    ("x.jpg", None, "cannot draw to '{out}': use .svg or .png"),
    ("missing/x.svg", None, "cannot draw to '{out}': no folder '{parent}'"),
    ("x.svg", "nope", "no diagram 'nope'; this file has fctp"),
])
def test_draw_names_the_spec_in_its_errors(tmp_path: Path, output: str, diagram: str | None,
                                           message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    spec, out = EXAMPLES / "fctp.fd", tmp_path / output
    args = ["draw", str(spec), "-o", str(out)] + (["-d", diagram] if diagram else [])
    assert main(args) == 1
    text = message.format(out=out, parent=out.parent)
    assert capsys.readouterr().err == f"{spec}: error: {text}\n"
    assert not list(tmp_path.iterdir())
