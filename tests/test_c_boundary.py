"""The C boundary never crashes: hostile calls into C-backed layers, each in a subprocess.

For a few small layers (a tree with internal weights, one with external weights, and three
neighbourhood blocks: plain, hoisted and gated, with per-edge weights), ``c_boundary_child.py``
makes 36 to 55 calls each: wrong widths, dtypes (float32 into a float64 layer, integers,
complex), devices (meta tensors, a layer moved to meta), layouts (sparse), non-tensors,
scalars, wrong argument counts, bad ``edge_index`` (dtype, shape, values, device), and valid
but unusual ones (transposed, strided, offset, expanded and lazily negated views, empty
batches, nodes without edges, unbatched and broadcast inputs, a float32 layer, gradients
through strided inputs). Each must end in a one-line ValueError/TypeError naming its argument
or in the einsum layer's value. A segfault would kill the child: a negative return code here,
with the case it was in. The C kernels are built at ``-O0`` (the code, not its speed, is tested).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fusiondsl.backends.c import runtime as c_runtime

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
from c_boundary_child import SPECS  # noqa: E402

pytestmark = pytest.mark.skipif(not c_runtime.available(), reason="no C compiler with OpenMP")


def run_child(argv: list[str]) -> tuple[int, list[str], list[dict], str]:
    """Run a child; its return code, the cases it started, their results, its stderr."""
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                          timeout=600, cwd=TESTS.parent)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    started = [line["start"] for line in lines if "start" in line]
    return proc.returncode, started, [line for line in lines if "case" in line], proc.stderr


@pytest.mark.parametrize("spec", list(SPECS))
def test_hostile_calls_end_in_an_error_naming_the_argument_or_the_right_value(spec: str) -> None:
    code, started, results, stderr = run_child([str(TESTS / "c_boundary_child.py"), spec])
    assert code == 0, (f"the child died with return code {code} in case "
                       f"{started[-1] if started else '(before any case)'}:\n{stderr[-3000:]}")
    assert [r["case"] for r in results] == started and len(results) >= 30
    wrong = [f"{r['case']} (expected {r['expect']}): {r['got']}" for r in results if not r["ok"]]
    assert not wrong, "\n".join(wrong)


def test_a_crash_in_the_child_is_caught_with_its_case() -> None:
    """The harness itself: a child that dereferences NULL is reported, not a passing run."""
    crash = ("import ctypes, json; print(json.dumps({'start': 'null pointer'}), flush=True); "
             "ctypes.string_at(0)")
    code, started, results, _ = run_child(["-c", crash])
    assert code < 0 and started == ["null pointer"] and results == []
