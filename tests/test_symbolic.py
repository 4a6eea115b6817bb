"""Symbolic gradients: derived formulas against hand-written rules, the lecture's results,
autograd through the unfused graph, finite differences, and PyTorch when installed."""
import inspect
import re
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import tensorgrad as tg
import tensorgrad.nn.functional as F
from tensorgrad import nn, ops
from tensorgrad.symbolic.elementwise_ops import table_ops
from tensorgrad.symbolic.library import BUILTINS
from tensorgrad.symbolic import (builtin_op, derivation, derivative, elementwise, fused_op,
                                 lecture_dhprebn, lecture_dlogits)


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def leaves(*arrays):
    return [tg.tensor(a, dtype=tg.float64, requires_grad=True) for a in arrays]


# ---------------------------------------------------------------- elementwise: table ops

TABLE = table_ops()
SYMPY_CALLABLE = {"neg", "exp", "log", "tanh", "sqrt", "sigmoid", "add", "sub", "mul", "div"}


@pytest.mark.parametrize("name", sorted(SYMPY_CALLABLE))
def test_derived_derivative_equals_the_hand_written_rule_symbolically(name):
    """Call the op's grad_* functions on sympy symbols and compare with the derived ones."""
    d = derivative(name)
    g = sp.Symbol("g")
    for variable, grad in zip(d.variables, TABLE[name].grads):
        hand = by_name(grad, g, out=d.out, **{v.name: v for v in d.variables})
        hand = sp.sympify(hand).xreplace({d.out: d.formula})
        derived = (g * d[variable.name]).xreplace({d.out: d.formula})
        assert sp.simplify(hand - derived) == 0, (name, variable, hand, derived)


def test_pow_derivative_by_the_base_equals_the_hand_written_rule_symbolically():
    d = derivative("pow")
    g = sp.Symbol("g")
    a, b = d.variables
    hand = b * a**(b - 1) * g          # Pow.grad_a without its where(): sympy has none
    assert "g * b * a ** (b - 1)" in inspect.getsource(ops.Pow.grad_a)
    assert sp.simplify((hand - g * d["a"]).xreplace({d.out: d.formula})) == 0
    assert sp.simplify(d["b"].xreplace({d.out: d.formula}) - a**b * sp.log(a)) == 0


def test_relu_and_abs_derivatives_on_each_side_of_the_kink():
    p = sp.Symbol("p", positive=True)
    for name, right, left in (("relu", 1, 0), ("abs", 1, -1)):
        d = derivative(name)
        (x,) = d.variables
        assert d["x"].xreplace({x: p}) == right and d["x"].xreplace({x: -p}) == left
        assert d["x"].xreplace({x: 0}) == 0          # 0 at the kink, as the hand rule


def _inputs(name, rng):
    positive = name in ("log", "sqrt", "pow")
    draw = (lambda: rng.uniform(0.2, 2.0, (3, 4))) if positive else (
        lambda: rng.standard_normal((3, 4)))
    return [draw() for _ in TABLE[name].grads]


@pytest.mark.parametrize("name", sorted(TABLE))
def test_derived_derivative_equals_the_hand_written_rule_numerically(name):
    rng = np.random.default_rng(0)
    arrays = _inputs(name, rng)
    out = TABLE[name].forward(*arrays)
    g = rng.standard_normal(out.shape)
    d = derivative(name)
    for variable, grad in zip(d.variables, TABLE[name].grads):
        derived = g * d.kernel(variable.name)(out, *arrays)
        hand = by_name(grad, g, out=out, **{v.name: a for v, a in zip(d.variables, arrays)})
        assert rel_err(derived, hand) <= 1e-14, (name, variable)


def by_name(rule, g, **values):
    """Call a gradient rule with the values its parameters name (ops.py)."""
    return rule(g, *(values[name] for name in list(inspect.signature(rule).parameters)[1:]))


