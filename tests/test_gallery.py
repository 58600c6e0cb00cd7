"""The kernels/ gallery is up to date, and every generated module runs with only torch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import fusiondsl
from fusiondsl.backends.registry import exec_source
from fusiondsl.cli.gallery import diff
from fusiondsl.cli.main import main
from fusiondsl.nn.testing import random_inputs

ROOT = Path(__file__).resolve().parent.parent
EINSUM = sorted((ROOT / "kernels").glob("*.einsum.py"))


def test_gallery_is_up_to_date() -> None:
    text = diff()
    assert text == "", "kernels/ is stale: run `python -m fusiondsl.cli.gallery`\n" + text[:4000]


# Issue 14: no generated file over this many lines (fusion4's einsum module, 3,110 lines with
# one block per path, is 923 with one loop per shared schedule).
MAX_GENERATED_LINES = 1500


def test_generated_files_stay_under_the_line_limit() -> None:
    over = {p.name for p in (ROOT / "kernels").iterdir()
            if p.is_file() and p.read_text().count("\n") > MAX_GENERATED_LINES}
    assert not over, f"over {MAX_GENERATED_LINES} lines: {sorted(over)}"


@pytest.mark.parametrize("path", EINSUM, ids=[p.name for p in EINSUM])
def test_gallery_module_runs_standalone_and_matches(path: Path) -> None:
    source = path.read_text()
    imports = set(re.findall(r"^(?:import|from) (\w+)", source, flags=re.M))
    assert imports <= {"torch"}, imports
    stem, name = path.name.split(".")[:2]
    layer = fusiondsl.load(ROOT / "examples" / f"{stem}.fd").compile(name)
    namespace = exec_source(source, name)
    cls = next(v for k, v in namespace.items() if isinstance(v, type) and not k.startswith("_"))
    standalone = cls()
    standalone.load_state_dict(layer.state_dict())
    if layer.diagram.group == "SU2":
        layer, standalone = layer.to(torch.complex128), standalone.to(torch.complex128)
    else:
        layer, standalone = layer.double(), standalone.double()
    xs = random_inputs(layer, seed=7)
    torch.testing.assert_close(standalone(*xs), layer(*xs))


def test_compile_writes_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fctp.py"
    assert main(["compile", str(ROOT / "examples" / "fctp.fd"), "-o", str(out)]) == 0
    assert "class Fctp(torch.nn.Module)" in out.read_text()
    assert main(["compile", str(ROOT / "examples" / "fctp.fd")]) == 0
    assert "# path 0: 0e ⊗ 0e → 0e" in capsys.readouterr().out


def test_compile_bad_input_leaves_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    bad = tmp_path / "bad.fd"
    bad.write_text("diagram d(x: 1o) -> z: 1e {\n    z = fuse(x, q)\n}\n")
    out = tmp_path / "out.py"
    assert main(["compile", str(bad), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2:17: error: unknown name 'q'" in err
    assert "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_compile_needs_a_diagram_name_when_ambiguous(capsys: pytest.CaptureFixture[str]):
    assert main(["compile", str(ROOT / "examples" / "spins.fd")]) == 1
    assert "--diagram" in capsys.readouterr().err
