"""The op table: every primitive tensorgrad differentiates, on plain numpy arrays.

An op is a class used as a namespace, never instantiated. `forward(*arrays, **attrs)`
computes the output; one `grad_<input>(g, out, *arrays, **attrs)` per input returns that
input's vector-Jacobian product: given `g`, the gradient of the final result with respect to
this op's output `out`, it returns the gradient with respect to the input. The functions take
no `self`; they are plain functions of arrays, so each can be tested, printed and reused on
its own.

A grad function may return a gradient in the *broadcast* shape (for `a + b`, simply `g`):
the backward pass sums it down to the input's shape with `arrays.unbroadcast`, in one place.

Everything else (softmax, std, unsqueeze, ...) is a composite of these in `tensor.py` and
`functional.py` and has no backward of its own. Adding an op: write its class here, call it
from a Tensor method with `apply`, and add a gradient test (docs/adding-an-op.md).
"""
import warnings

import numpy as np

from .arrays import count, expand_reduced, scatter_add

# numpy warns when an op makes NaN or Inf (log(0), 0/0). tensorgrad leaves such values to
# flow, as PyTorch does, and reports them in anomaly mode (autograd.detect_anomaly), so
# numpy's warnings are silenced for code in tensorgrad itself, not for yours.
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"tensorgrad(\.|$)")


class Op:
    """Base of the op table. Subclasses set `name` and define `forward` and `grad_*`."""

    name = "op"
    formula = None     # the forward as a sympy-readable expression of x (or a and b)
    derivative = {}    # input -> d out / d input, sympy-readable in the inputs and `out`
    grads = ()         # the grad_* functions, in input order (collected below)

    def __init_subclass__(cls):
        found = tuple(f for key, f in vars(cls).items() if key.startswith("grad_"))
        cls.grads = found or cls.grads

    @classmethod
    def vjp(cls, i, g, out, arrays, attrs):
        """The gradient with respect to input `i` (ops with any number of inputs override this)."""
        return cls.grads[i](g, out, *arrays, **attrs)


# ---------------------------------------------------------------- unary elementwise

class Neg(Op):
    name, formula = "neg", "-x"
    derivative = {"x": "-1"}

    def forward(x):
        return -x

    def grad_x(g, out, x):
        return -g


class Exp(Op):
    name, formula = "exp", "exp(x)"
    derivative = {"x": "out"}

    def forward(x):
        return np.exp(x)

    def grad_x(g, out, x):
        return g * out                      # d/dx exp(x) = exp(x), the output itself


class Log(Op):
    name, formula = "log", "log(x)"
    derivative = {"x": "1/x"}

    def forward(x):
        return np.log(x)

    def grad_x(g, out, x):
        return g / x


class Tanh(Op):
    name, formula = "tanh", "tanh(x)"
    derivative = {"x": "1 - out**2"}

    def forward(x):
        return np.tanh(x)

    def grad_x(g, out, x):
        return g * (1 - out * out)          # 1 - tanh(x)**2, from the saved output


class Sqrt(Op):
    name, formula = "sqrt", "sqrt(x)"
    derivative = {"x": "1/(2*out)"}

    def forward(x):
        return np.sqrt(x)

    def grad_x(g, out, x):
        return g / (2 * out)


class Abs(Op):
    name, formula = "abs", "Abs(x)"
    derivative = {"x": "sign(x)"}

    def forward(x):
        return np.abs(x)

    def grad_x(g, out, x):
        return g * np.sign(x)               # 0 at x == 0, as PyTorch


class Sigmoid(Op):
    name, formula = "sigmoid", "1/(1 + exp(-x))"
    derivative = {"x": "out*(1 - out)"}

    def forward(x):
        z = np.exp(-np.abs(x))              # never overflows
        return np.where(x >= 0, 1 / (1 + z), z / (1 + z))

    def grad_x(g, out, x):
        return g * out * (1 - out)


class Relu(Op):
    name, formula = "relu", "Max(x, 0)"
    derivative = {"x": "Heaviside(x, 0)"}      # 1 where x > 0, else 0

    def forward(x):
        return np.maximum(x, 0)

    def grad_x(g, out, x):
        return np.where(x > 0, g, 0)        # chosen, not multiplied: 0 even where g is inf


class Cast(Op):
    """A change of floating dtype (float32 <-> float64); the gradient changes back."""
    name = "cast"
    derivative = {"x": "1"}

    def forward(x, dtype):
        return x.astype(dtype)

    def grad_x(g, out, x, dtype):
        return g.astype(x.dtype)


class Copy(Op):
    """`clone()`: a new array with the same values; the gradient passes through."""
    name = "clone"
    derivative = {"x": "1"}

    def forward(x):
        return x.copy()

    def grad_x(g, out, x):
        return g


# ---------------------------------------------------------------- binary elementwise
# Inputs may have different shapes that broadcast; grads return the broadcast shape.