def test_simplified_derivatives_reuse_the_output_where_that_is_cheaper():
    out = sp.Symbol("out")
    as_text = {name: str(derivative(name)["x"]) for name in ("tanh", "exp", "sigmoid", "sqrt", "log")}
    assert as_text == {"tanh": "1 - out**2", "exp": "out", "sigmoid": "out*(1 - out)",
                       "sqrt": "1/(2*out)", "log": "1/x"}
    assert derivative("tanh").raw[derivative("tanh").variables[0]] != out
    text, tex = str(derivative("tanh")), derivative("tanh").latex()
    assert "1 - tanh(x)**2" in text and "1 - out**2" in text
    assert r"\tanh" in tex and r"\mathrm{out}" in tex


# ---------------------------------------------------------------- elementwise: new ops

def test_user_defined_elementwise_op_matches_finite_differences_and_keeps_float32():
    cube_tanh = elementwise("cube_tanh", "tanh(x)**3 + a*x", a=0.5)
    rng = np.random.default_rng(1)
    X, G = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    x = tg.tensor(X, dtype=tg.float64, requires_grad=True)
    y = cube_tanh(x)
    np.testing.assert_allclose(y.numpy(), np.tanh(X)**3 + 0.5 * X, rtol=1e-14)
    y.backward(G)
    h = 1e-6
    numeric = G * (np.tanh(X + h)**3 - np.tanh(X - h)**3 + 0.5 * 2 * h) / (2 * h)
    assert rel_err(x.grad.numpy(), numeric) < 1e-8
    x32 = tg.tensor(X.astype(np.float32), requires_grad=True)
    y32 = cube_tanh(x32)
    y32.sum().backward()
    assert y32.dtype == np.float32 and x32.grad.dtype == np.float32


@pytest.mark.parametrize("name, reference", [
    ("softplus", lambda t, x: t.nn.functional.softplus(x)),
    ("gelu", lambda t, x: t.nn.functional.gelu(x)),
    ("gelu_tanh", lambda t, x: t.nn.functional.gelu(x, approximate="tanh")),
])
def test_formula_defined_activations_match_pytorch(name, reference):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    X, G = rng.standard_normal((5, 6)) * 3, rng.standard_normal((5, 6))
    (x,) = leaves(X)
    y = {"softplus": F.softplus, "gelu": F.gelu,
         "gelu_tanh": lambda t: F.gelu(t, approximate="tanh")}[name](x)
    y.backward(G)
    tx = torch.tensor(X, requires_grad=True)
    ty = reference(torch, tx)
    ty.backward(torch.tensor(G))
    assert rel_err(y.numpy(), ty.detach().numpy()) < 1e-12
    assert rel_err(x.grad.numpy(), tx.grad.numpy()) < 1e-12


def test_softplus_is_stable_for_large_inputs():
    x = tg.tensor([-800.0, 0.0, 800.0], dtype=tg.float64, requires_grad=True)
    y = F.softplus(x)
    y.sum().backward()
    np.testing.assert_allclose(y.numpy(), [0.0, np.log(2), 800.0], atol=1e-300)
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.5, 1.0], atol=1e-15)


