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


# ---------------------------------------------------------------- parts of big graphs

def test_stop_at_draws_from_a_tensor_back_to_the_given_tensors(lecture):
    graph = viz.draw(lecture["loss"], stop_at=[lecture["logits"]])
    for name in ("loss", "logprobs", "counts_sum_inv", "logits"):
        assert f"<B>{name}&#160;" in graph.source, name
    for name in ("h", "W2", "hpreact", "C"):
        assert f"<B>{name}&#160;" not in graph.source, name
    logits = node_line(graph, "<B>logits&#160;")
    assert "made by add from 2 inputs not shown" in plain(logits) and "dashed" in logits
    # logits -> max, sub, exp, sum, pow, mul, log, index, mean, neg -> loss: 11 tensors,
    # 10 ops, the constant -1 of counts_sum**-1; an arrow out of each op, 13 into them
    assert viz.graph_size(graph) == (11 + 10 + 1, 10 + 13)
    text = viz.text(lecture["loss"], stop_at=lecture["logits"])
    assert "logits  (32, 27) float32" in text and "W2" not in text
    assert "(made by add from 2 inputs not shown)" in text


def test_depth_draws_a_number_of_ops_back():
    x = tg.tensor([0.5, -0.5], requires_grad=True, name="x")
    y = x
    for _ in range(300):                    # a 300-op loop: 601 nodes in all
        y = y.tanh()
    graph = viz.draw(y, depth=3)
    assert viz.graph_size(graph) == (7, 6) and "made by tanh" in graph.source
    assert viz.graph_size(viz.draw(y, depth=0)) == (1, 0)
    assert viz.graph_size(viz.draw(y, max_nodes=None)) == (601, 600)
    assert len(viz.text(y, depth=2).splitlines()) == 7   # 3 tensors, 2 ops and their rules
    with pytest.raises(viz.GraphTooLarge, match="stop_at=.*depth="):
        viz.draw(y, max_nodes=100)
    with pytest.raises(ValueError, match="draw: depth must be a whole number"):
        viz.draw(y, depth=-1)
    with pytest.raises(TypeError, match="text: stop_at must be a Tensor"):
        viz.text(y, stop_at="x")


def test_the_backward_views_unbroadcast_sums_sit_in_their_frame(lecture):
    graph = viz.draw(lecture["loss"], backward=True,
                     clusters={"batchnorm": (lecture["hpreact"], lecture["hprebn"])})
    frame = graph.source.split("subgraph cluster_0 {")[1].split("}")[0]
    # bnmeani, bnvar_inv, bngain and bnbias are broadcast inside batchnorm; b1 before it
    assert frame.count("unbroadcast: sum") == 4
    outside = graph.source.split("subgraph cluster_0 {")[0]
    assert outside.count("unbroadcast: sum") == 4           # b1, b2, logit_maxes, counts_sum_inv


def test_the_compact_layout_writes_each_op_at_the_head_of_its_tensors_box(lecture):
    graph = viz.draw(lecture["loss"], compact=True)
    # the lecture's 69 nodes less its 28 ellipses; 72 arrows less the 28 out of them
    assert viz.graph_size(graph) == (69 - 28, 72 - 28)
    assert "shape=ellipse" not in graph.source
    box = plain(node_line(graph, "<B>h&#160;"))
    assert box.index("tanh") < box.index("dx = g * (1 - out * out)") < box.index("h  (32, 64)")
    backward = viz.draw(lecture["loss"], compact=True, backward=True)
    assert viz.graph_size(backward) == (77 - 28, 80 - 28)
    b1 = node_line(backward, "<B>b1&#160;").split()[0]
    hprebn = node_line(backward, "<B>hprebn&#160;").split()[0]
    box = next(line.split()[0] for line in backward.source.splitlines()
               if "(32, 64) → (64,)" in line)
    assert f"{b1} -> {box}" in backward.source and f"{box} -> {hprebn}" in backward.source
