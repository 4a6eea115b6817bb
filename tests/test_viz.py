"""Graph drawing: names, kept gradients, derivative formulas, the DOT source, real renders."""
import importlib.util
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import makemore, viz
from tensorgrad.autograd import keep_grads


# ---------------------------------------------------------------- names and kept gradients

def test_a_tensors_name_names_its_graph_node():
    x = tg.randn(3, requires_grad=True)
    h = x.tanh()
    h.name = "h"
    assert h.name == "h" and h.grad_fn.name == "h"
    w = tg.tensor([1.0, 2.0], name="w")
    w.requires_grad = True                      # the leaf node made now takes the name
    assert w._node.name == "w" and "name='w'" in repr(w)
    with pytest.raises(TypeError, match="expected a string"):
        h.name = 3


def test_an_in_place_change_keeps_the_name_on_the_new_node():
    x = tg.randn(3, requires_grad=True)
    counts = x.exp()
    counts.name = "counts"
    old = counts.grad_fn
    counts += 1
    assert counts.grad_fn is not old and counts.grad_fn.name == "counts"


def test_keep_grads_keeps_every_nodes_gradient_and_only_inside():
    x = tg.randn(4, 3, requires_grad=True)
    w = tg.randn(3, 1, requires_grad=True)
    h = (x @ w).tanh()
    h.retain_grad()
    loss = (h * h).mean()
    loss.backward(retain_graph=True)
    assert h.grad_fn.grad is None and loss.grad_fn.grad is None
    h.grad = None
    with keep_grads():
        loss.backward()
    np.testing.assert_array_equal(h.grad_fn.grad, h.grad.numpy())
    assert loss.grad_fn.grad == 1
    assert (h.grad_fn.parents[0].grad.shape == (4, 1)) and w._node.grad.shape == (3, 1)


# ---------------------------------------------------------------- the DOT source

ROOT = Path(__file__).resolve().parents[1]
LECTURE_NAMES = ["logprobs", "probs", "counts_sum_inv", "counts_sum", "counts", "norm_logits",
                 "logit_maxes", "logits", "h", "hpreact", "bnraw", "bnvar_inv", "bnvar",
                 "bndiff2", "bndiff", "bnmeani", "hprebn", "embcat", "emb",
                 "C", "W1", "b1", "W2", "b2", "bngain", "bnbias"]


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lecture():
    """The lecture's chunked forward pass, named after its variables, after backward."""
    variables = load_example("render_graph").lecture_forward()
    viz.name_tensors(variables)
    with keep_grads():
        variables["loss"].backward()
    return variables


def small_graph():
    x = tg.randn(4, 3, requires_grad=True)
    w = tg.randn(3, 1, requires_grad=True)
    x.name, w.name = "x", "w"
    h = (x @ w).tanh()
    h.name = "h"
    loss = (h * h).mean() * 0.5
    loss.name = "loss"
    return x, w, h, loss


def svg_text(svg, text):
    """Whether the SVG shows `text` as one run (dot may end a run with non-breaking spaces)."""
    return re.search(f">{re.escape(text)}[\xa0 ]*</text>", svg) is not None


def plain(label):
    """A label's text: tags dropped, non-breaking spaces made plain."""
    return re.sub("<[^>]*>", "", label).replace("&#160;", " ")


def node_line(graph, label_text):
    """The DOT statement of the one node whose label contains `label_text`."""
    lines = [line for line in graph.source.splitlines() if "->" not in line
             and "[label=" in line and label_text in line]
    assert len(lines) == 1, (label_text, lines)
    return lines[0]


def test_a_small_graph_has_a_box_per_tensor_an_ellipse_per_op_and_data_flow_edges():
    x, w, h, loss = small_graph()
    graph = viz.draw(loss)
    # tensors x, w, x@w, h, h*h, mean, loss; ops matmul, tanh, mul, mean, mul; constant 0.5
    assert viz.graph_size(graph) == (13, 13)
    assert graph.source.count("shape=ellipse") == 5
    assert "<B>x&#160; </B>(4, 3) float32" in graph.source
    assert "<B>w&#160; </B>(3, 1) float32" in graph.source
    tanh = node_line(graph, "<B>tanh")
    assert "out = tanh(x)" in tanh and "dx = g * (1 - out * out)" in tanh
    assert "da = g * b" in node_line(graph, "db = g * a")     # h * h: both need grad
    assert "db" not in node_line(graph, "da = g * 0.5>")       # mean * 0.5: only a does
    ids = {name: node_line(graph, f"<B>{name}&#160;").split()[0] for name in "xwh"}
    matmul = node_line(graph, "<B>matmul").split()[0]
    edges = [line.split("[")[0].split() for line in graph.source.splitlines() if "->" in line]
    assert [ids["x"], "->", matmul] in edges and [ids["w"], "->", matmul] in edges
    assert "data: [[" in plain(node_line(graph, "<B>x&#160;")) and "grad:" not in graph.source