@pytest.mark.parametrize("formula, kwargs, message", [
    ("x*y", {}, "free symbol(s) y that cannot be bound"),
    ("floor(x)", {}, "not differentiable"),
    ("x > 0", {}, "not an expression"),
    ("foo(x)", {}, "not differentiable"),
    ("exp(", {}, "cannot read the formula"),
])
def test_bad_elementwise_formulas_are_named(formula, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        elementwise("bad", formula, **kwargs)


# ---------------------------------------------------------------- the lecture's results

def test_derived_dlogits_is_the_lectures_formula_symbolically():
    d = builtin_op("cross_entropy_mean").definition
    derived = d.gradient("logits")
    assert d.difference(derived, lecture_dlogits(d)) == 0
    n = d.forward.axes["b"].length
    wrong = lecture_dlogits(d) * n                   # forgetting the mean's 1/n is caught
    assert d.difference(derived, wrong) != 0


def test_derived_dhprebn_is_the_lectures_formula_symbolically():
    d = builtin_op("batch_norm").definition
    derived = d.gradient("hprebn")
    assert d.difference(derived, lecture_dhprebn(d)) == 0
    n = d.forward.axes["i"].length
    wrong = lecture_dhprebn(d).xreplace({n - 1: n})  # Bessel's correction dropped: caught
    assert d.difference(derived, wrong) != 0


def test_the_listings_in_the_symbolic_docs_are_what_the_engine_prints():
    import pathlib
    import re
    text = (pathlib.Path(__file__).parents[1] / "docs" / "symbolic.md").read_text()
    blocks = re.findall(r"^```\w*\n(.*?)^```", text, re.S | re.M)
    kernels = [builtin_op("batch_norm").kernel("hprebn", np.float64).source,
               builtin_op("cross_entropy_mean").kernel("logits", np.float64).source]
    assert "\n".join(kernels) in blocks
    (listing,) = [b for b in blocks if b.startswith("tanh:")]
    for shown in re.split(r"\n(?=\w+: out)", listing.strip()):
        lines = [re.sub(r"\s{3,}\(.*\)$", "", line) for line in shown.splitlines()]
        assert "\n".join(lines) == str(derivative(shown.split(":")[0]))


def test_the_simplification_shows_each_stage_and_ends_at_the_gradient():
    from tensorgrad.symbolic.fused import STAGES
    d = builtin_op("batch_norm").definition
    stages = d.simplification("hprebn")
    assert [name for name, _ in stages] == list(STAGES)
    assert stages[-1][1] == d.gradient("hprebn") and stages[0][1] != d.raw_gradient("hprebn")
    bndiff, i = d.symbol("bndiff"), d.forward.axes["i"].index
    sum_of_bndiff = sp.Sum(bndiff, (i, 0, d.forward.axes["i"].length - 1))
    assert stages[0][1].has(sum_of_bndiff) and not stages[1][1].has(sum_of_bndiff)
    assert not stages[2][1].has(bndiff)                  # rewritten through bnraw
    for k, (name, expr) in enumerate(stages, 1):         # each stage keeps the gradient
        assert d.difference(expr, d.raw_gradient("hprebn")) == 0, name
    text = derivation("batch_norm").text(stages=True)
    assert "    2. closed forms:  dhprebn = " in text and "4. common factors" not in text


def test_the_stages_the_symbolic_docs_quote_are_what_the_example_prints():
    import pathlib
    import re
    import subprocess
    import sys
    root = pathlib.Path(__file__).parents[1]
    printed = subprocess.run([sys.executable, str(root / "examples" / "derivations.py")],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    printed = {" ".join(line.split()) for line in printed.splitlines()}
    text = (root / "docs" / "symbolic.md").read_text()
    blocks = [" ".join(b.split()) for language, b in
              re.findall(r"^ *```(\w*)\n(.*?)^ *```", text, re.S | re.M) if not language]
    stages = re.compile(r"(?=\b(?:\d\. [a-z ]+|chain rule|simplified): d)")
    quoted = [s.strip() for b in blocks for s in stages.split(b) if re.match(r"\d\. ", s)]
    assert len(quoted) == 6                          # batchnorm's and cross-entropy's
    for line in quoted:
        assert line in printed, line


def test_the_derivation_goes_through_sums_not_a_given_answer():
    d = builtin_op("batch_norm").definition
    raw = d.raw_gradient("hprebn")
    assert raw.has(sp.Sum) and raw.has(d.symbol("bndiff"))      # the chain rule's output
    assert not d.gradient("hprebn").has(d.symbol("bndiff"))     # rewritten through bnraw
    assert d.symbol("bnraw") in d.gradient("hprebn").free_symbols


def _lecture_batch(rng, n=32, features=64, classes=27):
    logits = rng.standard_normal((n, classes)) * 2
    Y = rng.integers(0, classes, n)
    hprebn = rng.standard_normal((n, features)) * 3 + 1
    bngain = rng.standard_normal((1, features)) * 0.1 + 1
    bnbias = rng.standard_normal((1, features)) * 0.1
    dhpreact = rng.standard_normal((n, features))
    return logits, Y, hprebn, bngain, bnbias, dhpreact


def test_derived_kernels_equal_the_lectures_formulas_numerically():
    rng = np.random.default_rng(3)
    logits, Y, hprebn, bngain, bnbias, dhpreact = _lecture_batch(rng)
    n = len(Y)
    x = tg.tensor(logits, dtype=tg.float64, requires_grad=True)
    F.cross_entropy(x, Y).backward()
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    lecture = probs.copy()
    lecture[np.arange(n), Y] -= 1
    assert rel_err(x.grad.numpy(), lecture / n) <= 1e-12
    assert np.abs(x.grad.numpy().sum(1)).max() < 1e-15          # rows sum to 0

    h, gain, bias = leaves(hprebn, bngain, bnbias)
    F.batch_norm(h, None, None, gain, bias, training=True).backward(dhpreact)
    bnvar_inv = (hprebn.var(0, ddof=1, keepdims=True) + 1e-5) ** -0.5
    bnraw = (hprebn - hprebn.mean(0, keepdims=True)) * bnvar_inv
    dhprebn = bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0)
                                        - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
    assert rel_err(h.grad.numpy(), dhprebn) <= 1e-12
    assert rel_err(gain.grad.numpy(), (bnraw * dhpreact).sum(0, keepdims=True)) <= 1e-12
    assert rel_err(bias.grad.numpy(), dhpreact.sum(0, keepdims=True)) <= 1e-12


# ---------------------------------------------------------------- the built-in fused ops

def _unfused_cross_entropy(logits, Y, reduction):
    losses = -F.log_softmax(logits, 1)[np.arange(len(Y)), Y]
    return {"mean": losses.mean, "sum": losses.sum, "none": lambda: losses}[reduction]()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_runs_on_the_fused_op_and_matches_the_unfused_graph(reduction):
    rng = np.random.default_rng(4)
    logits, Y = rng.standard_normal((7, 5)) * 2, rng.integers(0, 5, 7)
    G = rng.standard_normal(7) if reduction == "none" else np.array(1.7)
    fused, plain = leaves(logits, logits)
    loss = F.cross_entropy(fused, Y, reduction=reduction)
    assert loss.grad_fn.op.name == f"cross_entropy_{reduction}"
    reference = _unfused_cross_entropy(plain, Y, reduction)
    assert loss.shape == reference.shape
    assert rel_err(loss.numpy(), reference.numpy()) <= 1e-13
    loss.backward(G)
    reference.backward(G)
    assert rel_err(fused.grad.numpy(), plain.grad.numpy()) <= 1e-12


def test_cross_entropy_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    logits, Y = rng.standard_normal((9, 4)), rng.integers(0, 4, 9)
    (x,) = leaves(logits)
    loss = F.cross_entropy(x, Y)
    loss.backward()
    tx = torch.tensor(logits, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tx, torch.tensor(Y))
    tloss.backward()
    assert abs(loss.item() - tloss.item()) < 1e-14
    assert rel_err(x.grad.numpy(), tx.grad.numpy()) <= 1e-13


def test_cross_entropy_is_stable_on_logits_of_magnitude_1e4():
    rng = np.random.default_rng(6)
    logits = rng.standard_normal((6, 5)) * 1e4
    Y = rng.integers(0, 5, 6)
    for dtype in (np.float32, np.float64):
        x = tg.tensor(logits.astype(dtype), requires_grad=True)
        loss = F.cross_entropy(x, Y)
        loss.backward()
        shifted = logits - logits.max(1, keepdims=True)
        probs = np.exp(shifted) / np.exp(shifted).sum(1, keepdims=True)
        probs[np.arange(6), Y] -= 1
        assert np.isfinite(loss.item()) and np.isfinite(x.grad.numpy()).all()
        assert x.grad.dtype == dtype
        np.testing.assert_allclose(x.grad.numpy(), probs / 6, atol=1e-7)


def _unfused_batchnorm(x, gain, bias, dims, eps=1e-5):
    mean = x.mean(dims, keepdim=True)
    var = x.var(dims, keepdim=True, unbiased=True)
    return gain * ((x - mean) * (var + eps) ** -0.5) + bias


@pytest.mark.parametrize("shape", [(16, 5), (6, 4, 5), (2, 3)])
def test_batchnorm_module_runs_on_the_fused_op_and_matches_the_unfused_graph(shape):
    rng = np.random.default_rng(7)
    X, G = rng.standard_normal(shape) * 2 + 1, rng.standard_normal(shape)
    bn = nn.BatchNorm1d(shape[-1])
    bn.weight.data = tg.tensor(rng.standard_normal(shape[-1]) * 0.2 + 1)
    bn.bias.data = tg.tensor(rng.standard_normal(shape[-1]) * 0.2)
    bn.weight.requires_grad = bn.bias.requires_grad = True
    (x,) = leaves(X)
    y = bn(x)
    assert y.grad_fn.op.name == "batch_norm"
    y.backward(G)
    xr, gain, bias = leaves(X, bn.weight.numpy(), bn.bias.numpy())
    ref = _unfused_batchnorm(xr, gain, bias, tuple(range(len(shape) - 1)))
    ref.backward(G)
    assert rel_err(y.numpy(), ref.numpy()) <= 1e-12
    for mine, theirs in ((x, xr), (bn.weight, gain), (bn.bias, bias)):
        assert rel_err(mine.grad.numpy(), theirs.grad.numpy()) <= 1e-10


def test_batchnorm_on_a_constant_column_has_no_nan():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((10, 3))
    X[:, 1] = 4.0                                       # no variance at all
    G = rng.standard_normal((10, 3))
    x, gain, bias = leaves(X, np.ones(3), np.zeros(3))
    y = F.batch_norm(x, None, None, gain, bias, training=True)
    y.backward(G)
    assert np.isfinite(y.numpy()).all() and np.isfinite(x.grad.numpy()).all()
    np.testing.assert_array_equal(y.numpy()[:, 1], 0.0)
    expected = 1e-5 ** -0.5 * (G[:, 1] - G[:, 1].mean())    # what eps implies
    assert rel_err(x.grad.numpy()[:, 1], expected) <= 1e-12


def test_float32_stays_float32_through_the_fused_kernels():
    rng = np.random.default_rng(9)
    x = tg.tensor(rng.standard_normal((8, 5)).astype(np.float32), requires_grad=True)
    loss = F.cross_entropy(nn.BatchNorm1d(5)(x), rng.integers(0, 5, 8))
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32
    op = builtin_op("batch_norm")
    a = rng.standard_normal((8, 5)).astype(np.float32)
    one, saved = np.ones(5, np.float32), {}
    args = dict(eps=1e-5, n=8, _axes_i=(-2,), saved=saved)
    out = op.kernel("forward", np.float32)(None, None, a, one, one, **args)
    grad = op.kernel("hprebn", np.float32)(a, out, a, one, one, **args)
    assert out.dtype == grad.dtype == np.float32
    assert all(v.dtype == np.float32 for v in saved.values())


def test_the_backprop_ninja_example_is_still_bit_exact():
    import pathlib
    script = pathlib.Path(__file__).parents[1] / "examples" / "backprop_ninja.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=script.parents[1], timeout=300)
    assert result.returncode == 0, result.stderr
    assert "26 of 26 bit-exact" in result.stdout


# ---------------------------------------------------------------- user-defined fused ops

@fused_op(dim=-1, positive=("eps",))
def layer_norm(f, x, weight, bias, eps=1e-5):
    mean = f.let("mean", f.mean(x))
    var = f.let("var", f.mean((x - mean)**2))
    xhat = f.let("xhat", (x - mean) / sp.sqrt(var + eps))
    return weight * xhat + bias


def _unfused_layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) * (x - mean)).mean(-1, keepdim=True)
    return weight * ((x - mean) / (var + eps).sqrt()) + bias


