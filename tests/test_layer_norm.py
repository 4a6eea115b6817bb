"""Layer norm: the fused op derived with sympy, proved equal to the textbook gradient, and
F.layer_norm / nn.LayerNorm against PyTorch (float64, non-trivial upstream gradients)."""
import numpy as np
import pytest
import sympy as sp

import tensorgrad as tg
import tensorgrad.nn.functional as F
from tensorgrad import codegen, nn, symbolic
from tensorgrad.symbolic import builtin_op, textbook_dx

RNG = np.random.default_rng(12)


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def test_derived_dx_is_the_textbook_formula_symbolically():
    d = builtin_op("layer_norm").definition
    derived = d.gradient("x")
    assert d.difference(derived, textbook_dx(d)) == 0
    n = d.forward.axes["i"].length
    wrong = textbook_dx(d).xreplace({n: n - 1})         # a variance divided by n - 1: caught
    assert d.difference(derived, wrong) != 0
    dropped = textbook_dx(d).xreplace({d.symbol("xhat"): 0})   # the variance path forgotten
    assert d.difference(derived, dropped) != 0


def test_derivation_shows_the_simplified_gradients_in_the_forwards_names():
    work = str(symbolic.derivation("layer_norm"))
    assert "chain rule" in work and "simplified" in work
    d = builtin_op("layer_norm").definition
    dx = str(d.gradient("x"))
    assert "rstd" in dx and "xhat" in dx and "mean" not in dx and "var" not in dx
    g, xhat = d.symbol("g"), d.symbol("xhat")
    assert sp.simplify(d.gradient("weight") - g * xhat) == 0
    assert d.gradient("bias") == g


def _torch_pair(*arrays):
    torch = pytest.importorskip("torch")
    ours = [None if a is None else tg.tensor(a, requires_grad=True) for a in arrays]
    theirs = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    return torch, ours, theirs


@pytest.mark.parametrize("shape, normalized, affine", [
    ((4, 5, 8), (8,), True), ((4, 5, 8), (5, 8), True), ((3, 6), 6, True),
    ((2, 3, 4), (4,), False), ((7,), [7], True)])
def test_functional_layer_norm_matches_pytorch(shape, normalized, affine):
    dims = (normalized,) if isinstance(normalized, int) else tuple(normalized)
    X = RNG.standard_normal(shape) * 3 + 1
    W = RNG.standard_normal(dims) if affine else None
    B = RNG.standard_normal(dims) if affine else None
    G = RNG.standard_normal(shape)                          # the upstream gradient
    torch, (x, w, b), (tx, tw, tb) = _torch_pair(X, W, B)
    y = F.layer_norm(x, normalized, w, b, eps=1e-5)
    ty = torch.nn.functional.layer_norm(tx, dims, tw, tb, eps=1e-5)
    y.backward(G)
    ty.backward(torch.tensor(G))
    assert y.dtype == tg.float64 and y.shape == shape
    assert rel_err(y.numpy(), ty.detach().numpy()) <= 1e-12
    pairs = [(x, tx)] + ([(w, tw), (b, tb)] if affine else [])
    for mine, theirs in pairs:
        assert rel_err(mine.grad.numpy(), theirs.grad.numpy()) <= 1e-10


def test_layer_norm_module_matches_pytorch_and_names_its_parameters():
    torch = pytest.importorskip("torch")
    for kwargs, names in [({}, ["weight", "bias"]), ({"bias": False}, ["weight"]),
                          ({"elementwise_affine": False}, [])]:
        ours, theirs = nn.LayerNorm(8, **kwargs), torch.nn.LayerNorm(8, **kwargs).double()
        assert [n for n, _ in ours.named_parameters()] == names
        assert list(ours.state_dict()) == list(theirs.state_dict())
        ours.double()
        with tg.no_grad():
            for p in ours.parameters():
                p += tg.tensor(RNG.standard_normal(p.shape))
        theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
        X, G = RNG.standard_normal((2, 3, 8)), RNG.standard_normal((2, 3, 8))
        x, tx = tg.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
        ours(x).backward(G)
        theirs(tx).backward(torch.tensor(G))
        assert rel_err(x.grad.numpy(), tx.grad.numpy()) <= 1e-10
        for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert rel_err(p.grad.numpy(), q.grad.numpy()) <= 1e-10, name


def test_float32_stays_float32_and_a_float32_layer_takes_float32_input():
    ln = nn.LayerNorm(6)
    x = tg.randn(3, 6, requires_grad=True)
    y = ln(x)
    (y * y).sum().backward()
    assert y.dtype == x.grad.dtype == ln.weight.grad.dtype == tg.float32


def test_a_constant_row_has_no_nan():
    x = tg.ones(2, 5, dtype=tg.float64, requires_grad=True)
    y = F.layer_norm(x, (5,))
    y.backward(tg.tensor(RNG.standard_normal((2, 5))))
    assert np.all(y.numpy() == 0) and np.isfinite(x.grad.numpy()).all()


def test_compiled_step_with_layer_norm_gives_eagers_gradients():
    ln = nn.LayerNorm(8).double()
    W = tg.tensor(RNG.standard_normal((8, 3)), requires_grad=True)

    def step(x, g):
        return (ln(x) @ W * g).sum()

    compiled = codegen.compile(step)
    for k in range(3):
        x = tg.tensor(RNG.standard_normal((4, 5, 8)))
        g = tg.tensor(RNG.standard_normal((4, 5, 3)))
        for p in (W, ln.weight, ln.bias):
            p.grad = None
        expected = step(x, g)
        expected.backward()
        want = [p.grad.numpy().copy() for p in (W, ln.weight, ln.bias)]
        for p in (W, ln.weight, ln.bias):
            p.grad = None
        got = compiled(x, g)
        assert got.item() == expected.item()
        for p, w in zip((W, ln.weight, ln.bias), want):
            assert np.array_equal(p.grad.numpy(), w)
    assert compiled.last == "compiled"
    source = codegen.generate(step(x, g)).source
    assert "rstd" in source and "xhat" in source


@pytest.mark.parametrize("call, kind, message", [
    (lambda: F.layer_norm(tg.ones(3, 4), (5,)), ValueError, r"normalized_shape=\(5,\)"),
    (lambda: F.layer_norm(tg.ones(4), (2, 4)), ValueError, "last dimensions"),
    (lambda: F.layer_norm(tg.ones(3, 4), (4,), tg.ones(3)), ValueError, "weight has shape"),
    (lambda: F.layer_norm(tg.ones(3, 4), (4,), None, tg.ones(4, 1)), ValueError, "bias"),
    (lambda: F.layer_norm(tg.ones(3, 4), ()), ValueError, "at least one dimension"),
    (lambda: F.layer_norm(tg.ones(3, 4), 4.0), TypeError, "normalized_shape must be an int"),
    (lambda: F.layer_norm(tg.ones(3, 4), 4, eps=-1.0), ValueError, "eps"),
    (lambda: nn.LayerNorm(0), ValueError, "LayerNorm: normalized_shape must be at least 1"),
])
def test_bad_layer_norm_arguments_are_named(call, kind, message):
    with pytest.raises(kind, match=message):
        call()


def test_the_layer_norm_listings_in_the_symbolic_docs_are_what_the_engine_prints():
    import pathlib
    import re
    text = (pathlib.Path(__file__).parents[1] / "docs" / "symbolic.md").read_text()
    blocks = re.findall(r"^```\w*\n(.*?)^```", text, re.S | re.M)
    op = builtin_op("layer_norm")
    assert op.kernel("x", np.float64).source in blocks
    assert str(op.gradient("x")) + "\n" in blocks