def test_values_and_gradients_are_summarised_after_backward():
    x, w, h, loss = small_graph()
    h.retain_grad()
    loss.backward()
    graph = viz.draw(loss, max_values=0)                # statistics even for small tensors
    expected = h.grad.numpy()
    assert f"grad: mean {float(expected.mean()):.3g}" in node_line(graph, "<B>h&#160;")
    assert f"data: {loss.item():.4f}" in node_line(graph, "<B>loss&#160;")
    assert "grad:" not in node_line(graph, "<B>tanh")


VALUE_CASES = [[0.12345, -1.5, 2.0], [1.0, 2.0, 3.0], [1e-5, 1.0], [[0.1, 0.2], [0.3, -0.4]],
               [float("nan"), 1.5], [1, 2, 3], 3.2958, [True, False], [[-1.0] * 4] * 4]


@pytest.mark.parametrize("value", VALUE_CASES, ids=str)
def test_small_tensors_show_their_values_as_pytorch_prints_them(value):
    torch = pytest.importorskip("torch")
    reference = repr(torch.tensor(value))              # tensor([ 0.1235, -1.5000, ...])
    body = reference[len("tensor("):].split(", dtype=")[0].rstrip(")")
    lines, bad = viz.values_text(np.array(value))
    assert lines == [line.replace(" " * len("tensor("), "", 1) for line in body.splitlines()]
    assert bad == ("nan" in reference)


def test_larger_tensors_show_statistics_and_max_values_chooses():
    x = tg.arange(17.0, requires_grad=True)
    y = x * 2
    y.name = "y"
    assert "data: mean 16  std 9.8  min 0  max 32" in plain(node_line(viz.draw(y), "<B>y"))
    shown = plain(node_line(viz.draw(y, max_values=17), "<B>y"))
    assert "data: [ 0.,  2.,  4." in shown and "32.]" in shown
    few = tg.tensor([1.5, 2.5], requires_grad=True)
    assert "data: mean 2" in plain(viz.draw(few * 1, max_values=0).source)
    assert "data: 1.5000" in plain(viz.draw(few.sum() - 2.5, max_values=0).source)   # scalars


def test_parameters_inputs_intermediates_and_the_root_look_different():
    x, w, h, loss = small_graph()
    graph = viz.draw(loss)
    fills = {name: node_line(graph, text).split("fillcolor=")[1].split()[0]
             for name, text in [("parameter", "<B>x&#160;"), ("intermediate", "<B>h&#160;"),
                                ("root", "<B>loss&#160;"), ("input", "[label=<0.5>")]}
    assert len(set(fills.values())) == 4, fills


def test_nan_and_inf_stand_out_in_red():
    red = 'fillcolor="#fadbd8"'
    x = tg.tensor([[1.0, -2.0], [3.0, 4.0]], requires_grad=True, name="x")
    with np.errstate(invalid="ignore", divide="ignore"):
        logx = x.log()                          # NaN where x < 0
        ratio = x.sum() / 0.0                   # Inf
    fine = (x * 2).sum()
    logx.name, ratio.name, fine.name = "logx", "ratio", "fine"
    assert "data: [[0.0000,    nan]" in plain(node_line(viz.draw(logx), "<B>logx&#160;"))
    graph = viz.draw([logx, ratio, fine], max_values=0)
    assert red in node_line(graph, "<B>logx&#160;")
    assert "data: 1 NaN (of 4)  mean" in node_line(graph, "<B>logx&#160;").replace(
        "&#160; ", "  ")
    assert red in node_line(graph, "<B>ratio&#160;") and "data: inf" in graph.source
    assert red not in node_line(graph, "<B>fine&#160;")
    assert red not in node_line(graph, "<B>x&#160;")
    assert graph.source.count(red) == 2