def test_user_defined_layer_norm_end_to_end():
    rng = np.random.default_rng(10)
    X, W, B = rng.standard_normal((4, 3, 6)), rng.standard_normal(6), rng.standard_normal(6)
    G = rng.standard_normal((4, 3, 6))
    fused, plain = leaves(X, W, B), leaves(X, W, B)
    y = layer_norm(*fused)
    ref = _unfused_layer_norm(*plain)
    assert rel_err(y.numpy(), ref.numpy()) <= 1e-12
    (y * y).sum().backward()                           # a non-trivial upstream gradient
    (ref * ref).sum().backward()
    for a, b in zip(fused, plain):
        assert rel_err(a.grad.numpy(), b.grad.numpy()) <= 1e-10
    simplified = str(layer_norm.gradient("x"))
    assert "xhat" in simplified and "mean" not in simplified    # reads in the forward's names

    # and it trains: a few steps of gradient descent on a layer-normed regression
    x = tg.tensor(X.reshape(12, 6))
    w, b = tg.ones(6, dtype=tg.float64, requires_grad=True), tg.zeros(6, dtype=tg.float64,
                                                                     requires_grad=True)
    target = tg.tensor(G.reshape(12, 6))
    losses = []
    for _ in range(30):
        loss = ((layer_norm(x, w, b) - target) ** 2).mean()
        w.grad = b.grad = None
        loss.backward()
        with tg.no_grad():
            w -= 0.5 * w.grad
            b -= 0.5 * b.grad
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_user_defined_layer_norm_matches_pytorch_and_keeps_float32():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    X, W, B = (rng.standard_normal(s).astype(np.float32) for s in ((5, 8), (8,), (8,)))
    x, w, b = (tg.tensor(a, requires_grad=True) for a in (X, W, B))
    y = layer_norm(x, w, b)
    (y * y).sum().backward()
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (X, W, B))
    ty = torch.nn.functional.layer_norm(tx, (8,), tw, tb, eps=1e-5)
    (ty * ty).sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    for mine, theirs in ((y, ty), (x.grad, tx.grad), (w.grad, tw.grad), (b.grad, tb.grad)):
        np.testing.assert_allclose(mine.numpy(), theirs.detach().numpy(), rtol=1e-4, atol=1e-4)


