"""Gradients of gradients: every case of the gradient table, differentiated twice.

For each case of tests/test_gradients.py (in float64, with a random upstream gradient G and
broadcast shapes), the first gradients are computed with `create_graph=True`, contracted
with random directions V, and differentiated again: a Hessian-vector product of
sum(out * G). That product is checked

1. against central finite differences of the first gradients along V (the definition of
   the second derivative), and
2. against PyTorch's double backward (skipped when torch is not installed).

Then the API: autograd.grad's arguments and refusals, backward(inputs=...), accumulation,
and the in-place checks on recorded backward graphs.
"""
import numpy as np
import pytest

import tensorgrad
from tensorgrad import autograd
from test_gradients import ALL_CASES, TORCH_CASES, make_inputs, params


def hessian_vector(lib, fn, arrays, G, V):
    """(first gradients, the gradient of sum_i <grad_i, V_i>) for sum(fn(*arrays) * G),
    each input's as a float64 array (zeros where the output does not depend on it)."""
    leaves = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = fn(lib, *leaves)
    grads = lib.autograd.grad(out, leaves, lib.tensor(G), create_graph=True,
                              allow_unused=True)
    first = [np.zeros_like(a) if g is None else np.array(g.detach().tolist(), np.float64)
             for g, a in zip(grads, arrays)]
    used = [(g * lib.tensor(v)).sum() for g, v in zip(grads, V) if g is not None]
    if not used or not any(u.requires_grad for u in used):
        return first, [np.zeros_like(a) for a in arrays]       # the gradient is a constant
    total = sum(u for u in used if u.requires_grad)
    second = lib.autograd.grad(total, leaves, allow_unused=True)
    return first, [np.zeros_like(a) if h is None else np.array((h + 0).tolist(), np.float64)
                   for h, a in zip(second, arrays)]


def directions(c, arrays):
    rng = np.random.default_rng(len(c.id))
    with tensorgrad.no_grad():
        out = c.fn(tensorgrad, *(tensorgrad.tensor(a) for a in arrays))
    G = rng.standard_normal(out.shape)
    return G, [rng.standard_normal(a.shape) for a in arrays]


@pytest.mark.parametrize("c", params(ALL_CASES))
def test_second_derivatives_match_finite_differences_of_gradients(c):
    arrays, _ = make_inputs(c)
    G, V = directions(c, arrays)
    _, hv = hessian_vector(tensorgrad, c.fn, arrays, G, V)
    eps = 1e-6
    plus, _ = hessian_vector(tensorgrad, c.fn, [a + eps * v for a, v in zip(arrays, V)], G, V)
    minus, _ = hessian_vector(tensorgrad, c.fn, [a - eps * v for a, v in zip(arrays, V)], G, V)
    for i, (h, p, m) in enumerate(zip(hv, plus, minus)):
        numeric = (p - m) / (2 * eps)
        scale = 1 + np.max(np.abs(numeric), initial=0)
        np.testing.assert_allclose(h, numeric, rtol=1e-5, atol=1e-6 * scale,
                                   err_msg=f"second derivative along V, input {i}")


@pytest.mark.parametrize("c", params(TORCH_CASES))
def test_second_derivatives_match_pytorch(c):
    torch = pytest.importorskip("torch")
    arrays, _ = make_inputs(c)
    G, V = directions(c, arrays)
    first, hv = hessian_vector(tensorgrad, c.fn, arrays, G, V)
    first_t, hv_t = hessian_vector(torch, c.fn, arrays, G, V)
    for i in range(len(arrays)):
        np.testing.assert_allclose(first[i], first_t[i], rtol=1e-10, atol=1e-12,
                                   err_msg=f"first gradient, input {i}")
        scale = max(1.0, float(np.max(np.abs(hv_t[i]), initial=0)))
        np.testing.assert_allclose(hv[i], hv_t[i], rtol=1e-9, atol=1e-11 * scale,
                                   err_msg=f"second derivative along V, input {i}")