def test_the_lecture_graph_has_every_name_shape_and_formula(lecture):
    start = time.perf_counter()
    graph = viz.draw(lecture["loss"])
    seconds = time.perf_counter() - start
    assert seconds < 1.0
    # 35 tensors (7 parameters, 28 op outputs), 28 ops, 6 constants; 44 inputs + 28 outputs
    assert viz.graph_size(graph) == (69, 72)
    for name in LECTURE_NAMES + ["loss"]:
        shape = lecture[name].shape
        shape = "scalar" if shape == () else str(shape)
        assert f"<B>{name}&#160; </B>{shape} float32" in graph.source, name
    assert "dx = g * (1 - out * out)" in node_line(graph, "<B>tanh")
    assert "index[Xb]" in graph.source                  # C[Xb]: the index by its name
    assert "index[int64 (32,), Yb]" in graph.source     # logprobs[range(n), Yb]
    assert "sum(dims=(1,), keepdim=True)" in graph.source


def test_options_change_direction_and_hide_data_gradients_and_formulas(lecture):
    loss = lecture["loss"]
    assert "rankdir=LR" in viz.draw(loss, rankdir="LR").source
    assert "rankdir=TB" in viz.draw(loss).source
    assert "data:" not in viz.draw(loss, show_data=False).source
    assert "grad:" not in viz.draw(loss, show_grad=False).source
    assert "dx = " not in viz.draw(loss, formulas=False).source
    with pytest.raises(ValueError, match="rankdir"):
        viz.draw(loss, rankdir="sideways")


def test_names_can_be_given_for_one_drawing_only():
    x = tg.randn(3, requires_grad=True)
    data = tg.randn(3)                          # needs no gradient: drawn as an input box
    y = (x * data).sum()
    graph = viz.draw(y, names={"weights": x, "features": data, "total": y})
    assert "<B>weights&#160;" in graph.source and "<B>total&#160;" in graph.source
    assert "<B>features&#160;" in graph.source
    assert x.name is None and y.name is None


def test_inputs_that_need_no_gradient_are_labelled_by_their_names():
    W = tg.randn(3, 2, requires_grad=True)
    x, targets = tg.randn(4, 3), tg.tensor([0, 1, 1, 0])
    rows = tg.tensor([0, 2])
    h = (x @ W)[rows]
    picked = targets[rows]
    loss = tg.nn.functional.cross_entropy(h, picked)
    viz.name_tensors(locals())
    assert (x.name, targets.name, rows.name) == ("x", "targets", "rows")
    graph = viz.draw(loss)
    assert "(4, 3) float32" in node_line(graph, "<B>x&#160;")     # the input box of matmul
    assert "index[rows]" in graph.source                  # an index array, by its name
    assert "<B>one_hot(picked)&#160;" in graph.source     # made from the targets it reads
    unnamed = tg.randn(2)
    y = (W[:2, 0] * unnamed).sum()
    unnamed.name = "set_by_hand"                           # Tensor.name works as well
    assert "<B>set_by_hand&#160;" in viz.draw(y).source
    assert "<B>features&#160;" in viz.draw(y, names={"features": unnamed}).source


def test_name_tensors_names_modules_parameters_and_keeps_existing_names():
    layer = tg.nn.Linear(3, 2)
    a, b = tg.randn(2), tg.randn(2)
    a.name = "kept"
    assert viz.name_tensors({"layer": layer, "a": a, "b": b, "n": 3}) == 3
    assert layer.weight.name == "layer.weight" and layer.bias.name == "layer.bias"
    assert a.name == "kept" and b.name == "b"


def test_the_backward_view_shows_gradients_flowing_back_and_every_unbroadcast(lecture):
    graph = viz.draw(lecture["loss"], backward=True)
    # the forward graph plus one sum per broadcast input: b1, bnmeani, bnvar_inv, bngain,
    # bnbias, b2, logit_maxes, counts_sum_inv
    assert viz.graph_size(graph) == (77, 80)
    boxes = [line for line in graph.source.splitlines() if "unbroadcast: sum" in line]
    assert len(boxes) == 8
    assert any("sum over dim 0<BR/>(32, 64) → (64,)" in box for box in boxes)     # b1
    assert any("sum over dim 1<BR/>(32, 27) → (32, 1)" in box for box in boxes)   # counts_sum_inv
    edges = [line for line in graph.source.splitlines() if "->" in line]
    into_constants = [e for e in edges if e.split()[0].startswith("c")]
    assert len(into_constants) == 6
    assert all("dir=back" in e for e in edges if e not in into_constants)
    assert "the sum of the gradients of its 2 uses" in node_line(graph, "<B>counts&#160;")
    assert "grad: mean" in node_line(graph, "<B>bnvar_inv&#160;")