@fused_op(dim=-1)
def logsumexp(f, x):
    return f.logsumexp(x)


@fused_op(dim=-1)
def softmax(f, x):
    lse = f.logsumexp(x, name="lse")
    return sp.exp(x - lse)


@fused_op(dim=-1, positive=("eps",))
def rms_norm(f, x, weight, eps=1e-6):
    rms = f.let("rms", sp.sqrt(f.mean(x**2) + eps))
    return weight * x / rms


@fused_op(axes={"b": "n", "c": "C"}, dim={"b": 0, "c": 1})
def squared_error_of_softmax(f, logits, target):
    """A custom loss: mean over the batch of the squared distance of softmax from target."""
    lse = f.logsumexp(logits, "c", name="lse")
    probs = f.let("probs", sp.exp(logits - lse))
    return f.mean(f.sum((probs - target)**2, "c"), "b")


UNFUSED = {
    "logsumexp": lambda x: x.logsumexp(-1),
    "softmax": lambda x: F.softmax(x, -1),
    "rms_norm": lambda x, w: w * x / ((x * x).mean(-1, keepdim=True) + 1e-6).sqrt(),
    "squared_error_of_softmax": lambda x, t: ((F.softmax(x, 1) - t) ** 2).sum(1).mean(),
}


@pytest.mark.parametrize("op, shapes", [
    (logsumexp, [(4, 7)]), (softmax, [(3, 2, 5)]), (rms_norm, [(6, 5), (5,)]),
    (squared_error_of_softmax, [(8, 4), (8, 4)]),
])
def test_user_defined_fused_ops_match_autograd_through_the_unfused_graph(op, shapes):
    rng = np.random.default_rng(12)
    arrays = [rng.standard_normal(s) for s in shapes]
    fused, plain = leaves(*arrays), leaves(*arrays)
    y, ref = op(*fused), UNFUSED[op.name](*plain)
    assert y.shape == ref.shape
    assert rel_err(y.numpy(), ref.numpy()) <= 1e-12
    G = rng.standard_normal(y.shape)
    y.backward(G)
    ref.backward(G)
    for a, b in zip(fused, plain):
        assert rel_err(a.grad.numpy(), b.grad.numpy()) <= 1e-10, op.name


