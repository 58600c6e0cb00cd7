"""The kernel gallery: what the compiler emits for every example, kept under version control.

``python -m fusiondsl.cli.gallery`` rewrites ``kernels/`` from ``examples/*.fd``;
``python -m fusiondsl.cli.gallery --check`` exits 1 and prints a diff when they disagree.
Every change to code generation thus shows up as a reviewable diff.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable
from pathlib import Path

from fusiondsl.backends.c.lower import lower_c_source
from fusiondsl.backends.c.support import supports
from fusiondsl.backends.names import safe_diagram
from fusiondsl.ir.diagram import AnyDiagram, Diagram
from fusiondsl.nn.layers import generate
from fusiondsl.nn.program import load
from fusiondsl.passes.expand import expand
from fusiondsl.plan.planner import make_plan
from fusiondsl.plan.text import plan_text

ROOT = Path(__file__).resolve().parents[2]
# C source still grows with the coupling nonzeros (the kernel IR, kept for every example in
# ``*.kernel.txt``, is the reviewable form): C goldens only for the small examples (single_path,
# fctp, nequip, product_basis, so3, conv). Larger layers still compile and are tested against
# einsum. Triton kernels are table-driven (their size grows with path classes only): a Triton
# golden for every example the backend lowers. The name is historical; only ``_c`` uses it.
MAX_TRITON_PATHS = 20


def _ir_text(d: AnyDiagram, spec: str) -> str:
    lines = [f"# IR of {d.name!r} from {spec} (group {d.group})", d.to_text()]
    if isinstance(d, Diagram):
        paths = expand(d)
        lines += ["", f"# {paths.num_paths} paths, {paths.weight_numel} weights", paths.table()]
    return "\n".join(lines) + "\n"


def _plan(d: AnyDiagram, spec: str) -> str | None:
    if not isinstance(d, Diagram):
        return None  # a graph's contraction order is in its einsum module's header
    return plan_text(make_plan(expand(d)), spec)


def _einsum(d: AnyDiagram, spec: str) -> str:
    return generate(d, "einsum", spec_name=spec)[0]


def _triton(d: AnyDiagram, spec: str) -> str | None:
    try:
        from fusiondsl.backends.triton.lower import supports
    except ImportError:
        return None
    if not supports(d):
        return None
    return generate(d, "triton", spec_name=spec)[0]


def _c(d: AnyDiagram, spec: str) -> str | None:
    if not supports(d) or len(expand(d).paths) > MAX_TRITON_PATHS:
        return None
    return lower_c_source(make_plan(expand(safe_diagram(d))), spec)  # named as generate() does


def _kernel_ir(d: AnyDiagram, spec: str) -> str:
    from fusiondsl.kernel import build_kernel_ir

    return f"# from {spec}; regenerate with `python -m fusiondsl.cli.gallery`\n" + str(
        build_kernel_ir(d))


ARTIFACTS: dict[str, Callable[[AnyDiagram, str], str | None]] = {
    "ir.txt": _ir_text,
    "plan.txt": _plan,
    "kernel.txt": _kernel_ir,
    "einsum.py": _einsum,
    "triton.py": _triton,
    "c.c": _c,
}


def gallery(root: Path = ROOT) -> dict[str, str]:
    """Every gallery file's name and expected content."""
    files: dict[str, str] = {}
    specs = sorted((root / "examples").glob("*.fd"))
    if not specs:  # a wrong root would otherwise compare nothing with nothing and pass
        raise FileNotFoundError(f"no examples/*.fd under {root}")
    for spec in specs:
        rel = spec.relative_to(root).as_posix()
        for d in load(spec).diagrams.values():
            for suffix, make in ARTIFACTS.items():
                text = make(d, rel)
                if text is not None:
                    files[f"{spec.stem}.{d.name}.{suffix}"] = text
    return files


def diff(root: Path = ROOT) -> str:
    """A unified diff between ``kernels/`` and what the compiler emits now ("" if equal)."""
    want = gallery(root)
    have = {p.name: p.read_text() for p in (root / "kernels").glob("*.*") if p.name != "README.md"}
    out = []
    for name in sorted(set(want) | set(have)):
        a, b = have.get(name, ""), want.get(name, "")
        if a != b:
            out += difflib.unified_diff(a.splitlines(True), b.splitlines(True),
                                        f"kernels/{name}", f"kernels/{name} (now)")
    return "".join(out)


def write(root: Path = ROOT) -> int:
    """Rewrite ``kernels/``; returns the number of files written."""
    kernels = root / "kernels"
    kernels.mkdir(exist_ok=True)
    want = gallery(root)
    for p in kernels.glob("*.*"):
        if p.name not in want and p.name != "README.md":
            p.unlink()
    for name, text in want.items():
        (kernels / name).write_text(text)
    return len(want)


def main(argv: list[str] | None = None) -> int:
    """Regenerate (default) or check (``--check``) the gallery."""
    parser = argparse.ArgumentParser(prog="python -m fusiondsl.cli.gallery", description=__doc__)
    parser.add_argument("--check", action="store_true", help="diff instead of writing")
    args = parser.parse_args(argv)
    if args.check:
        text = diff()
        sys.stdout.write(text or "kernels/ is up to date\n")
        return 1 if text else 0
    print(f"wrote {write()} files to kernels/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
