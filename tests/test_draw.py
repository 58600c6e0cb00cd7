"""Drawing: every example to SVG and PNG, atomic writes, the layout, the CLI command."""

from __future__ import annotations

import math
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import fusiondsl
from fusiondsl import FusionError
from fusiondsl.cli.draw import draw
from fusiondsl.cli.draw_graph import graph_scene
from fusiondsl.cli.draw_layout import short_irreps, tree_scene
from fusiondsl.cli.main import main
from fusiondsl.ir.diagram import Diagram

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.fd"))
DIAGRAMS = [(path, name) for path in EXAMPLES for name in fusiondsl.load(path).names]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _diagram(path, name):
    return fusiondsl.load(path).diagram(name)


def _expected_labels(d):
    """Text that a picture of ``d`` must show: leg names and irreps, or edge names."""
    if isinstance(d, Diagram):
        return [leg.name for leg in d.legs] + [short_irreps(str(d.irreps_out), d.group)]
    return [f"{e.name}:" if e.kind == "edge" else f"{e.kind} {e.name}" for e in d.edges]


@pytest.mark.parametrize(("path", "name"), DIAGRAMS, ids=[n for _, n in DIAGRAMS])
def test_draw_svg(tmp_path, path, name):
    d = _diagram(path, name)
    out = tmp_path / f"{name}.svg"
    draw(d, out)
    assert out.stat().st_size > 0
    text = " ".join(ET.parse(out).getroot().itertext())
    assert name in text
    for label in _expected_labels(d):
        assert label in text, label
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left


@pytest.mark.parametrize(("path", "name"), DIAGRAMS, ids=[n for _, n in DIAGRAMS])
def test_draw_png(tmp_path, path, name):
    out = tmp_path / f"{name}.png"
    draw(_diagram(path, name), str(out))
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 1000


def test_unsupported_suffix_raises_and_writes_nothing(tmp_path):
    d = _diagram(ROOT / "examples" / "fctp.fd", "fctp")
    with pytest.raises(FusionError, match=r"cannot draw to '.*x\.pdf': use \.svg or \.png"):
        draw(d, tmp_path / "x.pdf")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path, monkeypatch):
    import fusiondsl.cli.draw as draw_module

    out = tmp_path / "x.png"
    out.write_bytes(b"old")
    real_render = draw_module.render

    def broken_render(scene):
        fig = real_render(scene)

        def savefig(f, **kwargs):
            f.write(b"half a picture")
            raise RuntimeError("disk full")

        fig.savefig = savefig
        return fig

    monkeypatch.setattr(draw_module, "render", broken_render)
    with pytest.raises(RuntimeError, match="disk full"):
        draw(_diagram(ROOT / "examples" / "fctp.fd", "fctp"), out)
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_missing_matplotlib_is_a_fusion_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(FusionError, match=r"pip install 'fusiondsl\[draw\]'"):
        draw(_diagram(ROOT / "examples" / "fctp.fd", "fctp"), tmp_path / "x.svg")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("path", "name"), DIAGRAMS, ids=[n for _, n in DIAGRAMS])
def test_layout_has_no_overlapping_marks(path, name):
    d = _diagram(path, name)
    scene = tree_scene(d) if isinstance(d, Diagram) else graph_scene(d)
    points = [m.xy for m in scene.marks]
    for i, p in enumerate(points):
        for q in points[i + 1:]:
            assert math.dist(p, q) > 0.5, (p, q)


def test_tree_reads_left_to_right():
    d = _diagram(ROOT / "examples" / "fusion3.fd", "fusion3")
    marks = {m.kind: [] for m in tree_scene(d).marks}
    for m in tree_scene(d).marks:
        marks[m.kind].append(m.xy[0])
    assert set(marks["leg"]) == {0.0}
    assert max(marks["vertex"]) < marks["out"][0]
    assert min(marks["vertex"]) > 0.0


def test_parallel_edges_are_arcs():
    d = _diagram(ROOT / "examples" / "fusion_block.fd", "fusion_block")
    lines = tree_scene(d).lines
    read_twice = [line for line in lines if line.label.startswith(("h[i]", "h[j]"))]
    assert len(read_twice) == 2
    assert sorted(line.rad for line in read_twice) == [-0.25, 0.25]
    theta = fusiondsl.loads("group SO3\ngraph t { edge a: 1, b: 1, c: 1\n"
                            "vertex (a, b, c)\nvertex (a, b, c) }").diagram()
    assert sorted(line.rad for line in graph_scene(theta).lines) == [-0.5, 0.0, 0.5]


def test_cli_draw(tmp_path, capsys):
    out = tmp_path / "x.svg"
    assert main(["draw", str(ROOT / "examples" / "fctp.fd"), "-o", str(out)]) == 0
    assert "fctp" in out.read_text(encoding="utf-8")
    assert f"wrote {out}" in capsys.readouterr().out


def test_cli_draw_needs_a_name_for_many_diagrams(tmp_path, capsys):
    spins = str(ROOT / "examples" / "spins.fd")
    assert main(["draw", spins, "-o", str(tmp_path / "x.png")]) == 1
    assert "--diagram" in capsys.readouterr().err
    assert main(["draw", spins, "-d", "doublet_quartet", "-o", str(tmp_path / "x.png")]) == 0
    assert (tmp_path / "x.png").read_bytes().startswith(PNG_MAGIC)


def test_cli_draw_bad_suffix(tmp_path, capsys):
    assert main(["draw", str(ROOT / "examples" / "fctp.fd"), "-o", str(tmp_path / "x.pdf")]) == 1
    assert "use .svg or .png" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_pictures_are_deterministic(tmp_path):
    d = _diagram(ROOT / "examples" / "fusion_block.fd", "fusion_block")
    for suffix in (".svg", ".png"):
        draw(d, tmp_path / f"a{suffix}")
        draw(d, tmp_path / f"b{suffix}")
        assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()