class Add(Op):
    name, formula = "add", "a + b"
    derivative = {"a": "1", "b": "1"}

    def forward(a, b):
        return a + b

    def grad_a(g, out, a, b):
        return g

    def grad_b(g, out, a, b):
        return g


class Sub(Op):
    name, formula = "sub", "a - b"
    derivative = {"a": "1", "b": "-1"}

    def forward(a, b):
        return a - b

    def grad_a(g, out, a, b):
        return g

    def grad_b(g, out, a, b):
        return -g


class Mul(Op):
    name, formula = "mul", "a * b"
    derivative = {"a": "b", "b": "a"}

    def forward(a, b):
        return a * b

    def grad_a(g, out, a, b):
        return g * b

    def grad_b(g, out, a, b):
        return g * a


class Div(Op):
    name, formula = "div", "a / b"
    derivative = {"a": "1/b", "b": "-a/b**2"}

    def forward(a, b):
        return a / b

    def grad_a(g, out, a, b):
        return g / b

    def grad_b(g, out, a, b):
        return -g * (out / b)               # -a / b**2, without squaring b (no overflow)


class Pow(Op):
    name, formula = "pow", "a**b"
    derivative = {"a": "b*a**(b - 1)", "b": "out*log(a)"}

    def forward(a, b):
        out = a ** b
        return out if out.dtype == a.dtype else out.astype(a.dtype)   # bools: numpy says int8

    # PyTorch's conventions where the formulas give 0 * inf: the gradient by the base is 0
    # where the exponent is 0 (a**0 is 1 for every a, even 0), and the gradient by the
    # exponent is 0 where the base is 0 and the exponent not negative (0**b is 0 or 1 there).

    def grad_a(g, out, a, b):
        return np.where(b == 0, 0, g * b * a ** (b - 1))

    def grad_b(g, out, a, b):               # asked for only when the exponent needs a gradient
        return np.where((a == 0) & (b >= 0), 0, g * out * np.log(a))


# ---------------------------------------------------------------- reductions
# `dims` is a sorted tuple of axes (arrays.normalize_dims); keepdim keeps them as size 1.

class Sum(Op):
    name = "sum"

    def forward(x, dims, keepdim):
        return np.add.reduce(x, axis=dims, keepdims=keepdim)    # x.sum(), without its wrapper

    def grad_x(g, out, x, dims, keepdim):
        return expand_reduced(g, x.shape, dims, keepdim)      # every element counted once


class Mean(Op):
    name = "mean"

    def forward(x, dims, keepdim):
        return np.add.reduce(x, axis=dims, keepdims=keepdim) / count(x.shape, dims)  # as np.mean

    def grad_x(g, out, x, dims, keepdim):
        return expand_reduced(g / count(x.shape, dims), x.shape, dims, keepdim)


class Var(Op):
    """Variance over `dims`, divided by n - correction (NaN when that is not positive).

    `saved` is a dict given to each application: the forward keeps x - mean there, which
    the gradient 2 (x - mean) / (n - correction) reuses instead of computing it again.
    """
    name = "var"

    def forward(x, dims, keepdim, correction, saved):
        n = count(x.shape, dims)
        diff = saved["diff"] = x - np.add.reduce(x, axis=dims, keepdims=True) / n
        squares = np.add.reduce(diff * diff, axis=dims, keepdims=keepdim)
        if n - correction <= 0:
            return np.full(squares.shape, np.nan, x.dtype)
        return squares / (n - correction)

    def grad_x(g, out, x, dims, keepdim, correction, saved):
        # d/dx_i of sum_j (x_j - mean)^2 / dof is 2 (x_i - mean) / dof: the terms through the
        # mean add up to zero
        n = count(x.shape, dims)
        scale = (2 / (n - correction) if n > correction else np.nan) * g
        if not keepdim and x.ndim:
            scale = np.expand_dims(scale, dims)
        return saved["diff"] * scale


class Std(Op):
    """Standard deviation over `dims`: the square root of `Var`, as one op so that its
    gradient can follow PyTorch where the deviation is 0 (a constant row): 0, not 0/0."""
    name = "std"

    def forward(x, dims, keepdim, correction, saved):
        return np.sqrt(Var.forward(x, dims, keepdim, correction, saved))

    def grad_x(g, out, x, dims, keepdim, correction, saved):
        g = np.where(out == 0, 0, g / (2 * out))          # d sqrt(v) = dv / (2 sqrt(v))
        return Var.grad_x(g, None, x, dims, keepdim, correction, saved)


class Max(Op):
    """The largest value along `dim`, or over everything when `dim` is None.

    Ties: along a dim the whole gradient goes to the first largest element, the one
    `argmax` (and `.max(dim).indices`) names; over the whole tensor it is shared equally
    between the tied elements. Both follow PyTorch.
    """
    name = "max"
    pick = staticmethod(np.argmax)

    def forward(x, dim, keepdim):
        return x.max(axis=dim, keepdims=keepdim)

    def grad_x(g, out, x, dim, keepdim):
        return extremum_grad(Max.pick, g, out, x, dim, keepdim)


