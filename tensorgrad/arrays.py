"""Array helpers shared by the op table and the backward pass: plain numpy, no Tensors.

The one idea worth reading first is `unbroadcast`: every broadcasting bug in an autodiff
engine is a missing or wrong sum, and here that sum lives in exactly one function.
"""
import functools
import math

import numpy as np

from .checks import is_int, shown

DEFAULT_FLOAT = np.dtype(np.float32)
DEFAULT_INT = np.dtype(np.int64)


def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`, undoing numpy broadcasting.

    Broadcasting an input of shape (1, 4) against (3, 4) uses each of its values three
    times, once per row. In the backward pass every use sends back its own gradient, and
    the uses of one value add up (the chain rule sums over all paths). So the gradient of
    the small input is the big gradient summed over the axes broadcasting stretched: the
    leading axes it did not have, and the axes where it had size 1.
    """
    if grad.shape == shape:
        return grad
    axes = stretched_axes(grad.shape, shape)          # refuses shapes that do not broadcast
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


@functools.lru_cache(maxsize=4096)
def stretched_axes(big, small):
    """The axes of `big` that broadcasting `small` to it added or stretched (remembered: a
    training loop asks about the same few pairs of shapes at every step). A gradient whose
    shape `small` does not broadcast to is a wrong gradient rule: refused, not reshaped."""
    lead = len(big) - len(small)
    if lead < 0 or any(n not in (1, m) for n, m in zip(small, big[lead:])):
        raise RuntimeError(f"backward: a gradient of shape {big} cannot be summed down to "
                           f"its input's shape {small}: the op's gradient rule is wrong")
    return tuple(a for a in range(lead) if big[a] != 1) + tuple(
        lead + i for i, n in enumerate(small) if n == 1 and big[lead + i] != 1)


def normalize_dims(dim, ndim, op):
    """`dim` (None, an int or a tuple of ints, negative allowed) as a sorted tuple of axes.

    A dim out of range, or named twice, is refused: numpy would read (0, -2) of a matrix
    as one axis and reduce over it once, where the caller asked for two.
    """
    if dim is None:
        return tuple(range(ndim))
    if is_int(dim):
        axis = normalize_dim(dim, ndim, op)
        return (axis,) if ndim else ()                  # a 0-d tensor has no axes to reduce
    if not isinstance(dim, (tuple, list)):
        raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {shown(dim)}")
    axes = [normalize_dim(d, ndim, op) for d in dim]
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: dim {tuple(dim)} names the same dimension twice (for a "
                         f"tensor with {ndim} dimensions)")
    return tuple(sorted(axes)) if ndim else ()          # a 0-d tensor has no axes to reduce


def normalize_dim(dim, ndim, op):
    """One `dim` (an int, negative counting from the end) as an axis in range(ndim).

    A 0-d tensor takes dim 0 or -1, as in PyTorch.
    """
    if not is_int(dim):
        raise TypeError(f"{op}: dim must be an int, got {shown(dim)}")
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimensions")
    return int(dim) % max(ndim, 1)


def expand_reduced(grad, shape, axes, keepdim):
    """Broadcast the gradient of a reduction over `axes` back to the input's `shape`."""
    if not keepdim and shape:
        grad = np.expand_dims(grad, axes)
    return np.broadcast_to(grad, shape)


def count(shape, axes):
    """How many elements a reduction over `axes` of an array of `shape` combines."""
    return math.prod(shape[a] for a in axes)


def is_basic_index(index):
    """True if `index` selects without copying (ints, slices, None, ...): no element twice."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice, type(None), type(Ellipsis)))
               or (isinstance(i, np.ndarray) and i.ndim == 0 and i.dtype.kind in "iu")
               for i in items)


def index_steps(index):
    """A PyTorch index as the numpy indices to apply one after the other (one or two).

    numpy and PyTorch read an index the same way except when integers are mixed with
    advanced indices (integer arrays, lists, masks): PyTorch takes each integer's dimension
    away first, and only then places the advanced indices' dimensions (in place if they
    are next to each other, else in front); numpy counts an integer as one more advanced
    index. So `x[0, :, [0, 1]]` of a (2, 3, 4) tensor is (3, 2) in PyTorch and (2, 3) in
    numpy. Applying the integers first, as a basic index, then the rest, gives PyTorch's
    result with numpy's rules.
    """
    items = index if isinstance(index, tuple) else (index,)
    ints = [_int_index(i) for i in items]
    if not any(ints) or not any(_advanced(i) for i in items):
        return (index,)
    first, then = [], []
    for item, integer in zip(items, ints):
        if integer:
            first.append(int(item))
        elif item is None or isinstance(item, (bool, np.bool_)) or (
                isinstance(item, np.ndarray) and item.ndim == 0):
            then.append(item)                       # a new axis (None, True): none consumed
        elif item is Ellipsis:
            first.append(item)
            then.append(item)
        else:                                       # a slice or an advanced index
            consumed = item.ndim if isinstance(item, np.ndarray) and item.dtype == bool else 1
            first += [slice(None)] * consumed
            then.append(item)
    return tuple(first), tuple(then)


def _advanced(item):
    """An advanced index for numpy: an array (a 0-d bool one too), or a Python bool."""
    return isinstance(item, (bool, np.bool_)) or (isinstance(item, np.ndarray) and (
        item.ndim or item.dtype == bool))


def _int_index(item):
    """An integer index: a Python or numpy int, or a 0-d integer array (from a 0-d tensor)."""
    return is_int(item) or (isinstance(item, np.ndarray) and item.ndim == 0
                            and item.dtype.kind in "iu")


def scatter_add(shape, dtype, index, values):
    """An array of zeros of `shape` with `values` added at `index`.

    Fancy indexing may pick the same element twice (an embedding lookup `C[Xb]` with a
    repeated character); its gradient must then arrive twice. `z[index] += v` would keep
    only the last write, `np.add.at` adds every one.
    """
    out = np.zeros_like(values, dtype, shape=shape)   # (values may be a stand-in: higher.py)
    if is_basic_index(index):
        out[index] = values
    else:
        np.add.at(out, index, values)
    return out


def result_float(dtype):
    """The floating dtype an op on `dtype` produces: itself if floating, else the default."""
    return dtype if dtype.kind == "f" else DEFAULT_FLOAT


def promote(a, b):
    """The dtype of a binary op on dtypes `a` and `b`, following PyTorch, not numpy.

    numpy makes int64 + float32 a float64; PyTorch keeps the float operand's dtype, and so
    does tensorgrad, so float32 models stay float32. Two floats give the wider one; two
    integers the wider one; bool joins the other operand.
    """
    if a == b:
        return a
    if a.kind == "f" and b.kind != "f":
        return a
    if b.kind == "f" and a.kind != "f":
        return b
    return np.promote_types(a, b)


def result_type(dims, zeros=(), numbers=()):
    """The dtype of an op on several operands, by PyTorch's rules.

    `dims` are the dtypes of operands with at least one dimension, `zeros` those of 0-d
    tensors, `numbers` those of Python numbers (bool, int64, or float for a float). Each
    group is promoted on its own; then a group counts only if it is of a more general kind
    (bool < integer < float) than the groups before it: `float32 tensor * float64 0-d tensor`
    stays float32 and `int32 tensor + 7` stays int32, but `int64 tensor * 0.5` is a float.
    A Python float takes the default float dtype.
    """
    groups = [functools.reduce(promote, group) if group else None
              for group in (dims, zeros, numbers)]
    if groups[2] is not None and groups[2].kind == "f":
        groups[2] = DEFAULT_FLOAT
    result = None
    for group in groups:
        if result is None:
            result = group
        elif group is not None and (result.kind == "b" or _KIND_RANK[group.kind] >
                                    _KIND_RANK[result.kind]):
            result = promote(result, group)
    return result


_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}


def can_hold(dtype, result):
    """Whether an array of `dtype` can take a result of dtype `result` in place: not a float
    into integers, nor a number into bools (PyTorch refuses those too)."""
    return _KIND_RANK[result.kind] <= _KIND_RANK[dtype.kind]
