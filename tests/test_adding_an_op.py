"""docs/adding-an-op.md is true: its two example ops, defined exactly as the doc shows them,
work everywhere the doc promises (eager against finite differences, as a function, through
numpy's ufunc, in a drawing, in standalone generated code and in a compiled step)."""
import re
import types
from pathlib import Path

import numpy as np
import pytest

import tensorgrad
from tensorgrad import codegen, ops, viz
from tensorgrad.arrays import normalize_dims
from tensorgrad.tensor import apply, unary

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding-an-op.md"


@pytest.fixture(scope="module")
def doc_ops():
    """The doc's classes and methods, run as written (a class in ops.py sees `Op` and `np`;
    a method in tensor.py sees `ops`, `unary`, `apply` and `normalize_dims`)."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    table = {"Op": ops.Op, "np": np}
    for block in blocks:
        if block.startswith("class "):
            exec(block, table)
    methods = {"ops": types.SimpleNamespace(**table), "unary": unary, "apply": apply,
               "normalize_dims": normalize_dims}
    for block in blocks:
        if block.startswith("def "):
            exec(block, methods)
    yield table, methods
    ops.BY_UFUNC.pop(np.sinh, None)             # leave numpy's sinh as it was


CASES = {"sinh": lambda f, x: f(x), "flip": lambda f, x: f(x, (0, -1))}


def test_the_doc_shows_an_elementwise_op_and_a_movement_op(doc_ops):
    table, methods = doc_ops
    assert {"Sinh", "Flip"} <= set(table) and {"sinh", "flip"} <= set(methods)
    assert not hasattr(tensorgrad.Tensor, "sinh") and not hasattr(tensorgrad.Tensor, "flip")


@pytest.mark.parametrize("name", CASES)
def test_eager_gradient_matches_finite_differences(doc_ops, name):
    call, function = CASES[name], doc_ops[1][name]
    rng = np.random.default_rng(0)
    x0, G = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    x = tensorgrad.tensor(x0, dtype=tensorgrad.float64, requires_grad=True)
    (call(function, x) * tensorgrad.tensor(G)).sum().backward()
    numeric = np.zeros_like(x0)
    for k in np.ndindex(x0.shape):
        up, down = x0.copy(), x0.copy()
        up[k] += 1e-6
        down[k] -= 1e-6
        value = lambda a: float((call(function, tensorgrad.tensor(a)).numpy() * G).sum())  # noqa: E731
        numeric[k] = (value(up) - value(down)) / 2e-6
    np.testing.assert_allclose(x.grad.numpy(), numeric, rtol=1e-6, atol=1e-8)


def test_numpy_calls_the_new_op_through_its_ufunc(doc_ops):
    x = tensorgrad.tensor([0.5, -1.0], requires_grad=True)
    y = np.sinh(x)
    assert isinstance(y, tensorgrad.Tensor) and y.grad_fn.op is doc_ops[0]["Sinh"]
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.cosh([0.5, -1.0]), rtol=1e-6)
    assert np.sinh(tensorgrad.tensor([1, 2])).dtype == np.float32        # floats = True


def test_a_node_keeps_what_the_rule_reads(doc_ops):
    _, methods = doc_ops
    x = tensorgrad.randn(3, 4, requires_grad=True)
    sinh, flipped = methods["sinh"](x), methods["flip"](x, (0,))
    assert sinh.grad_fn.inputs[0] is not None and sinh.grad_fn.out is None
    assert flipped.grad_fn.inputs == (None,) and flipped.grad_fn.out is None


@pytest.mark.parametrize("name, rule", [("sinh", "dx = g * np.cosh(x)"),
                                        ("flip", "dx = np.flip(g, (0, 1))")])
def test_the_drawing_shows_the_gradient_rule(doc_ops, name, rule):
    x = tensorgrad.randn(3, 4, requires_grad=True)
    assert rule in viz.draw(CASES[name](doc_ops[1][name], x).sum()).source


@pytest.mark.parametrize("name", CASES)
def test_standalone_generated_code_is_bit_exact(doc_ops, name):
    x = tensorgrad.randn(3, 4, requires_grad=True, generator=tensorgrad.Generator(1))
    loss = (CASES[name](doc_ops[1][name], x) * x).sum()
    program = codegen.generate(loss)
    assert "op_" not in program.source and "grads[" not in program.source     # numpy only
    value, grad = program.function(x.detach().numpy().copy())
    loss.backward()
    np.testing.assert_array_equal(value, loss.detach().numpy())
    np.testing.assert_array_equal(grad, x.grad.numpy())


@pytest.mark.parametrize("name", CASES)
def test_a_compiled_step_runs_the_new_op(doc_ops, name):
    function = doc_ops[1][name]
    w = tensorgrad.randn(3, 4, requires_grad=True, generator=tensorgrad.Generator(2))
    step = codegen.compile(lambda x: (CASES[name](function, w * x) ** 2).mean())
    for k in range(3):
        x = tensorgrad.randn(3, 4, generator=tensorgrad.Generator(10 + k))
        w.grad = None
        compiled = step(x)
        got = w.grad.numpy().copy()
        w.grad = None
        eager = (CASES[name](function, w * x) ** 2).mean()
        eager.backward()
        assert compiled.item() == eager.item() and np.array_equal(got, w.grad.numpy())
    assert step.last == "compiled"
