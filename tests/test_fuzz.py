"""A random-graph fuzzer: expression graphs built from the op table, checked end to end.

Each graph is a small random program: a few float64 leaves of random shapes, then a chain
of random ops, each taking earlier values as operands (so values are reused and gradients
must add up across uses), ending in a sum weighted by a random upstream gradient. The
gradients of the leaves are compared with central finite differences and, when PyTorch is
installed, with PyTorch running the very same program.

CI runs a bounded number of graphs; set TENSORGRAD_FUZZ_GRAPHS for a longer run, e.g.
`TENSORGRAD_FUZZ_GRAPHS=5000 python -m pytest tests/test_fuzz.py`.
"""
import os

import numpy as np
import pytest

import tensorgrad

GRAPHS = int(os.environ.get("TENSORGRAD_FUZZ_GRAPHS", "250"))
SHAPES = [(), (4,), (3, 4), (1, 4), (3, 1), (2, 3, 4)]


def broadcastable(a, b):
    return all(x == y or x == 1 or y == 1 for x, y in zip(reversed(a), reversed(b)))


class Program:
    """A random program over shapes, replayable on any library with PyTorch's API."""

    def __init__(self, seed, length=8):
        self.rng = np.random.default_rng(seed)
        self.leaves = [SHAPES[i] for i in self.rng.choice(len(SHAPES), self.rng.integers(1, 4))]
        self.shapes = list(self.leaves)
        self.steps = []
        for _ in range(length):
            step = self.random_step()
            if step is not None:
                self.steps.append(step)
        self.upstream = self.rng.standard_normal(self.shapes[-1])

    def pick(self, prefer_recent=True):
        n = len(self.shapes)
        return int(n - 1 - min(self.rng.geometric(0.5) - 1, n - 1)) if prefer_recent else int(
            self.rng.integers(n))

    def random_step(self):
        """One op and its operands, or None when the drawn op does not fit the shapes."""
        kind = self.rng.choice(["unary", "binary", "binary", "reduce", "move", "matmul",
                                "index", "cat"])
        i = self.pick()
        shape = self.shapes[i]
        if kind == "unary":
            op = str(self.rng.choice(["exp_small", "log_pos", "tanh", "sqrt_pos", "sigmoid",
                                      "neg", "square", "pow3", "softmax_last"]))
            if op == "softmax_last" and not shape:
                return None
            return self.add(("unary", op, i), shape)
        if kind == "binary":
            j = self.pick(prefer_recent=False)
            if not broadcastable(shape, self.shapes[j]):
                return None
            op = str(self.rng.choice(["add", "sub", "mul", "div_safe"]))
            out = np.broadcast_shapes(shape, self.shapes[j])
            return self.add(("binary", op, i, j), out)
        if kind == "reduce":
            if not shape:
                return None
            dim = int(self.rng.integers(-len(shape), len(shape)))
            keep = bool(self.rng.integers(2))
            op = str(self.rng.choice(["sum", "mean", "max", "logsumexp", "var"]))
            if op == "var" and shape[dim] < 2:
                return None
            out = list(shape)
            out[dim] = 1
            out = tuple(out) if keep else tuple(n for k, n in enumerate(shape)
                                                if k != dim % len(shape))
            ramp = 1e-3 * np.arange(int(np.prod(shape))).reshape(shape)   # breaks ties for max
            return self.add(("reduce", op, i, dim, keep, ramp), out)
        if kind == "move":
            if len(shape) < 2:
                return self.add(("move", "unsqueeze0", i), (1,) + shape)
            op = str(self.rng.choice(["T", "flatten", "transpose01", "expand_first", "rotate"]))
            if op == "rotate":                       # not its own inverse, unlike T
                return self.add(("move", op, i), shape[1:] + shape[:1])
            if op == "T":
                return self.add(("move", op, i), shape[::-1])
            if op == "flatten":
                return self.add(("move", op, i), (int(np.prod(shape)),))
            if op == "transpose01":
                return self.add(("move", op, i), (shape[1], shape[0]) + shape[2:])
            if shape[0] != 1:
                return None
            return self.add(("move", op, i), (3,) + shape[1:])
        if kind == "matmul":
            j = self.pick(prefer_recent=False)
            a, b = shape, self.shapes[j]
            if not a or not b or a[-1] != (b[0] if len(b) == 1 else b[-2]):
                return None
            try:
                out = np.matmul(np.zeros(a), np.zeros(b)).shape
            except ValueError:                                    # batch dims clash
                return None
            return self.add(("matmul", i, j), out)
        if kind == "index":
            if not shape:
                return None
            rows = self.rng.integers(0, shape[0], size=5)          # repeats are likely
            return self.add(("index", i, rows), (5,) + shape[1:])
        j = self.pick(prefer_recent=False)
        if not shape or self.shapes[j][1:] != shape[1:] or not self.shapes[j]:
            return None
        return self.add(("cat", i, j), (shape[0] + self.shapes[j][0],) + shape[1:])

    def add(self, step, shape):
        self.shapes.append(tuple(int(n) for n in shape))
        return step

    def run(self, lib, leaves):
        """Replay the program on `lib` (tensorgrad or torch); returns the weighted sum."""
        values = list(leaves)
        for step in self.steps:
            values.append(apply_step(lib, step, values))
        return (values[-1] * lib.tensor(self.upstream)).sum()