def test_the_backward_view_says_which_gradients_were_not_kept():
    x, w, h, loss = small_graph()
    graph = viz.draw(loss, backward=True)
    assert "backward() not run" in node_line(graph, "<B>h&#160;")
    loss.backward()
    graph = viz.draw(loss, backward=True)
    assert "grad not kept" in node_line(graph, "<B>h&#160;")
    assert "grad: [[" in plain(node_line(graph, "<B>x&#160;"))


def test_a_cluster_frames_a_module_and_collapse_makes_one_node(lecture):
    loss = lecture["loss"]
    framed = viz.draw(loss, clusters={"batchnorm": (lecture["hpreact"], lecture["hprebn"])})
    assert viz.graph_size(framed) == (69, 72)
    cluster = framed.source.split("subgraph cluster_0 {")[1].split("}")[0]
    assert "label=batchnorm" in cluster
    for name in ("bnmeani", "bnraw", "bngain", "bnbias", "hpreact"):
        assert f"<B>{name}&#160;" in cluster, name
    for name in ("hprebn", "h", "logits"):
        assert f"<B>{name}&#160;" not in cluster, name

    collapsed = viz.draw(loss, collapse={"cross-entropy": (loss, lecture["logits"])})
    # logits -> 10 ops (max ... neg) -> loss: 9 tensors, 10 ops, a constant fewer, 1 more;
    # their 23 edges become logits -> group -> loss
    assert viz.graph_size(collapsed) == (69 - 9 - 10 - 1 + 1, 72 - 23 + 2)
    group = node_line(collapsed, "cross-entropy")
    assert "10 ops" in group
    for name in ("probs", "logprobs", "counts"):
        assert f"<B>{name}&#160;" not in collapsed.source
    group_id = group.split()[0]
    logits_id = node_line(collapsed, "<B>logits&#160;").split()[0]
    loss_id = node_line(collapsed, "<B>loss&#160;").split()[0]
    assert f"{logits_id} -> {group_id}" in collapsed.source
    assert f"{group_id} -> {loss_id}" in collapsed.source
    with pytest.raises(ValueError, match="no ops in the graph"):
        viz.draw(loss, collapse={"nothing": (lecture["C"], [])})


def chain(length):
    x = tg.randn(2, requires_grad=True)
    for _ in range(length):
        x = x.tanh()
    return x


def test_a_graph_over_the_node_limit_is_refused_at_once():
    y = chain(1000)                             # 2,001 nodes
    start = time.perf_counter()
    with pytest.raises(viz.GraphTooLarge, match=r"max_nodes=1000 nodes.*larger max_nodes"):
        viz.draw(y)
    assert time.perf_counter() - start < 1.0
    assert viz.graph_size(viz.draw(y, max_nodes=2001)) == (2001, 2000)
    with pytest.raises(viz.GraphTooLarge):
        viz.draw(y, max_nodes=2000)


def test_drawing_walks_the_graph_without_recursion():
    y = chain(3000)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        graph = viz.draw(y, max_nodes=None)
    finally:
        sys.setrecursionlimit(limit)
    assert viz.graph_size(graph) == (6001, 6000)


def test_a_tensor_outside_the_graph_or_a_leaf_is_drawn_alone():
    graph = viz.draw(tg.tensor([1.0, 2.0], name="alone"))
    assert viz.graph_size(graph) == (1, 0) and "<B>alone&#160;" in graph.source
    p = tg.tensor([1.0, 2.0], requires_grad=True, name="p")
    (p * 3).sum().backward()
    graph = viz.draw(p)
    assert viz.graph_size(graph) == (1, 0) and "grad: [3., 3.]" in plain(graph.source)


# ---------------------------------------------------------------- rendering

