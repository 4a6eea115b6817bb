"""Kinks and limits: every differentiable function at the inputs where a formula can give
0/0, 0 * inf or an overflow: zeros, constant rows, ties, -inf and +inf entries, huge and
tiny values, a single element.

PyTorch's conventions are the reference (float64): relu'(0) = 0, |x|'(0) = 0, the gradient
of std at a constant row is 0 (its backward masks where std = 0), d/dx x**0 = 0 at 0,
d/db 0**b = 0 for b >= 0, a -inf logit has probability 0 and gradient 0, max/min split
the gradient between ties over the whole tensor and give it to the first along a dim.
"""
import itertools
import math

import numpy as np

from .harness import Case, backprop, with_grads


def F(lib):
    return lib.nn.functional


TARGET = np.array([0, 2])          # class indices for cross_entropy on (2, 4) inputs

FUNCTIONS = {
    "x.std()": lambda lib, x: x.std(),
    "x.std(1)": lambda lib, x: x.std(1),
    "x.std(1, unbiased=False)": lambda lib, x: x.std(1, unbiased=False),
    "x.var(1)": lambda lib, x: x.var(1),
    "x.var(1, correction=0)": lambda lib, x: x.var(1, correction=0),
    "(x - x.mean()) / (x.std() + 1e-5)": lambda lib, x: (x - x.mean()) / (x.std() + 1e-5),
    "(x - mean(1)) / (std(1) + 1e-5)":
        lambda lib, x: (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-5),
    "x.relu().sqrt()": lambda lib, x: x.relu().sqrt(),
    "x ** 0": lambda lib, x: x ** 0,
    "x ** 0.0": lambda lib, x: x ** 0.0,
    "0.0 ** x": lambda lib, x: 0.0 ** x,
    "x ** 2": lambda lib, x: x ** 2,
    "x ** 0.5": lambda lib, x: x ** 0.5,
    "x ** 1.5": lambda lib, x: x ** 1.5,
    "x ** -1": lambda lib, x: x ** -1,
    "x.abs()": lambda lib, x: x.abs(),
    "x.relu()": lambda lib, x: x.relu(),
    "x.sqrt()": lambda lib, x: x.sqrt(),
    "x.log()": lambda lib, x: x.log(),
    "x.exp()": lambda lib, x: x.exp(),
    "x.tanh()": lambda lib, x: x.tanh(),
    "x.sigmoid()": lambda lib, x: x.sigmoid(),
    "x.max()": lambda lib, x: x.max(),
    "x.min()": lambda lib, x: x.min(),
    "x.max(1).values": lambda lib, x: x.max(1).values,
    "x.min(0).values": lambda lib, x: x.min(0).values,
    "x.max(1).indices": lambda lib, x: x.max(1).indices,
    "F.softmax(x, 1)": lambda lib, x: F(lib).softmax(x, 1),
    "F.softmax(x, 0)": lambda lib, x: F(lib).softmax(x, 0),
    "F.log_softmax(x, 1)": lambda lib, x: F(lib).log_softmax(x, 1),
    "x.logsumexp(1)": lambda lib, x: x.logsumexp(1),
    "F.cross_entropy(x, [0, 2])": lambda lib, x: F(lib).cross_entropy(x, lib.tensor(TARGET)),
    "F.cross_entropy(x, [0, 2], 'sum')":
        lambda lib, x: F(lib).cross_entropy(x, lib.tensor(TARGET), reduction="sum"),
    "F.cross_entropy(x, [0, 2], 'none')":
        lambda lib, x: F(lib).cross_entropy(x, lib.tensor(TARGET), reduction="none"),
    "x * x": lambda lib, x: x * x,
    "x / x": lambda lib, x: x / x,
    "x.mean()": lambda lib, x: x.mean(),
    "F.softplus(x)": lambda lib, x: F(lib).softplus(x),
    "F.gelu(x)": lambda lib, x: F(lib).gelu(x),
    "F.gelu(x, approximate='tanh')": lambda lib, x: F(lib).gelu(x, approximate="tanh"),
    "x.tanh().abs().max()": lambda lib, x: x.tanh().abs().max(),
}

INPUTS = {
    "zeros": np.zeros((2, 4)),
    "constant rows": np.array([[1.5] * 4, [-2.0] * 4]),
    "ties": np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, 2.0]]),
    "zeros and signs": np.array([[0.0, -0.0, 1.0, -1.0], [0.0, 2.0, -3.0, 0.0]]),
    "-inf entries": np.array([[0.5, -np.inf, 1.0, -0.5], [-np.inf, 2.0, 0.0, 1.0]]),
    "+inf entry": np.array([[0.5, np.inf, 1.0, -0.5], [0.0, 2.0, 0.0, 1.0]]),
    "large": np.array([[1e4, -1e4, 2e4, 0.0], [800.0, 799.0, -800.0, 0.5]]),
    "huge": np.array([[1e300, 1e-300, -1e300, 1.0], [1e200, 1e200, 0.0, 1.0]]),
    "one column": np.array([[0.5], [-1.0]]),
}
NEEDS_FOUR_COLUMNS = ("cross_entropy",)

# Where the mathematics gives no answer, the libraries' NaN and Inf patterns differ without
# either being wrong: these pairs are left out.
UNDEFINED = {
    # real powers of negative numbers: numpy follows C99 pow at -0.0 and -inf (+inf, +0),
    # PyTorch 1/sqrt (-inf, NaN)
    **{(f, "zeros and signs"): "x**p, p not an integer, at -0.0"
       for f in ("x ** 0.5", "x ** 1.5")},
    **{(f, "-inf entries"): "x**p, p not an integer, at -inf" for f in ("x ** 0.5", "x ** 1.5")},
    # a logit of +inf: softmax is inf/inf; the limit is one-hot, neither library gives it
    **{(f, "+inf entry"): "softmax of a +inf logit" for f in (
        "F.log_softmax(x, 1)", "F.cross_entropy(x, [0, 2])",
        "F.cross_entropy(x, [0, 2], 'sum')", "F.cross_entropy(x, [0, 2], 'none')")},
}


def exact_mean(torch):
    """x.mean() at 'huge', with the mean summed exactly (math.fsum): PyTorch's vectorised
    sum adds 1e300 and -1e300 after 1e200 has been absorbed, and returns 0.25 for a mean
    of 2.5e199. The gradient, G / 8 everywhere, is unchanged."""
    x = torch.tensor(INPUTS["huge"], requires_grad=True)
    out = x.mean()
    exact = math.fsum(INPUTS["huge"].reshape(-1).tolist()) / INPUTS["huge"].size
    out = out + (exact - out).detach()
    backprop(torch, out)
    return {"out": out, "grads": [x.grad]}


REFERENCES = {("x.mean()", "huge"): (exact_mean, exact_mean.__doc__.split(":")[1].strip())}


def cases():
    found = []
    for (code, fn), (name, x) in itertools.product(FUNCTIONS.items(), INPUTS.items()):
        if x.shape[1] < 4 and any(k in code for k in NEEDS_FOUR_COLUMNS):
            continue
        if (code, name) in UNDEFINED:
            continue
        reference, note = REFERENCES.get((code, name), (None, None))
        found.append(Case(f"kinks/{code} at {name}", with_grads(fn, x),
                          f"x = {x.tolist()} (float64); {code}", reference=reference,
                          note=note))
    return found
