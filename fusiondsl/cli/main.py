"""The ``fusiondsl`` command: check, show, draw, compile, cost, bench, demo.

User errors print ``file:line:col: error: …`` with a caret and exit 1; no traceback unless
``FUSIONDSL_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence

from fusiondsl.backends.c.support import CCompilerNotFoundError
from fusiondsl.backends.emit import safe_text
from fusiondsl.backends.pysource import REGENERATE
from fusiondsl.cli.bench import bench_program
from fusiondsl.cli.demo import run
from fusiondsl.cli.draw import draw
from fusiondsl.cli.report import cost_report
from fusiondsl.cli.rewrite_report import add_parser
from fusiondsl.core.diagnostics import NO_SPAN, FusionError, debug_enabled
from fusiondsl.core.fileio import write_atomic
from fusiondsl.front.parse import gc_paused
from fusiondsl.ir.diagram import AnyDiagram, Diagram
from fusiondsl.nn.devices import cuda_backend
from fusiondsl.nn.layers import auto_choice, generate
from fusiondsl.nn.program import Program, load
from fusiondsl.passes.expand import expand


def summary(d: AnyDiagram) -> str:
    """One line per diagram: legs, paths, weights."""
    if isinstance(d, Diagram):
        legs = ", ".join(f"{leg.name}: {leg.irreps}" for leg in d.legs)
        paths = expand(d)
        return (f"{d.name}: ({legs}) -> {d.out_name}: {d.irreps_out} | "
                f"{paths.num_paths} paths | {paths.weight_numel} weights")
    opens = ", ".join(f"{e.kind} {e.name}: {e.mul}x{e.ir}" for e in d.edges if e.kind != "edge")
    return (f"{d.name}: graph, {len(d.vertices)} vertices, {len(d.edges)} edges"
            + (f" ({opens})" if opens else " (closed)"))


def details(prog: Program, d: AnyDiagram) -> list[str]:
    """``check -v``: every leg with its domain (or every edge of a graph), and the backend."""
    if isinstance(d, Diagram):
        lines = [f"  leg {leg.name}: {leg.domain} {leg.irreps} ({leg.irreps.dim} columns)"
                 for leg in d.legs]
        if d.is_neighbourhood:
            lines.append("  call: node legs [num_nodes, dim], edge legs [num_edges, dim], then "
                         "edge_index [2, num_edges] (receiver i, sender j)")
    else:
        lines = [f"  {e.kind} {e.name}: {e.mul}x{e.ir}" for e in d.edges]

    _, reason = auto_choice(d)
    _, cuda = cuda_backend(d)
    return [*lines, f"  backend (auto, the default): {reason}; {cuda}"]


def _load(path: str) -> Program:
    """A checked spec; a file with no diagram is an error here (``loads`` accepts it)."""
    prog = load(path)
    if not prog.diagrams:
        raise FusionError.at(f"no diagram in {path}", NO_SPAN,
                             "a spec needs at least one 'diagram' or 'graph' block"
                             ).with_source(prog.module.source, str(path))
    return prog


def _check_file(path: str, verbose: bool) -> list[str]:
    with gc_paused():  # a large file makes many objects and no cycles (see parse.gc_paused)
        prog = _load(path)
        lines = []
        for d in prog.diagrams.values():
            lines.append(f"{path}: {summary(d)}")
            lines.extend(details(prog, d) if verbose else [])
    return lines


def cmd_check(args: argparse.Namespace) -> int:
    """Check files; print one summary line per diagram (and, with -v, its legs and backend)."""
    status = 0
    for path in args.files:
        try:
            lines = _check_file(path, args.verbose)
        except FusionError as err:
            print(err.render(), file=sys.stderr)
            status = 1
            continue
        except OSError as err:  # a missing file: say so and check the others
            print(f"fusiondsl: error: {err}", file=sys.stderr)
            status = 1
            continue
        print("\n".join(lines))
    return status


def _select(prog: Program, name: str | None) -> list[AnyDiagram]:
    if name is None:
        return list(prog.diagrams.values())
    if name not in prog.diagrams:
        raise FusionError.at(f"no diagram {name!r}; this file has {', '.join(prog.diagrams)}",
                             NO_SPAN).with_source(prog.module.source, prog.module.filename)
    return [prog.diagrams[name]]


def cmd_show(args: argparse.Namespace) -> int:
    """Print each diagram as DSL text; --paths adds its path table, --kernel-ir its kernel IR."""
    prog = _load(args.file)
    for d in _select(prog, args.diagram):
        print(d.to_text())
        if args.paths and isinstance(d, Diagram):
            print(expand(d).table())
        if args.kernel_ir:
            from fusiondsl.kernel import build_kernel_ir

            print(build_kernel_ir(d).to_text(), end="")
        print()
    return 0


def _one(prog: Program, name: str | None, path: str) -> AnyDiagram:
    """The diagram ``--diagram`` names, or the file's only one."""
    if name is None and len(prog.diagrams) > 1:
        raise FusionError.at(f"{len(prog.diagrams)} diagrams: choose one with --diagram "
                             f"({', '.join(prog.diagrams)})", NO_SPAN
                             ).with_source(prog.module.source, path)
    return _select(prog, name)[0]


