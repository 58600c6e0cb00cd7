"""The wheel: ``pip wheel .`` ships the grammar, and the installed package works from a venv."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECK = """
import fusiondsl, sys
where = fusiondsl.__file__
assert "site-packages" in where and "{root}" not in where, where
prog = fusiondsl.loads("diagram d(x: 2x1o, y: 1o) -> z: 2x0e + 2x2e {{ z = fuse(x, y) }}")
print(prog.names, fusiondsl.Irreps.parse("sh(2)"))
"""


def test_wheel_installs_into_a_fresh_venv_and_parses(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")],
                   check=True, cwd=tmp_path, capture_output=True)
    wheel = next((tmp_path / "dist").glob("fusiondsl-*.whl"))
    assert "fusiondsl/grammar/fusion.lark" in zipfile.ZipFile(wheel).namelist()
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True)
    # the dependencies (lark, sympy, ...) come from this environment; fusiondsl from the wheel
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    out = subprocess.run([str(python), "-c", CHECK.format(root=ROOT)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "['d']" in out.stdout and "1x0e+1x1o+1x2e" in out.stdout