def test_softmax_gradient_is_simplified_through_its_output():
    assert str(softmax.gradient("x")) == "(g[i] - Sum(g[i]*out[i], (i, 0, n - 1)))*out[i]"


def test_keepdim_and_reducing_over_several_array_axes():
    rng = np.random.default_rng(13)
    X = rng.standard_normal((3, 4, 5))
    fused, plain = leaves(X), leaves(X)
    y = logsumexp(*fused, dim=(0, 2), keepdim=True)
    ref = plain[0].logsumexp((0, 2), keepdim=True)
    assert y.shape == (1, 4, 1)
    G = rng.standard_normal(y.shape)
    y.backward(G)
    ref.backward(G)
    assert rel_err(fused[0].grad.numpy(), plain[0].grad.numpy()) <= 1e-12


# ---------------------------------------------------------------- kernel code

def _kernel_statements(source):
    """(name assigned, the code after it) for each assignment of a kernel."""
    lines = source.splitlines()
    return [(line.split("=")[0].strip(), "\n".join(lines[k + 1:]))
            for k, line in enumerate(lines) if " = " in line and "saved[" not in line]


@pytest.mark.parametrize("name", BUILTINS)
def test_every_kernel_statement_is_read_and_none_is_computed_twice(name):
    """sympy's cse alone named the n - 1 of a sum's limits (never read) and left layer
    norm's g*weight computed a second time beside the temporary holding it."""
    op = builtin_op(name)
    for which in ["forward", *op.definition.tensor_names]:
        source = op.kernel(which, np.float64).source
        for assigned, rest in _kernel_statements(source):
            assert re.search(rf"\b{assigned}\b", rest), (assigned, source)
        for assigned, _ in _kernel_statements(source):
            if assigned.startswith("_t"):
                value = source.split(f"{assigned} = ")[1].splitlines()[0]
                assert source.count(value) == 1, (value, source)
    assert builtin_op("layer_norm").kernel("x", np.float64).source.count("g*weight") == 1