def cmd_draw(args: argparse.Namespace) -> int:
    """Draw a diagram to SVG or PNG."""
    prog = _load(args.file)
    d = _one(prog, args.diagram, args.file)
    try:
        draw(d, args.output)
    except FusionError as err:  # name the spec, whatever went wrong with the picture
        raise err.with_source(prog.module.source, args.file) from None
    print(f"wrote {args.output} (diagram {d.name!r})")
    return 0


def regenerate_command(args: argparse.Namespace) -> str:
    """The ``fusiondsl compile …`` command line that writes this output again."""
    parts = ["fusiondsl", "compile", args.file]
    for flag, value, default in [("--diagram", args.diagram, None),
                                 ("--target", args.target, "einsum"),
                                 ("--irrep-normalization", args.irrep_normalization, "component"),
                                 ("--path-normalization", args.path_normalization, "element"),
                                 ("-o", args.output, None)]:
        if value != default:
            parts += [flag, value]
    return shlex.join(parts)


def cmd_compile(args: argparse.Namespace) -> int:
    """Print or write the generated source of one diagram."""
    prog = _load(args.file)
    d = _one(prog, args.diagram, args.file)
    try:
        source, _ = generate(d, args.target, args.irrep_normalization, args.path_normalization,
                             spec_name=args.file)
    except FusionError as err:  # a backend's refusal points into this file
        raise err.with_source(prog.module.source, args.file) from None
    # The emitters name the gallery's command; a user's file names the command that made it.
    source = source.replace(f"regenerate with `{REGENERATE}`",
                            f"regenerate with `{safe_text(regenerate_command(args))}`")
    if args.output:
        write_atomic(args.output, source)
        print(f"wrote {args.output}: {args.target} source of diagram {d.name!r} "
              f"({len(source.splitlines())} lines)")
    else:
        sys.stdout.write(source)
    return 0


_FILE_HELP = "the .fd spec to read"
_DIAGRAM_HELP = "the diagram to use (needed when the file has several)"