def test_render_writes_a_real_svg_and_png(lecture, tmp_path, dot):
    svg = viz.render(lecture["loss"], tmp_path / "lecture.svg", backward=True)
    text = svg.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert text.count('class="node"') == 77 and text.count('class="edge"') == 80
    for name in ("counts_sum_inv", "bnvar_inv", "logits", "W1"):
        assert svg_text(text, name), name
    assert "dx = g * (1 &#45; out * out)" in text and "unbroadcast: sum over dim 1" in text
    png = viz.render(viz.draw(lecture["loss"]), tmp_path / "lecture.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp"))


def test_a_2000_node_graph_renders_in_bounded_time(tmp_path, dot):
    start = time.perf_counter()
    path = viz.render(chain(1000), tmp_path / "chain.svg", max_nodes=None, timeout=120)
    assert path.read_text().count('class="node"') == 2001
    assert time.perf_counter() - start < 120


def test_without_dot_render_says_how_to_install_it_and_saves_the_source(tmp_path, monkeypatch):
    x, w, h, loss = small_graph()
    monkeypatch.setenv("PATH", str(tmp_path))               # no dot to be found
    assert not viz.dot_available()
    with pytest.raises(viz.DotNotFound, match="apt-get install graphviz") as info:
        viz.render(loss, tmp_path / "loss.svg")
    assert "loss.gv" in str(info.value) and not (tmp_path / "loss.svg").exists()
    source = (tmp_path / "loss.gv").read_text(encoding="utf-8")
    assert source.startswith("digraph") and "<B>h&#160;" in source
    viz.draw(loss).save(tmp_path / "saved.gv")               # saving never needs dot
    assert (tmp_path / "saved.gv").read_text(encoding="utf-8").startswith("digraph")


def test_render_refuses_unknown_formats_and_reports_timeouts(tmp_path, lecture, dot):
    with pytest.raises(ValueError, match="cannot tell the format"):
        viz.render(lecture["loss"], tmp_path / "graph.bmpx")
    with pytest.raises(viz.RenderError, match="did not finish within"):
        viz.render(chain(1000), tmp_path / "slow.svg", max_nodes=None, timeout=1e-4)
    assert (tmp_path / "slow.gv").exists() and not (tmp_path / "slow.svg").exists()


def test_the_example_renders_the_lecture_graph(tmp_path, dot):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "render_graph.py"),
                             "--out", str(tmp_path)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "lecture_graph.svg: 41 nodes, 44 edges" in result.stdout
    assert "lecture_backward.svg: 49 nodes, 52 edges" in result.stdout
    assert "lecture_cross_entropy.svg: 14 nodes, 15 edges" in result.stdout
    for name in ("lecture_graph.svg", "lecture_backward.svg", "lecture_cross_entropy.svg"):
        assert svg_text((tmp_path / name).read_text(encoding="utf-8"), "counts_sum_inv")


def test_the_docs_show_a_small_picture_of_the_lecture_graph():
    doc = (ROOT / "docs" / "viz.md").read_text(encoding="utf-8")
    image = ROOT / "docs" / "lecture_backward.svg"
    assert "(lecture_backward.svg)" in doc and image.stat().st_size < 200_000
    assert "(lecture_cross_entropy.svg)" in doc
    assert "(page.png)" in doc and (ROOT / "docs" / "page.png").stat().st_size < 150_000
    assert svg_text(image.read_text(encoding="utf-8"), "counts_sum_inv")
    small = (ROOT / "docs" / "small_graph.svg").read_text(encoding="utf-8")
    assert "(small_graph.svg)" in doc and svg_text(small, "target")
    assert "[\xa00.5000,\xa0&#45;1.0000]" in small            # target, as PyTorch prints it


# ---------------------------------------------------------------- makemore

SMALL_RUN = ["--steps", "20", "--n-hidden", "8", "--batch-size", "8", "--samples", "1",
             "--no-progress"]


def test_makemore_writes_the_graph_of_a_training_step(tmp_path, dot, capsys):
    makemore.train(makemore.parse_args(SMALL_RUN + ["--out", str(tmp_path)]))
    svg = (tmp_path / "step_graph.svg").read_text(encoding="utf-8")
    for name in ("embedding.weight", "hidden.weight", "bn.bias", "out.bias", "logits",
                 "cross_entropy_mean"):
        assert svg_text(svg, name), name
    assert "step_graph.svg" in capsys.readouterr().out