# ---------------------------------------------------------------- the API, against PyTorch

def both():
    torch = pytest.importorskip("torch")
    return tensorgrad, torch


def test_grad_returns_gradients_and_leaves_dot_grad_alone():
    for lib in both():
        x = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
        (gx, gw) = lib.autograd.grad((x * w).sum(), [x, w])
        assert gx.tolist() == [0.5, -1.0, 2.0] and gw.tolist() == [1.0, 2.0, 3.0]
        assert x.grad is None and w.grad is None and not gx.requires_grad


def test_grad_of_an_intermediate_and_unused_inputs():
    outcome = {}
    for lib in both():
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        unused = lib.tensor([3.0], dtype=lib.float64, requires_grad=True)
        h = x * x
        y = (h * 3).sum()
        (gh,) = lib.autograd.grad(y, h, retain_graph=True)
        gx, gu = lib.autograd.grad(y, [x, unused], allow_unused=True)
        with pytest.raises(RuntimeError):
            lib.autograd.grad(y, [x, unused])
        outcome[lib.__name__] = (gh.tolist(), gx.tolist(), gu)
    assert outcome["tensorgrad"] == outcome["torch"] == ([3.0, 3.0], [6.0, 12.0], None)


def test_create_graph_keeps_the_graph_and_dot_grad_is_in_the_graph():
    """backward(create_graph=True) leaves .grad as a tensor in the graph: its backward gives
    the Hessian-vector product, adding to what .grad holds (as in PyTorch)."""
    results = {}
    for lib in both():
        x = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
        y = (x ** 3).sum()
        y.backward(create_graph=True)
        first = x.grad.tolist()
        assert x.grad.requires_grad
        g = x.grad
        x.grad = None
        (g * lib.tensor([1.0, 0.0, 2.0], dtype=lib.float64)).sum().backward()
        results[lib.__name__] = (first, x.grad.tolist())
        y.backward()                              # the graph was kept
    assert results["tensorgrad"] == results["torch"]
    assert results["tensorgrad"] == ([0.75, 3.0, 12.0], [3.0, 0.0, 24.0])


def test_backward_inputs_fills_only_those():
    for lib in both():
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([3.0, 4.0], requires_grad=True)
        (a * b).sum().backward(inputs=[a])
        assert a.grad.tolist() == [3.0, 4.0] and b.grad is None


def test_third_derivative_of_a_polynomial():
    x = tensorgrad.tensor(1.5, dtype=tensorgrad.float64, requires_grad=True)
    y = x ** 4 + x.exp()
    (d1,) = autograd.grad(y, x, create_graph=True)
    (d2,) = autograd.grad(d1, x, create_graph=True)
    (d3,) = autograd.grad(d2, x)
    assert d1.item() == pytest.approx(4 * 1.5**3 + np.exp(1.5))
    assert d2.item() == pytest.approx(12 * 1.5**2 + np.exp(1.5))
    assert d3.item() == pytest.approx(24 * 1.5 + np.exp(1.5))


def test_an_in_place_change_is_refused_on_a_recorded_backward_graph():
    """The recorded backward pass keeps what its own rules read (here x, for the derivative
    of 3 x**2): changing it before differentiating again is refused, as in PyTorch."""
    for lib in both():
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        (gx,) = lib.autograd.grad((x ** 3).sum(), x, create_graph=True)
        with lib.no_grad():
            x[0] = 10.0
        with pytest.raises(RuntimeError, match="modified by an inplace operation|was changed "
                                               "in place after the op used it"):
            gx.sum().backward()


def test_refusals_name_the_function():
    x = tensorgrad.tensor([1.0, 2.0], requires_grad=True)
    c = tensorgrad.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="autograd.grad: an input does not require grad"):
        autograd.grad((x * c).sum(), [c])
    with pytest.raises(ValueError, match="autograd.grad: 1 outputs but 2 grad_outputs"):
        autograd.grad(x.sum(), [x], grad_outputs=[None, None])