def _add_compile(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("compile", help="generate einsum, Triton or C source for a diagram")
    c.add_argument("file", help=_FILE_HELP)
    c.add_argument("--diagram", "-d", help=_DIAGRAM_HELP)
    c.add_argument("--target", choices=["einsum", "triton", "c"], default="einsum",
                   help="the backend whose source to write (default einsum)")
    c.add_argument("--irrep-normalization", choices=["component", "norm", "none"],
                   default="component", help="as e3nn's irrep_normalization (default component)")
    c.add_argument("--path-normalization", choices=["element", "path", "none"],
                   default="element", help="as e3nn's path_normalization (default element)")
    c.add_argument("-o", "--output", help="write here (atomically) instead of stdout")
    c.set_defaults(func=cmd_compile)


def cmd_cost(args: argparse.Namespace) -> int:
    """Print the cost report of every tree diagram in a file."""
    print(cost_report(_load(args.file), args.batch, args.json))
    return 0


def _add_cost(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("cost", help="compare contraction plans: FLOPs, bytes, peak memory")
    c.add_argument("file", help=_FILE_HELP)
    c.add_argument("--batch", type=int, default=10000, help="batch size (default 10000)")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=cmd_cost)


def cmd_bench(args: argparse.Namespace) -> int:
    """Time every tree diagram of a file: forward, backward, double backward; e3nn beside."""
    print(bench_program(_load(args.file), args.batch, args.dtype, args.repeats, args.strategy,
                        args.backend))
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("bench", help="time a spec's layers (and e3nn's, when it has them)")
    c.add_argument("file", help=_FILE_HELP)
    c.add_argument("--backend", choices=["auto", "einsum", "c", "triton"], default="auto",
                   help="the executor to time (default auto, what compile gives: C where a C "
                        "compiler works; triton needs a CUDA GPU)")
    c.add_argument("--batch", type=int, default=1000, help="rows per call (default 1000)")
    c.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="floating type of inputs and weights (default float32)")
    c.add_argument("--repeats", type=int, default=5,
                   help="timed calls per pass; the median is shown (default 5)")
    c.add_argument("--strategy", choices=["auto", "autotune", "per-path", "grouped"],
                   default="auto", help="contraction plan: one einsum per path, paths grouped "
                   "into one GEMM per output, the planner's choice (auto), or measured (autotune)")
    c.set_defaults(func=cmd_bench)


def cmd_demo(args: argparse.Namespace) -> int:
    """Compile and check every example."""
    return run(args.directory)


def _add_demo(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("demo", help="compile every example and check its equivariance")
    c.add_argument("directory", nargs="?", default="examples",
                   help="folder of .fd specs (default examples)")
    c.set_defaults(func=cmd_demo)


def _add_simplify(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    add_parser(sub)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fusiondsl", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="check .fd files against the coupling rules")
    c.add_argument("files", nargs="+", help=".fd specs to check")
    c.add_argument("-v", "--verbose", action="store_true",
                   help="also list every leg with its domain (node or edge), or every edge of "
                        "a graph, and the backend a compile picks")
    c.set_defaults(func=cmd_check)
    s = sub.add_parser("show", help="print the IR and path table")
    s.add_argument("file", help=_FILE_HELP)
    s.add_argument("--diagram", "-d", help="show only this diagram (default: all)")
    s.add_argument("--paths", action="store_true", help="also list every path")
    s.add_argument("--kernel-ir", action="store_true",
                   help="also print the kernel IR: segments, path table, exact coefficient tables")
    s.set_defaults(func=cmd_show)
    d = sub.add_parser("draw", help="draw a diagram (SVG or PNG)")
    d.add_argument("file", help=_FILE_HELP)
    d.add_argument("--diagram", "-d", help=_DIAGRAM_HELP)
    d.add_argument("-o", "--output", required=True,
                   help="picture to write; .svg or .png chooses the format")
    d.set_defaults(func=cmd_draw)
    for extra in _EXTRA_COMMANDS:
        extra(sub)
    _fill_help(sub)
    return p


def _fill_help(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Give the common arguments of subcommands registered elsewhere (simplify) their help."""
    common = {"file": _FILE_HELP, "diagram": "only this diagram (default: every one in the file)"}
    for parser in sub.choices.values():
        for action in parser._actions:
            if action.help is None and action.dest in common:
                action.help = common[action.dest]


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
    except (OSError, KeyError, CCompilerNotFoundError) as err:
        if debug_enabled():
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"fusiondsl: error: {message}", file=sys.stderr)
        return 1
    except RecursionError:  # the parser bounds nesting; this is a last line of defence
        if debug_enabled():
            raise
        print("fusiondsl: error: the input is nested too deeply to check", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