class Min(Op):
    """The smallest value along `dim` or overall; ties route the gradient as for Max."""
    name = "min"
    pick = staticmethod(np.argmin)

    def forward(x, dim, keepdim):
        return x.min(axis=dim, keepdims=keepdim)

    def grad_x(g, out, x, dim, keepdim):
        return extremum_grad(Min.pick, g, out, x, dim, keepdim)


def extremum_grad(pick, g, out, x, dim, keepdim):
    """Route the gradient of max/min to the element(s) that produced the output."""
    if dim is None:
        winners = x == np.reshape(out, (1,) * x.ndim)
        return g * winners / int(winners.sum())     # a Python int keeps g's dtype
    if not keepdim:
        g = np.expand_dims(g, dim)
    where = np.expand_dims(pick(x, axis=dim), dim)
    grad = np.zeros_like(x)
    np.put_along_axis(grad, where, g, axis=dim)
    return grad


class LogSumExp(Op):
    name = "logsumexp"

    def forward(x, dims, keepdim):
        m = x.max(axis=dims, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)                   # rows of -inf stay -inf
        out = np.log(np.exp(x - m).sum(axis=dims, keepdims=True)) + m
        return out if keepdim else out.squeeze(dims)

    def grad_x(g, out, x, dims, keepdim):
        out = expand_reduced(out, x.shape, dims, keepdim)
        return expand_reduced(g, x.shape, dims, keepdim) * np.exp(x - out)   # softmax(x)


# ---------------------------------------------------------------- movement

class Reshape(Op):
    """view / reshape, and the composites built on it: flatten, squeeze, unsqueeze."""
    name = "reshape"

    def forward(x, shape):
        return x.reshape(shape)

    def grad_x(g, out, x, shape):
        return g.reshape(x.shape)


class Permute(Op):
    """Reorders axes; transpose and .T are permutes."""
    name = "permute"

    def forward(x, dims):
        return x.transpose(dims)

    def grad_x(g, out, x, dims):
        return g.transpose(np.argsort(dims))


class Expand(Op):
    """Broadcasts size-1 axes to a larger shape without copying."""
    name = "expand"

    def forward(x, shape):
        return np.broadcast_to(x, shape)

    def grad_x(g, out, x, shape):
        return g                            # unbroadcast sums it back to x's shape


class Cat(Op):
    """Joins any number of arrays along an existing axis."""
    name = "cat"

    def forward(*xs, dim):
        return np.concatenate(xs, axis=dim)

    @classmethod
    def vjp(cls, i, g, out, arrays, attrs):
        dim = attrs["dim"]
        start = sum(x.shape[dim] for x in arrays[:i])
        where = [slice(None)] * g.ndim
        where[dim] = slice(start, start + arrays[i].shape[dim])
        return g[tuple(where)]


# ---------------------------------------------------------------- indexing

class GetItem(Op):
    """x[index], numpy-style: ints, slices, None, ..., integer and boolean arrays."""
    name = "index"

    def forward(x, index):
        return x[index]

    def grad_x(g, out, x, index):
        return scatter_add(x.shape, g.dtype, index, g)


class SetItem(Op):
    """A copy of x with x[index] = value; `x[index] = value` on a tensor in the graph."""
    name = "setitem"

    def forward(x, value, index):
        out = x.copy()
        out[index] = value
        return out

    def grad_x(g, out, x, value, index):
        g = g.copy()
        g[index] = 0                        # overwritten elements did not reach the output
        return g

    def grad_value(g, out, x, value, index):
        return g[index]                     # unbroadcast sums it to value's shape


# ---------------------------------------------------------------- matmul

class MatMul(Op):
    """a @ b with numpy's rules: 1-D operands are vectors, leading axes are batches."""
    name = "matmul"

    def forward(a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: {a.shape} @ {b.shape}: both operands need at least "
                             "one dimension (use * to multiply by a scalar)")
        k = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.shape[-1] != k:
            raise ValueError(f"matmul: {a.shape} @ {b.shape}: inner dimensions "
                             f"{a.shape[-1]} and {k} differ")
        return a @ b

    def grad_a(g, out, a, b):
        if a.ndim == 1 and b.ndim == 1:
            return g * b
        if b.ndim == 1:
            return g[..., None] * b                          # outer product, row by row
        if a.ndim == 1:
            return (g[..., None, :] @ b.swapaxes(-1, -2))[..., 0, :]
        return g @ b.swapaxes(-1, -2)

    def grad_b(g, out, a, b):
        if a.ndim == 1 and b.ndim == 1:
            return g * a
        if a.ndim == 1:
            return a[:, None] * g[..., None, :]
        if b.ndim == 1:
            return (a.swapaxes(-1, -2) @ g[..., None])[..., 0]
        return a.swapaxes(-1, -2) @ g