def test_makemore_without_dot_notes_it_in_one_line_and_carries_on(tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    summary = makemore.train(makemore.parse_args(SMALL_RUN + ["--out", str(tmp_path)]))
    notes = [line for line in capsys.readouterr().out.splitlines() if "step_graph" in line]
    assert len(notes) == 1 and "not installed" in notes[0]
    assert not (tmp_path / "step_graph.svg").exists()
    assert (tmp_path / "summary.json").exists() and summary["steps_run"] == 20


def test_ops_defined_by_a_formula_show_their_derived_derivative():
    from tensorgrad import symbolic
    cube = symbolic.elementwise("cube", "x**3")
    y = cube(tg.tensor([1.0, 2.0], requires_grad=True))
    assert viz.gradient_formulas(y.grad_fn) == {"x": "g * (3*x**2)"}
    assert "3*x**2" in viz.draw(y).source


def test_drawing_walks_long_chains_and_wide_fan_ins_without_recursion():
    x = tg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(20_000):                    # far past Python's recursion limit
        y = y * 1.0
    assert viz.graph_size(viz.draw(y, max_nodes=None)) == (60_001, 60_000)
    leaves = [tg.tensor(float(i), requires_grad=True) for i in range(1000)]
    total = tg.stack(leaves).sum()
    nodes, edges = viz.graph_size(viz.draw(total, max_nodes=None))
    assert nodes > 3000 and edges > 3000


def test_fused_ops_are_titled_with_their_numbers_only():
    bn = tg.nn.BatchNorm1d(4)
    y = bn(tg.randn(8, 4, requires_grad=True))
    source = viz.draw(y).source
    assert "batch_norm(eps=1e-05)" in source and "_axes_" not in source


# ---------------------------------------------------------------- every op's gradient rule

def run_rule(node, name, values):
    """Run the drawn gradient rule of input `name` of `node` on `values` ({name: array})."""
    statements = viz.rule_statements(name, viz.gradient_formulas(node)[name])
    scope = {"np": np, "dxs": [None, None], **values}
    exec(statements, scope)
    return eval(f"d{name}", scope)


@pytest.mark.parametrize("example", ["rows and columns", "repeated rows",
                                  "slice", "max", "min", "cat"])
def test_rules_that_write_into_arrays_are_drawn_as_the_statements_that_run(example):
    x = tg.tensor(np.random.default_rng(0).standard_normal((5, 3)), requires_grad=True)
    rows = np.array([0, 2, 2, 4, 2])
    y = {"rows and columns": lambda: x[rows, rows % 3], "repeated rows": lambda: x[rows],
         "slice": lambda: x[1:], "max": lambda: x.max(1).values,
         "min": lambda: x.min(0, keepdim=True).values,
         "cat": lambda: tg.cat([x * 2, x], 1)}[example]()
    g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    (y * tg.tensor(g)).sum().backward()
    node, values = y.grad_fn, {"g": g, "x": x.numpy(), "out": y.numpy(), "index": rows}
    if example == "cat":                  # dxs[1] only: dxs[0] arrives through the product
        values["xs"] = [x.numpy() * 2, x.numpy()]
        got = run_rule(node, "xs[1]", values)
        np.testing.assert_allclose(got, g[:, 3:])
        np.testing.assert_allclose(run_rule(node, "xs[0]", values) * 2 + got, x.grad.numpy())
        return
    if example == "rows and columns":
        values["index_2"] = rows % 3
    np.testing.assert_allclose(run_rule(node, "x", values), x.grad.numpy(), rtol=1e-6)
    label = node_line(viz.draw(y), f"<B>{node.op.name}")
    assert "dx = np.zeros" in label


def test_fused_ops_show_their_derived_forward_and_gradients():
    logits = tg.randn(4, 3, requires_grad=True)
    loss = tg.nn.functional.cross_entropy(logits, tg.tensor([0, 1, 2, 0]))
    label = node_line(viz.draw(loss), "<B>cross_entropy")
    assert "logprobs = _log_softmax(logits, (-1,))" in label
    assert "dlogits = g.reshape((1, 1)) / 4 * (np.exp(logprobs) - target)" in label
    bn = tg.nn.BatchNorm1d(3)
    label = node_line(viz.draw(bn(tg.randn(8, 3, requires_grad=True))), "<B>batch_norm")
    assert "bnraw = bnvar_inv * bndiff" in label
    for rule in ("dhprebn = bngain * bnvar_inv * (g - (bnraw * g).sum(", "dbngain = (bnraw * g).sum(",
                 "dbnbias = g.sum("):
        assert rule in label, rule