# ---------------------------------------------------------------- ops derived with sympy

SYMBOLIC = {
    "gelu": lambda lib, x: lib.nn.functional.gelu(x),
    "gelu-tanh": lambda lib, x: lib.nn.functional.gelu(x, approximate="tanh"),
    "softplus": lambda lib, x: lib.nn.functional.softplus(x),
}


@pytest.mark.parametrize("name", SYMBOLIC)
def test_elementwise_ops_from_formulas_have_second_derivatives_as_pytorch(name):
    """An op defined by its formula gets its second derivative from sympy: its derivative
    becomes an elementwise op of its own, whose derivative is derived in turn."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, G, V = (rng.standard_normal((3, 4)) for _ in range(3))
    fn = SYMBOLIC[name]
    ours = hessian_vector(tensorgrad, fn, [x], G, [V])
    theirs = hessian_vector(torch, fn, [x], G, [V])
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a[0], b[0], rtol=1e-9, atol=1e-12)


def unfused_batch_norm(lib, x, w, b):
    """batch_norm in training mode from primitives (the lecture's Bessel-corrected var)."""
    mean = x.mean(0, keepdim=True)
    var = x.var(0, keepdim=True, unbiased=True)
    return w * (x - mean) * (var + 1e-5) ** -0.5 + b


def test_fused_ops_have_the_second_derivatives_of_their_formulas():
    """The fused batchnorm's kernels run on recorded values: its second derivatives equal
    those of the same formula built from primitives (checked against PyTorch above)."""
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal((6, 3)), rng.standard_normal(3), rng.standard_normal(3)]
    G = rng.standard_normal((6, 3))
    V = [rng.standard_normal(a.shape) for a in arrays]
    fused = hessian_vector(tensorgrad, lambda lib, x, w, b: lib.nn.functional.batch_norm(
        x, None, None, w, b, training=True), arrays, G, V)
    unfused = hessian_vector(tensorgrad, unfused_batch_norm, arrays, G, V)
    for a, b in zip(fused[0] + fused[1], unfused[0] + unfused[1]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def test_layer_norm_has_the_second_derivatives_of_its_formula():
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal((4, 5)), rng.standard_normal(5), rng.standard_normal(5)]
    G = rng.standard_normal((4, 5))
    V = [rng.standard_normal(a.shape) for a in arrays]

    def unfused(lib, x, w, b):
        mean = x.mean(-1, keepdim=True)
        var = x.var(-1, keepdim=True, unbiased=False)
        return (x - mean) * (var + 1e-5) ** -0.5 * w + b

    fused = hessian_vector(tensorgrad, lambda lib, x, w, b: lib.nn.functional.layer_norm(
        x, (5,), w, b), arrays, G, V)
    composed = hessian_vector(tensorgrad, unfused, arrays, G, V)
    for a, b in zip(fused[0] + fused[1], composed[0] + composed[1]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


# ---------------------------------------------------------------- autograd.functional

A = np.random.default_rng(6).standard_normal((3, 4))


def two_in_one_out(lib):
    return lambda x, y: (lib.tensor(A) @ x).tanh() * y


def scalar_of(lib):
    return lambda x: ((lib.tensor(A) @ x).tanh() ** 2).sum() + x.exp().sum()


def flat(result):
    """Every tensor in a (nested) result, as float64 arrays."""
    if isinstance(result, (tuple, list)):
        return [a for r in result for a in flat(r)]
    return [np.array(result.tolist(), np.float64)]


FUNCTIONAL = {
    "vjp": lambda lib, F, x, y, v4, v3: F.vjp(two_in_one_out(lib), (x, y), v3),
    "jvp": lambda lib, F, x, y, v4, v3: F.jvp(two_in_one_out(lib), (x, y), (v4, v3)),
    "jacobian": lambda lib, F, x, y, v4, v3: F.jacobian(two_in_one_out(lib), (x, y)),
    "jacobian-single": lambda lib, F, x, y, v4, v3: F.jacobian(lambda t: t.exp() * t, x),
    "hvp": lambda lib, F, x, y, v4, v3: F.hvp(scalar_of(lib), x, v4),
    "vhp": lambda lib, F, x, y, v4, v3: F.vhp(scalar_of(lib), x, v4),
    "hessian": lambda lib, F, x, y, v4, v3: F.hessian(scalar_of(lib), x),
    "hessian-pair": lambda lib, F, x, y, v4, v3: F.hessian(
        lambda a, b: (a.tanh() * b[:4]).sum() * b.sum(), (x, lib.cat([y, y]))),
}


@pytest.mark.parametrize("name", FUNCTIONAL)
def test_autograd_functional_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    import torch.autograd.functional as TF
    from tensorgrad.autograd import functional as AF
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(4), rng.standard_normal(3), rng.standard_normal(4),
              rng.standard_normal(3)]
    ours = FUNCTIONAL[name](tensorgrad, AF, *map(tensorgrad.tensor, arrays))
    theirs = FUNCTIONAL[name](torch, TF, *map(torch.tensor, arrays))
    for a, b in zip(flat(ours), flat(theirs), strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_hvp_matches_finite_differences_of_gradients():
    from tensorgrad.autograd import functional as AF
    rng = np.random.default_rng(8)
    x, v = rng.standard_normal(4), rng.standard_normal(4)

    def gradient(at):
        t = tensorgrad.tensor(at, requires_grad=True)
        return np.array(autograd.grad(scalar_of(tensorgrad)(t), t)[0].tolist())

    _, hv = AF.hvp(scalar_of(tensorgrad), tensorgrad.tensor(x), tensorgrad.tensor(v))
    eps = 1e-6
    numeric = (gradient(x + eps * v) - gradient(x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv.tolist(), numeric, rtol=1e-6, atol=1e-8)


def test_functional_refusals_name_the_function():
    from tensorgrad.autograd import functional as AF
    x = tensorgrad.tensor([1.0, 2.0], dtype=tensorgrad.float64)
    with pytest.raises(RuntimeError, match="vjp: v can be omitted only when every output"):
        AF.vjp(lambda t: t * 2, x)
    with pytest.raises(RuntimeError, match="hvp: the function must return a tensor with a "
                                           "single element"):
        AF.hvp(lambda t: t * 2, x, x)
    with pytest.raises(RuntimeError, match=r"jacobian: the output does not depend on an input "
                                           r"\(shape \(2,\)\), and strict=True"):
        AF.jacobian(lambda a, b: a * 2, (x, x), strict=True)
    with pytest.raises(TypeError, match="jvp: inputs must hold floating-point values"):
        AF.jvp(lambda t: t, tensorgrad.tensor([1, 2]), tensorgrad.tensor([1, 2]))


# ---------------------------------------------------------------- the example

def test_the_second_order_example_converges_and_its_hvp_check_holds(tmp_path, capsys):
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "examples" / "second_order.py"
    spec = importlib.util.spec_from_file_location("second_order", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    newton, descent, hv, numeric = example.main(["--steps", "6", "--out", str(tmp_path / "g.svg")])
    assert abs(newton[-1] - newton[-2]) < 1e-12          # Newton converged (quadratically)
    assert descent[-1] > newton[-1] + 1e-3               # gradient descent is still on its way
    np.testing.assert_allclose(hv.numpy(), numeric.numpy(), rtol=1e-6, atol=1e-9)
    assert "Hessian-vector product" in capsys.readouterr().out


def test_retain_graph_false_with_create_graph_lets_go_as_in_pytorch():
    for lib in both():
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        y = (x.exp() * x).sum()
        (g,) = lib.autograd.grad(y, x, create_graph=True, retain_graph=False)
        with pytest.raises(RuntimeError):
            y.backward()
        with pytest.raises(RuntimeError):              # g's graph goes through y's, let go
            lib.autograd.grad(g.sum(), x)
