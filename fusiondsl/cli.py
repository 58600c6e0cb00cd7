"""The ``fusiondsl`` command: check, show, draw, compile, cost, bench, demo.

User errors print ``file:line:col: error: …`` with a caret and exit 1; no traceback unless
``FUSIONDSL_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from fusiondsl.diagnostics import NO_SPAN, FusionError, debug_enabled
from fusiondsl.fileio import write_atomic
from fusiondsl.ir import AnyDiagram, Diagram
from fusiondsl.program import Program, load


def summary(d: AnyDiagram) -> str:
    """One line per diagram: legs, paths, weights."""
    from fusiondsl.expand import expand

    if isinstance(d, Diagram):
        legs = ", ".join(f"{leg.name}: {leg.irreps}" for leg in d.legs)
        paths = expand(d)
        return (f"{d.name}: ({legs}) -> {d.out_name}: {d.irreps_out} | "
                f"{paths.num_paths} paths | {paths.weight_numel} weights")
    opens = ", ".join(f"{e.kind} {e.name}: {e.mul}x{e.ir}" for e in d.edges if e.kind != "edge")
    return (f"{d.name}: graph, {len(d.vertices)} vertices, {len(d.edges)} edges"
            + (f" ({opens})" if opens else " (closed)"))


def cmd_check(args: argparse.Namespace) -> int:
    """Check files; print one summary line per diagram."""
    status = 0
    for path in args.files:
        try:
            prog = load(path)
        except FusionError as err:
            print(err.render(), file=sys.stderr)
            status = 1
            continue
        for d in prog.diagrams.values():
            print(f"{path}: {summary(d)}")
    return status


def _select(prog: Program, name: str | None) -> list[AnyDiagram]:
    if name is None:
        return list(prog.diagrams.values())
    return [prog.diagram(name)]


def cmd_show(args: argparse.Namespace) -> int:
    """Print the IR of each diagram (as DSL text) and, with --paths, its path table."""
    from fusiondsl.expand import expand

    prog = load(args.file)
    for d in _select(prog, args.diagram):
        print(d.to_text())
        if args.paths and isinstance(d, Diagram):
            print(expand(d).table())
        print()
    return 0


def cmd_draw(args: argparse.Namespace) -> int:
    """Draw a diagram to SVG or PNG."""
    from fusiondsl.draw import draw

    prog = load(args.file)
    d = _select(prog, args.diagram)[0] if args.diagram or len(prog.diagrams) == 1 else None
    if d is None:
        raise FusionError.at(f"{args.file} has {len(prog.diagrams)} diagrams: choose one with "
                             f"--diagram ({', '.join(prog.diagrams)})", NO_SPAN)
    draw(d, args.output)
    print(f"wrote {args.output}")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    """Print or write the generated source of one diagram."""
    from fusiondsl.layers import generate

    prog = load(args.file)
    text = Path(args.file).read_text(encoding="utf-8")
    if args.diagram is None and len(prog.diagrams) > 1:
        raise FusionError.at(f"{len(prog.diagrams)} diagrams: choose one with --diagram "
                             f"({', '.join(prog.diagrams)})", NO_SPAN).with_source(text, args.file)
    d = prog.diagram(args.diagram)
    try:
        source, _ = generate(d, args.target, args.irrep_normalization, args.path_normalization,
                             spec_name=args.file)
    except FusionError as err:  # a backend's refusal points into this file
        raise err.with_source(text, args.file) from None
    if args.output:
        write_atomic(args.output, source)
        print(f"wrote {args.output} ({len(source.splitlines())} lines)")
    else:
        sys.stdout.write(source)
    return 0


def _add_compile(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("compile", help="generate einsum, Triton or C source for a diagram")
    c.add_argument("file")
    c.add_argument("--diagram", "-d")
    c.add_argument("--target", choices=["einsum", "triton", "c"], default="einsum")
    c.add_argument("--irrep-normalization", choices=["component", "norm", "none"],
                   default="component")
    c.add_argument("--path-normalization", choices=["element", "path", "none"],
                   default="element")
    c.add_argument("-o", "--output", help="write here (atomically) instead of stdout")
    c.set_defaults(func=cmd_compile)


def cmd_cost(args: argparse.Namespace) -> int:
    """Print the cost report of every tree diagram in a file."""
    from fusiondsl.report import cost_report

    print(cost_report(load(args.file), args.batch, args.json))
    return 0


def _add_cost(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("cost", help="compare contraction plans: FLOPs, bytes, peak memory")
    c.add_argument("file")
    c.add_argument("--batch", type=int, default=10000, help="batch size (default 10000)")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=cmd_cost)


def cmd_bench(args: argparse.Namespace) -> int:
    """Time every tree diagram of a file: forward, backward, double backward; e3nn beside."""
    from fusiondsl.bench_cli import bench_program

    print(bench_program(load(args.file), args.batch, args.dtype, args.repeats, args.strategy))
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("bench", help="time a spec's layers (and e3nn's, when it has them)")
    c.add_argument("file")
    c.add_argument("--batch", type=int, default=1000)
    c.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    c.add_argument("--repeats", type=int, default=5)
    c.add_argument("--strategy", choices=["auto", "autotune", "per-path", "grouped"],
                   default="auto")
    c.set_defaults(func=cmd_bench)


def cmd_demo(args: argparse.Namespace) -> int:
    """Compile and check every example."""
    from fusiondsl.demo import run

    return run(args.directory)


def _add_demo(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("demo", help="compile every example and check its equivariance")
    c.add_argument("directory", nargs="?", default="examples")
    c.set_defaults(func=cmd_demo)


def _add_simplify(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from fusiondsl.rewrite_report import add_parser

    add_parser(sub)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fusiondsl", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="check .fd files against the coupling rules")
    c.add_argument("files", nargs="+")
    c.set_defaults(func=cmd_check)
    s = sub.add_parser("show", help="print the IR and path table")
    s.add_argument("file")
    s.add_argument("--diagram", "-d")
    s.add_argument("--paths", action="store_true", help="also list every path")
    s.set_defaults(func=cmd_show)
    d = sub.add_parser("draw", help="draw a diagram (SVG or PNG)")
    d.add_argument("file")
    d.add_argument("--diagram", "-d")
    d.add_argument("-o", "--output", required=True)
    d.set_defaults(func=cmd_draw)
    for extra in _EXTRA_COMMANDS:
        extra(sub)
    return p


_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [  # type: ignore[type-arg]
    _add_compile,
    _add_cost,
    _add_bench,
    _add_demo,
    _add_simplify,
]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except FusionError as err:
        print(err.render(), file=sys.stderr)
        return 1
    except (OSError, KeyError) as err:
        if debug_enabled():
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"fusiondsl: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