def test_per_row_factors_meet_each_other_before_the_arrays():
    """In (a/n)*h, a and n are one number per row: combined first, one pass over h; a*h/n
    would pass over h twice. The printed order is the evaluated order."""
    @fused_op(dim=-1)
    def scaled(f, h, w):
        return f.sum(h) * h * w / f.n()

    h, w = np.random.default_rng(0).standard_normal((2, 5, 7))
    forward = scaled.kernel("forward", np.float64)
    assert "out = (sum1/n)*h*w" in forward.source, forward.source
    out = forward(None, None, h, w, n=7, _axes_i=(-1,), saved={})
    assert np.allclose(out, h.sum(-1, keepdims=True) * h * w / 7)


# ---------------------------------------------------------------- caching and laziness

def test_import_tensorgrad_does_not_import_sympy():
    code = "import sys, tensorgrad; print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_derivations_and_kernels_are_made_once_and_cached():
    op = builtin_op("batch_norm")
    assert builtin_op("batch_norm") is op
    assert op.definition.gradient("hprebn") is op.definition.gradient("hprebn")
    assert op.kernel("hprebn", np.float64) is op.kernel("hprebn", np.float64)
    assert op.kernel("hprebn", np.float32) is not op.kernel("hprebn", np.float64)
    assert derivative("tanh") is derivative("tanh")


