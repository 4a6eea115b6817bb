"""The README and every page of docs/ show code that runs: each page's ```python blocks run
one after the other in one namespace, as a reader would run them, so a block may use what
an earlier one made (README's "Drawing graphs" draws the graph of "A taste").

A block may say, in an HTML comment on the line before it, that it is not run and why
(`<!-- not run: a sketch ... -->`), or that it is an excerpt of a file (`<!-- excerpt of
tensorgrad/ops.py -->`), which must then hold it verbatim.
"""
import re
import textwrap
from pathlib import Path

import pytest

from tensorgrad import viz

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"(?:<!-- (not run|excerpt of):? *(.*?) -->\n)? *```python\n(.*?)```", re.S)


def blocks(page):
    """(marker, what it says, code) of each python block of a page."""
    return BLOCK.findall(page.read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_python_block_of_the_page_runs_in_sequence(page, tmp_path, monkeypatch, capsys,
                                                         request):
    found = blocks(page)
    if any("viz.render(" in code for marker, _, code in found if not marker):
        request.getfixturevalue("dot")          # the page renders drawings
    monkeypatch.chdir(tmp_path)                 # where the blocks write their pictures
    namespace = {"__name__": "__docs__"}
    for k, (marker, what, code) in enumerate(found, 1):
        where = f"{page.name}, python block {k}"
        if marker == "excerpt of":
            source = (ROOT / what).read_text(encoding="utf-8")
            assert textwrap.dedent(code).strip() in source, f"{where} is not in {what}"
        elif marker == "not run":
            assert what.strip(), f"{where}: say why it is not run"
        else:
            exec(compile(textwrap.dedent(code), where, "exec"), namespace)


def test_the_readme_draws_the_graph_of_a_taste(tmp_path, monkeypatch, capsys, request):
    """README's "Drawing graphs" block runs after "A taste" (it once called backward() a
    second time on the same graph) and writes its three views."""
    test_every_python_block_of_the_page_runs_in_sequence(PAGES[0], tmp_path, monkeypatch,
                                                         capsys, request)
    out = capsys.readouterr().out
    assert "(4, 3) (3, 1) (4, 1)" in out and "└── mean" in out
    if viz.dot_available():
        for name in ("loss.svg", "loss.html"):
            assert (tmp_path / name).stat().st_size > 1000, name


def test_blocks_not_run_say_why_and_excerpts_are_found():
    markers = [(page.name, marker, what) for page in PAGES for marker, what, _ in blocks(page)
               if marker]
    assert ("engine.md", "excerpt of", "tensorgrad/ops.py") in markers
    assert all(what for _, _, what in markers)
