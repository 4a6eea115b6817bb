"""Graph drawing: names, kept gradients, derivative formulas, the DOT source, real renders."""
import numpy as np
import pytest
import sympy

import tensorgrad as tg
from tensorgrad import ops
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


DERIVATIVE_CASES = [op for op in vars(ops).values()
                    if isinstance(op, type) and issubclass(op, ops.Op) and op.derivative]


@pytest.mark.parametrize("op", DERIVATIVE_CASES, ids=lambda op: op.name)
def test_each_derivative_formula_agrees_with_the_ops_gradient(op):
    """The formula shown in drawings, evaluated with sympy, equals grad_* with g = 1."""
    rng = np.random.default_rng(0)
    names = [f.__name__.removeprefix("grad_") for f in op.grads]
    assert sorted(op.derivative) == sorted(names)
    arrays = [rng.uniform(0.5, 2.0, 5) * rng.choice([-1, 1], 5) for _ in names]
    if op in (ops.Log, ops.Sqrt, ops.Pow):
        arrays[0] = np.abs(arrays[0])
    attrs = {"dtype": np.float64} if op is ops.Cast else {}
    out = op.forward(*arrays, **attrs)
    symbols = {n: sympy.Symbol(n) for n in names + ["out"]}
    for name, grad in zip(names, op.grads):
        expected = grad(np.ones_like(out), out, *arrays, **attrs)
        formula = sympy.sympify(op.derivative[name], locals=symbols)
        f = sympy.lambdify([symbols[n] for n in names + ["out"]], formula, "numpy")
        got = np.broadcast_to(np.asarray(f(*arrays, out), dtype=np.float64), out.shape)
        np.testing.assert_allclose(got, expected, rtol=1e-12, err_msg=f"{op.name} d/d{name}")
