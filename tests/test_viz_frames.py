"""Module frames: which module call recorded each op, and drawings framed by module."""
import re
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as tg
import tensorgrad.nn.functional as F
from tensorgrad import makemore, nn, viz
from test_viz import node_line

ROOT = Path(__file__).resolve().parents[1]


def frame(source, label):
    """The DOT text of the cluster labelled `label`, with the clusters nested in it."""
    start = source.index(f"label={label} " if " " not in label else f'label="{label}" ')
    start = source.rindex("subgraph cluster_", 0, start)
    depth, end = 0, source.index("{", start)
    while True:
        depth += {"{": 1, "}": -1}.get(source[end], 0)
        if depth == 0:
            return source[start:end]
        end += 1


@pytest.fixture
def names_mlp():
    g = tg.Generator().manual_seed(0)
    model = makemore.NamesMLP(27, 3, n_embd=4, n_hidden=8, generator=g)
    X = tg.randint(0, 27, (5, 3), generator=g)
    Y = tg.randint(0, 27, (5,), generator=g)
    loss = F.cross_entropy(model(X), Y)
    loss.backward()
    viz.name_tensors(locals())
    return model, X, loss


def calls(node):
    """The modules of the calls that recorded `node`, outermost first."""
    chain, call = [], node.module_call
    while call is not None:
        chain.append(call[0])
        call = call[1]
    return chain[::-1]


def test_each_node_notes_the_module_calls_that_recorded_it(names_mlp):
    model, X, loss = names_mlp
    assert calls(loss.grad_fn) == []                     # cross_entropy: outside the model
    logits = loss.grad_fn.parents[0]
    assert calls(logits) == [model, model.out]           # the bias add of model.out
    tanh = next(n for n in viz.drawing._walk([loss.grad_fn], None)[0]
                if n.op is not None and n.op.name == "tanh")
    assert calls(tanh) == [model]                        # in NamesMLP.forward itself
    assert tg.randn(2, requires_grad=True).exp().grad_fn.module_call is None


def test_modules_frame_the_model_and_collapse_the_modules_not_opened(names_mlp):
    model, X, loss = names_mlp
    graph = viz.draw(loss, modules=model)
    mlp = frame(graph.source, "NamesMLP")
    for name, line in [("embedding: Embedding", "1 op: index<BR/>weight (27, 4)"),
                       ("hidden: Linear", "1 op: linear<BR/>weight (8, 12), bias (8,)"),
                       ("bn: BatchNorm1d", "1 op: batch_norm<BR/>weight (8,), bias (8,)")]:
        assert f"<B>{name}</B><BR/>{line}>" in mlp, name
    assert "<B>tanh" in mlp and "cross_entropy" not in mlp
    assert "model.hidden.weight" not in graph.source     # drawn inside its module's node
    assert "subgraph cluster_" not in mlp[1:]            # no frame inside: all collapsed
    hidden = node_line(graph, "hidden: Linear").split()[0]
    bn = node_line(graph, "bn: BatchNorm1d").split()[0]
    out = re.search(rf"\s{hidden} -> (\w+)", graph.source).group(1)
    assert f"{out} -> {bn}" in graph.source              # hidden's output goes into bn


def test_an_opened_module_is_a_frame_inside_its_parents(names_mlp, tmp_path):
    model, X, loss = names_mlp
    square = (model(X) ** 2).mean()
    square.backward()
    graph = viz.draw(square, modules=model, open=["hidden"], backward=True)
    mlp, hidden = frame(graph.source, "NamesMLP"), frame(graph.source, "hidden: Linear")
    assert hidden in mlp
    for text in ("<B>model.hidden.weight&#160;", "<B>model.hidden.bias&#160;", "<B>linear</B>",
                 "unbroadcast: sum over dim 0"):
        assert text in hidden, text
    assert "out: Linear</B><BR/>1 op" in mlp            # still collapsed
    assert "<B>model.bn.weight&#160;" in frame(viz.draw(loss, modules=model, open="bn").source,
                                               "bn: BatchNorm1d")
    everything = viz.draw(loss, modules=model, open=True)
    assert "box3d" not in everything.source
    if viz.dot_available():
        assert viz.render(everything, tmp_path / "frames.svg").stat().st_size > 0


def test_each_call_of_a_module_gets_its_own_frame():
    g = tg.Generator().manual_seed(0)
    shared = nn.Linear(3, 3, generator=g)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    x = tg.randn(4, 3, generator=g)
    y = model(x)
    graph = viz.draw(y.sum(), modules=model)
    assert "<B>0: Linear</B>" in graph.source and "<B>0: Linear (call 2)</B>" in graph.source
    assert "<B>1: Tanh</B><BR/>1 op: tanh" in graph.source
    # the shared parameters, used by two collapsed calls, are drawn once, outside both
    framed = viz.draw(y.sum(), modules=model, open=["0"])
    assert "0: Linear (call 2)" in framed.source and "box3d" in framed.source
    np.testing.assert_allclose(y.numpy(), model(x).numpy())


def test_module_frames_refuse_what_they_cannot_use(names_mlp):
    model, X, loss = names_mlp
    with pytest.raises(ValueError, match=r"open='hiden' names no module of NamesMLP; "
                                         r"its modules: embedding, hidden, bn, out"):
        viz.draw(loss, modules=model, open=["hiden"])
    with pytest.raises(TypeError, match="modules must be a Module"):
        viz.draw(loss, modules={"model": model})
    with pytest.raises(ValueError, match="open= names modules of the model given as modules="):
        viz.draw(loss, open=["hidden"])
    with pytest.raises(ValueError, match="no op in the graph was recorded by a call of Linear"):
        viz.draw(loss, modules=nn.Linear(2, 2))


def test_the_docs_show_the_makemore_mlp_in_module_frames():
    doc = (ROOT / "docs" / "viz.md").read_text(encoding="utf-8")
    picture = (ROOT / "docs" / "names_mlp_modules.svg").read_text(encoding="utf-8")
    assert "(names_mlp_modules.svg)" in doc and len(picture) < 50_000
    for text in ("NamesMLP", "hidden: Linear", "bn: BatchNorm1d", "1 op: linear"):
        assert text in picture, text


def test_the_backward_view_draws_after_backward_let_go_of_the_values():
    """backward() without retain_graph lets go of what the fused ops' forwards computed on
    the side; the backward view still draws (their shapes come from the forward run on
    placeholders)."""
    from tensorgrad.makemore import NamesMLP
    model = NamesMLP(27, 3, generator=tg.Generator().manual_seed(0))
    X, Y = tg.randint(0, 27, (8, 3)), tg.randint(0, 27, (8,))
    loss = F.cross_entropy(model(X), Y)
    loss.backward()
    source = viz.draw(loss, backward=True).source
    assert "cross_entropy_mean" in source and "batch_norm" in source