# ---------------------------------------------------------------- bad input

def test_unbound_symbols_in_a_fused_forward_are_named():
    def leaky(f, x):
        return f.sum(x * sp.Symbol("temperature"))
    with pytest.raises(ValueError, match="temperature cannot be bound"):
        fused_op(leaky)


def test_non_differentiable_fused_forward_is_reported():
    op = fused_op(lambda f, x: f.sum(sp.floor(x)), name="floor_sum", dim=-1)
    with pytest.raises(ValueError, match="not differentiable with respect to x"):
        op.gradient("x")


@pytest.mark.parametrize("call, message", [
    (lambda: layer_norm(tg.ones(3, 4), tg.ones(5), tg.ones(5)), "cannot be broadcast"),
    (lambda: layer_norm(tg.ones(3, 4), tg.ones(1), tg.ones(4)),
     r"weight varies along the reduced axis i .*must be \[4\]"),
    (lambda: layer_norm(tg.ones(3, 4), tg.ones(4), tg.ones(4), dim=2), "out of range"),
    (lambda: layer_norm(tg.tensor(1.0), tg.tensor(1.0), tg.tensor(1.0)),
     "cannot reduce over axis -1 of an input with 0 dimensions"),
    (lambda: layer_norm(tg.ones(3, 0), tg.ones(0), tg.ones(0)), "empty axis"),
    (lambda: builtin_op("batch_norm")(tg.ones(1, 4), tg.ones(4), tg.ones(4)),
     r"divides by n - 1, which is 0 for n = 1"),
    (lambda: builtin_op("batch_norm")(tg.ones(3, 4), tg.ones(3, 4), tg.ones(4)),
     r"bngain is constant along the reduced axis i"),
    (lambda: layer_norm(tg.ones(3, 4), tg.ones(4)), "expected 3 tensors"),
    (lambda: layer_norm(tg.ones(3, 4), tg.ones(4), tg.ones(4), epsilon=1), "unexpected"),
])
def test_shapes_a_fused_op_cannot_reduce_over_are_named(call, message):
    with pytest.raises((ValueError, IndexError, TypeError), match=message):
        call()


# ---------------------------------------------------------------- showing the work

def test_derivation_shows_forward_chain_rule_and_simplified_result():
    work = derivation("batch_norm")
    text = str(work)
    assert "bnvar = sum_i(bndiff2[i])/(n - 1)" in text
    assert "chain rule:  dhprebn = " in text and "simplified:  dhprebn = " in text
    assert ("bngain*bnvar_inv*(dhpreact[i] - bnraw[i]*sum_i(bnraw[i]*dhpreact[i])/(n - 1)"
            " - sum_i(dhpreact[i])/n)") in text
    tex = work.latex()
    assert tex.startswith("\\begin{aligned}") and r"\sum_{i=0}^{n - 1}" in tex
    assert r"\mathrm{bnvar\_inv}" in tex
    kinds = [kind for kind, _, _ in work.steps()]
    assert kinds.count("raw") == kinds.count("simplified") == 3
    assert "d out/dx = 1 - tanh(x)**2  =  1 - out**2" in str(derivation("tanh"))
    assert derivation(F.cross_entropy(tg.randn(3, 4, requires_grad=True), tg.tensor([0, 1, 2]))
                      .grad_fn.op).definition.name == "cross_entropy_mean"


def test_reserved_and_clashing_names():
    with pytest.raises(ValueError, match=r"\['n'\] are reserved"):
        fused_op(lambda f, x, n: f.sum(x * n), name="uses_n")

    @fused_op(dim=-1)
    def shadow(f, x):                   # a user's "sum1" and the unnamed sum must not collide
        first = f.let("sum1", x * 2)
        return f.sum(first) + f.sum(x)

    (x,) = leaves(np.arange(6.0).reshape(2, 3))
    y = shadow(x)
    np.testing.assert_allclose(y.numpy(), 3 * np.arange(6.0).reshape(2, 3).sum(-1))
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3), 3.0))
