"""Functions of tensors: the `tensorgrad.*` math functions and the neural-net functions of
`tensorgrad.nn.functional`. All are composites of Tensor methods: none has a backward of
its own, so each is differentiable by construction.
"""
import numpy as np

from . import ops
from .arrays import DEFAULT_INT, normalize_dims
from .tensor import Tensor, apply


def _tensor(x, name):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (np.ndarray, list, tuple, int, float)):
        return Tensor(x)
    raise TypeError(f"{name}: expected a Tensor, got {type(x).__name__}")


# ---------------------------------------------------------------- tensorgrad.* functions

def exp(input):
    """e to the power of each element."""
    return _tensor(input, "exp").exp()


def log(input):
    """Natural logarithm of each element."""
    return _tensor(input, "log").log()


def tanh(input):
    """Hyperbolic tangent of each element."""
    return _tensor(input, "tanh").tanh()


def sqrt(input):
    """Square root of each element."""
    return _tensor(input, "sqrt").sqrt()


def sigmoid(input):
    """The logistic function 1 / (1 + exp(-x)) of each element."""
    return _tensor(input, "sigmoid").sigmoid()


def relu(input):
    """max(x, 0) for each element."""
    return _tensor(input, "relu").relu()


def matmul(input, other):
    """Matrix product `input @ other`."""
    return _tensor(input, "matmul") @ other


def flatten(input, start_dim=0, end_dim=-1):
    """Merge dimensions start_dim..end_dim into one."""
    return _tensor(input, "flatten").flatten(start_dim, end_dim)


def cat(tensors, dim=0):
    """Join tensors along an existing dimension `dim`; they must agree in every other one."""
    tensors = [_tensor(t, "cat") for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    (axis,) = normalize_dims(dim, tensors[0].ndim, "cat")
    dtype = tensors[0].dtype
    return apply(ops.Cat, *(t.to(dtype) for t in tensors), dim=axis)


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new dimension `dim`."""
    tensors = [_tensor(t, "stack") for t in tensors]
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors need the same shape, got {sorted(shapes)}")
    return cat([t.unsqueeze(dim) for t in tensors], dim)


def all(input):
    """A bool tensor: whether every element of `input` is true (non-zero)."""
    return _tensor(input, "all").all()


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True if |input - other| <= atol + rtol * |other| everywhere (a Python bool)."""
    return bool(np.allclose(np.asarray(input), np.asarray(other), rtol, atol, equal_nan))


# ---------------------------------------------------------------- nn.functional

def one_hot(tensor, num_classes=-1):
    """An int64 tensor with a trailing dimension of size `num_classes`: 1 at each index."""
    index = np.asarray(tensor)
    if index.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got {index.dtype}")
    if num_classes < 0:
        num_classes = int(index.max()) + 1 if index.size else 0
    if index.size and (index.min() < 0 or index.max() >= num_classes):
        raise IndexError(f"one_hot: indices must lie in [0, {num_classes}), got values from "
                         f"{index.min()} to {index.max()}")
    return Tensor._wrap(np.eye(num_classes, dtype=DEFAULT_INT)[index], None)


def log_softmax(input, dim):
    """log(softmax(input)) along `dim`, computed as x - logsumexp(x) (no overflow)."""
    return input - input.logsumexp(dim, keepdim=True)


def softmax(input, dim):
    """exp(x) / sum(exp(x)) along `dim`; each slice along `dim` sums to 1."""
    counts = (input - input.max(dim, keepdim=True).values.detach()).exp()
    return counts / counts.sum(dim, keepdim=True)


def cross_entropy(input, target, reduction="mean"):
    """The negative log-likelihood of the `target` classes under softmax(`input`).

    `input` holds logits of shape (N, C); `target` the N class indices. `reduction` is
    'mean' (the default), 'sum' or 'none'.
    """
    if input.ndim != 2:
        raise ValueError(f"cross_entropy: expected logits of shape (N, C), got {input.shape}")
    target = np.asarray(target)
    if target.shape != input.shape[:1]:
        raise ValueError(f"cross_entropy: {input.shape[0]} rows of logits but target has "
                         f"shape {target.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold class indices (integers), "
                        f"got {target.dtype}")
    if target.size and (target.min() < 0 or target.max() >= input.shape[1]):
        raise IndexError(f"cross_entropy: target classes must lie in [0, {input.shape[1]}), "
                         f"got values from {target.min()} to {target.max()}")
    losses = -log_softmax(input, 1)[np.arange(len(target)), target]
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', "
                     f"got {reduction!r}")
