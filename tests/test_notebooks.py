"""The example notebooks run top to bottom in a real kernel (nbclient, the standard runner),
and are kept in the repository with their outputs stripped.

Needs nbclient and ipykernel (in the `test` extra); skipped cleanly without them.
"""
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def run(path, tmp_path):
    """The notebook, executed in `tmp_path` (where it writes its files)."""
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    return notebook


def outputs(cell, kind):
    """What a code cell showed of a MIME type ('image/svg+xml', 'text/plain', ...)."""
    found = [o.get("data", {}).get(kind) for o in cell.outputs] + [
        o.get("text") for o in cell.outputs if o.output_type == "stream" and kind == "stream"]
    return [text for text in found if text]


def test_there_are_notebooks_and_they_are_stored_without_outputs():
    assert [path.name for path in NOTEBOOKS] == ["backprop_ninja.ipynb", "graphs.ipynb"]
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


def test_the_drawing_tour_runs_and_draws_inline(tmp_path, dot):
    cells = [c for c in run(ROOT / "examples" / "graphs.ipynb", tmp_path).cells
             if c.cell_type == "code"]
    drawings = [cell for cell in cells if outputs(cell, "image/svg+xml")]
    assert len(drawings) == 4                       # draw, backward, depth, stop_at
    assert "target" in outputs(drawings[0], "image/svg+xml")[0]
    assert any("└── mean(dims=(0,))" in text for cell in cells for text in outputs(cell,
                                                                                 "stream"))
    assert (tmp_path / "graph.html").exists()


def test_the_exercises_run_bit_exact_with_drawings_inline(tmp_path, dot):
    cells = [c for c in run(ROOT / "examples" / "backprop_ninja.ipynb", tmp_path).cells
             if c.cell_type == "code"]
    printed = "".join(text for cell in cells for text in outputs(cell, "stream"))
    assert "26 of 26 bit-exact, 26 of 26 approximately equal" in printed
    assert printed.count("approximate: True") == 26 + 2         # and exercises 2 and 3
    drawings = [outputs(cell, "image/svg+xml")[0] for cell in cells
                if outputs(cell, "image/svg+xml")]
    assert len(drawings) == 2
    assert "counts_sum_inv" in drawings[0] and "unbroadcast: sum over dim 1" in drawings[0]
    assert "dlogits = g.reshape((1, 1)) / 32 * (np.exp(logprobs) &#45; target)" in drawings[1]


def test_without_dot_the_notebook_shows_the_text_view(tmp_path, monkeypatch):
    bare = tmp_path / "bin"                         # a PATH with python but no dot
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))
    notebook = nbformat.read(ROOT / "examples" / "graphs.ipynb", as_version=4)
    notebook.cells = notebook.cells[:4]             # up to the first drawing
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    [drawing] = [c for c in notebook.cells if c.cell_type == "code"][1:]
    [text] = outputs(drawing, "text/plain")
    assert text.startswith("(Graphviz's `dot` program is not installed")
    assert "loss  scalar float32" in text and not outputs(drawing, "image/svg+xml")
    assert not [o for o in drawing.outputs if o.output_type == "error"]
    assert shutil.which("dot") is None
