"""Pictures of diagrams for people reading them: ``draw(diagram, "d.svg")`` (SVG or PNG).

Drawing runs in two steps: a layout function turns a checked diagram into a scene
(:func:`fusiondsl.cli.draw_layout.tree_scene`, :func:`fusiondsl.cli.draw_graph.graph_scene`),
and :func:`render` paints the scene with matplotlib's Agg canvas. Pictures are deterministic
(no dates, fixed SVG ids), so they can be kept under version control.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from fusiondsl.cli.draw_graph import graph_scene
from fusiondsl.cli.draw_layout import Line, Mark, Scene, curve_point, tree_scene
from fusiondsl.core.diagnostics import NO_SPAN, FusionError
from fusiondsl.core.fileio import atomic_open
from fusiondsl.ir.diagram import AnyDiagram, Diagram

FORMATS = {".svg": "svg", ".png": "png"}


def draw(diagram: AnyDiagram, path: str | os.PathLike[str]) -> None:
    """Draw a checked diagram to an SVG or PNG file (chosen by the suffix), atomically.

    Args:
        diagram: a tree :class:`~fusiondsl.ir.diagram.Diagram` or a
            :class:`~fusiondsl.ir.diagram.GraphDiagram`.
        path: where to write; ``.svg`` or ``.png``.

    Raises:
        FusionError: for another suffix or a missing folder, or when matplotlib is not installed.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FusionError.at(f"cannot draw to {str(path)!r}: use .svg or .png", NO_SPAN)
    if not path.parent.is_dir():  # say so before the atomic writer names its temporary file
        raise FusionError.at(f"cannot draw to {str(path)!r}: no folder {str(path.parent)!r}",
                             NO_SPAN)
    try:
        import matplotlib
    except ImportError:
        raise FusionError.at(
            "drawing needs matplotlib: pip install 'fusiondsl[draw]'", NO_SPAN
        ) from None
    scene = tree_scene(diagram) if isinstance(diagram, Diagram) else graph_scene(diagram)
    # text stays text in SVG (searchable, testable); a fixed salt makes the ids reproducible
    rc = {"svg.fonttype": "none", "svg.hashsalt": "fusiondsl", "font.family": "DejaVu Sans"}
    with matplotlib.rc_context(rc):
        fig = render(scene)
        metadata = {"Title": diagram.name, "Date": None} if fmt == "svg" else {
            "Title": diagram.name, "Software": "fusiondsl"}
        with atomic_open(path) as f:  # never a half-written picture
            fig.savefig(f, format=fmt, dpi=150, metadata=metadata)


# ---- rendering ---------------------------------------------------------------------------

STYLES: dict[str, dict[str, Any]] = {
    "plain": {"arrowstyle": "-", "color": "0.25", "linewidth": 1.4},
    "loop": {"arrowstyle": "-", "color": "0.25", "linewidth": 1.4},
    "gate": {"arrowstyle": "-", "color": "tab:purple", "linewidth": 1.2, "linestyle": "--"},
    "in": {"arrowstyle": "-|>", "color": "tab:blue", "linewidth": 1.4, "mutation_scale": 12},
    "out": {"arrowstyle": "-|>", "color": "tab:red", "linewidth": 1.4, "mutation_scale": 12},
}


def render(scene: Scene) -> Any:
    """Paint a scene on a fresh matplotlib figure (Agg canvas) sized to its contents."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = [m.xy for m in scene.marks]
    points += [curve_point(line, t) for line in scene.lines for t in (0.0, 0.5, 1.0)]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs) - 1.3, max(xs) + 1.3, min(ys) - 0.8, max(ys) + 0.8
    inch = 0.95
    fig = Figure(figsize=(max(4.0, (x1 - x0) * inch), max(3.0, (y1 - y0) * inch + 0.6)))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, (y1 - y0) * inch / fig.get_figheight()))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="box")
    ax.axis("off")
    fig.suptitle(scene.title, fontsize=12, fontweight="bold", y=0.98, va="top")
    for line in scene.lines:
        _draw_line(ax, line)
    for mark in scene.marks:
        MARKS[mark.kind](ax, mark)
    return fig


def _draw_line(ax: Any, line: Line) -> None:
    from matplotlib.patches import Circle, FancyArrowPatch

    style = STYLES[line.style]
    if line.style == "loop":
        centre = ((line.a[0] + line.b[0]) / 2, (line.a[1] + line.b[1]) / 2)
        ax.add_patch(Circle(centre, math.dist(line.a, line.b) / 2, fill=False, zorder=1,
                            ec=style["color"], lw=style["linewidth"]))
        xy, angle = line.b, 0.0
    else:
        ax.add_patch(FancyArrowPatch(line.a, line.b, connectionstyle=f"arc3,rad={line.rad}",
                                     shrinkA=0, shrinkB=8 if line.style == "in" else 0,
                                     zorder=1, **style))
        xy, (ex, ey) = curve_point(line, line.t), curve_point(line, min(1.0, line.t + 0.01))
        angle = math.degrees(math.atan2(ey - xy[1], ex - xy[0]))
        angle = angle - 180 if angle > 90 else angle + 180 if angle <= -90 else angle
    if line.label:
        ax.text(*xy, line.label, fontsize=7, ha="center", va="center", rotation=angle,
                rotation_mode="anchor", zorder=2, color=style["color"], linespacing=1.0,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.9})


def _mark_leg(ax: Any, mark: Mark) -> None:
    ax.plot(*mark.xy, "o", ms=8, mfc="white", mec="tab:blue", mew=1.8, zorder=3)
    ax.annotate(mark.text, mark.xy, xytext=(-9, 0), textcoords="offset points", ha="right",
                va="center", fontsize=10, color="tab:blue", zorder=4)


def _mark_vertex(ax: Any, mark: Mark) -> None:
    ax.plot(*mark.xy, "o", ms=9, color="black", zorder=3)
    dx, dy = math.cos(math.radians(mark.angle)), math.sin(math.radians(mark.angle))
    ha = "left" if dx > 0.35 else "right" if dx < -0.35 else "center"
    va = "bottom" if dy > 0.35 else "top" if dy < -0.35 else "center"
    ax.annotate(mark.text, mark.xy, xytext=(9 * dx, 9 * dy), textcoords="offset points",
                ha=ha, va=va, fontsize=8, zorder=4, linespacing=1.1,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})


def _mark_box(ax: Any, mark: Mark) -> None:
    ax.text(*mark.xy, mark.text, ha="center", va="center", fontsize=9, zorder=3,
            bbox={"boxstyle": "round,pad=0.4", "fc": "#fdf0d5", "ec": "tab:orange", "lw": 1.4})


def _mark_out(ax: Any, mark: Mark) -> None:
    ax.plot(*mark.xy, "s", ms=8, mfc="white", mec="tab:red", mew=1.8, zorder=3)
    ax.annotate(mark.text, mark.xy, xytext=(9, 0), textcoords="offset points", ha="left",
                va="center", fontsize=10, color="tab:red", zorder=4)


def _mark_end(ax: Any, mark: Mark) -> None:
    color = "tab:blue" if mark.text.startswith("in ") else "tab:red"
    ax.text(*mark.xy, mark.text, ha="center", va="center", fontsize=9, color=color, zorder=4,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": color, "lw": 0.8})


MARKS = {"leg": _mark_leg, "vertex": _mark_vertex, "box": _mark_box, "out": _mark_out,
         "end": _mark_end}
