"""Other views of the graph: the text tree, parts of big graphs, the notebook display."""
import sys
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import viz
from tensorgrad.autograd import keep_grads
from test_viz import lecture, node_line, plain  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[1]


def small():
    """The docs' small graph: an input, a parameter, a target, every value kept."""
    g = tg.Generator().manual_seed(0)
    x = tg.randn(3, generator=g)
    W = tg.randn(3, 2, generator=g, requires_grad=True)
    target = tg.tensor([0.5, -1.0])
    with keep_grads():
        out = (x @ W).tanh()
        loss = ((out - target) ** 2).mean()
        loss.backward()
    viz.name_tensors(locals())
    return locals()


# ---------------------------------------------------------------- the text view

def test_the_text_view_is_a_tree_of_tensors_and_ops_with_names_values_and_rules():
    t = small()
    lines = viz.text(t["loss"]).splitlines()
    loss = t["loss"].item()
    assert lines[0] == f"loss  scalar float32  data: {loss:.4f}  grad: 1."
    assert lines[1] == "└── mean(dims=(0,))"
    assert "│ dx = g * (1 - out * out)" in "\n".join(lines)
    where = {line.strip("│ ├└─"): k for k, line in enumerate(lines)}
    out_line = next(k for k, line in enumerate(lines) if "a: out  (2,) float32" in line)
    tanh = lines[out_line + 1]
    assert tanh.endswith("└── tanh  out = tanh(x)")
    assert tanh.index("tanh") == lines[out_line].index("a: out") + 4      # one level deeper
    target = f"b: target  (2,) float32  data: [ 0.5000, -1.0000]  (input)"
    assert any(line.endswith("└── " + target) for line in lines), lines
    assert "b: W  (3, 2) float32  (parameter)" in where
    values = np.array2string(t["W"].numpy(), separator=", ", precision=4, floatmode="fixed")
    first, second = values.splitlines()[:2]
    w_data = next(k for k, line in enumerate(lines) if line.endswith("data: " + first))
    assert lines[w_data + 1].endswith(" " * len("data: ") + second)
    assert lines[-1].endswith("└── b: 2")                          # the constant exponent


def test_the_text_view_writes_a_tensor_used_twice_once():
    x = tg.tensor([1.0, -2.0], requires_grad=True, name="x")
    h = x.tanh()
    h.name = "h"
    y = (h * h).sum()
    text = viz.text(y)
    assert text.count("h  (2,) float32") == 2 and text.count("── tanh") == 1
    assert "b: h  (2,) float32  (above)" in text


def test_the_text_view_needs_no_graphviz(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)          # import graphviz fails
    t = small()
    assert "target" in viz.text(t["loss"])
    with pytest.raises(ImportError):
        viz.draw(t["loss"])


def test_the_text_view_shows_nan_and_statistics_and_hides_what_it_is_told():
    x = tg.tensor([1.0, -1.0], requires_grad=True, name="x")
    with np.errstate(invalid="ignore"):
        y = x.log()
    y.name = "y"
    assert "y  (2,) float32  data: [0.0000,    nan]  (NaN or Inf!)" in viz.text(y)
    big = (tg.arange(20.0, requires_grad=True) * 2)
    assert "data: mean 19  std 11.5  min 0  max 38" in viz.text(big)
    text = viz.text(big, show_data=False, formulas=False)
    assert "data" not in text and "da = " not in text


def test_a_drawing_shows_the_text_view_in_a_notebook_without_dot(monkeypatch, tmp_path):
    t = small()
    graph = viz.draw(t["loss"])
    if viz.dot_available():
        assert "<svg" in graph._repr_mimebundle_()["image/svg+xml"]
    monkeypatch.setenv("PATH", str(tmp_path))                   # no dot to be found
    bundle = graph._repr_mimebundle_()
    assert list(bundle) == ["text/plain"]
    note, tree = bundle["text/plain"].split("\n", 1)
    assert "`dot` program is not installed" in note
    assert tree == viz.text(t["loss"])


def test_the_docs_show_the_text_view_of_the_small_graph():
    doc = (ROOT / "docs" / "viz.md").read_text(encoding="utf-8")
    shown = doc.split("print(viz.text(loss))\n```\n\n```text\n")[1].split("\n```")[0]
    assert shown == viz.text(small()["loss"])