def apply_step(lib, step, v):
    kind = step[0]
    if kind == "unary":
        _, op, i = step
        x = v[i]
        return {"exp_small": lambda: (x * 0.3).exp(), "log_pos": lambda: (x * x + 0.5).log(),
                "tanh": x.tanh, "sqrt_pos": lambda: (x * x + 0.5).sqrt(),
                "sigmoid": x.sigmoid, "neg": lambda: -x, "square": lambda: x * x,
                "pow3": lambda: x ** 3,
                "softmax_last": lambda: lib.nn.functional.softmax(x, -1)}[op]()
    if kind == "binary":
        _, op, i, j = step
        a, b = v[i], v[j]
        return {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
                "div_safe": lambda: a / (b * b + 1.0)}[op]()
    if kind == "reduce":
        _, op, i, dim, keep, ramp = step
        x = v[i]
        if op == "max":         # at a tie max has no derivative; the ramp keeps values apart
            return (x + lib.tensor(ramp)).max(dim, keepdim=keep).values
        if op == "var":
            return x.var(dim, keepdim=keep)
        return getattr(x, op)(dim, keepdim=keep)
    if kind == "move":
        _, op, i = step
        x = v[i]
        return {"unsqueeze0": lambda: x.unsqueeze(0), "T": lambda: x.permute(
            *reversed(range(x.ndim))), "flatten": x.flatten,
                "transpose01": lambda: x.transpose(0, 1),
                "expand_first": lambda: x.expand(3, *x.shape[1:]),
                "rotate": lambda: x.permute(*range(1, x.ndim), 0)}[op]()
    if kind == "matmul":
        return v[step[1]] @ v[step[2]]
    if kind == "index":
        return v[step[1]][lib.tensor(step[2])]
    return lib.cat([v[step[1]], v[step[2]]], 0)


def leaves_for(program, seed):
    rng = np.random.default_rng(seed + 10**6)
    return [rng.standard_normal(shape) for shape in program.leaves]


def finite_difference(program, arrays, eps=1e-6):
    def f(values):
        with tensorgrad.no_grad():
            return program.run(tensorgrad, [tensorgrad.tensor(a) for a in values]).item()

    grads = []
    for k, a in enumerate(arrays):
        grad = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            plus = [x.copy() for x in arrays]
            minus = [x.copy() for x in arrays]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            grad[idx] = (f(plus) - f(minus)) / (2 * eps)
        grads.append(grad)
    return grads


def engine_gradients(program, arrays):
    leaves = [tensorgrad.tensor(a, requires_grad=True) for a in arrays]
    program.run(tensorgrad, leaves).backward()
    return [np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.numpy() for leaf in leaves]


@pytest.mark.parametrize("chunk", range(5))
def test_random_graphs_against_finite_differences(chunk):
    checked = 0
    for seed in range(chunk, GRAPHS, 5):
        program = Program(seed)
        arrays = leaves_for(program, seed)
        ours = engine_gradients(program, arrays)
        reference = finite_difference(program, arrays)
        for k, (g, r) in enumerate(zip(ours, reference)):
            assert g.shape == r.shape
            scale = 1 + np.abs(r).max()
            assert np.allclose(g, r, rtol=1e-5, atol=1e-6 * scale), (
                f"graph {seed}, leaf {k}: steps {program.steps}")
        checked += 1
    assert checked == len(range(chunk, GRAPHS, 5))


def test_random_graphs_against_pytorch():
    torch = pytest.importorskip("torch")
    for seed in range(GRAPHS):
        program = Program(seed)
        arrays = leaves_for(program, seed)
        ours = engine_gradients(program, arrays)
        leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
        program.run(torch, leaves).backward()
        for k, (g, leaf) in enumerate(zip(ours, leaves)):
            theirs = np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.numpy()
            assert np.allclose(g, theirs, rtol=1e-9, atol=1e-10), (
                f"graph {seed}, leaf {k}: steps {program.steps}")
