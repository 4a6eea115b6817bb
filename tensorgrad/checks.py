"""Argument checks shared by the public functions: plain Python and numpy, no Tensors.

A bad argument should fail at the call that took it, in one line that names the function,
the argument and what was wrong with it ("Linear: in_features must be an int, got float
(3.0)"), not three frames down inside numpy. The checks here are cheap (an isinstance and a
comparison or two), so constructors and functions run them on every call.
"""
from collections.abc import Mapping

import numpy as np

NUMBER_KINDS = "biuf"       # the numpy dtype kinds a tensor can hold: bool, int, uint, float
DEVICES = ("cpu", "cuda", "mps", "meta")


def shown(value):
    """`value` for an error message: its type, and its repr cut to 40 characters."""
    return f"{type(value).__name__} ({value!r:.40})"


def is_int(value):
    """True for Python and numpy integers; False for bools, which Python counts as ints."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def int_arg(value, op, what, low=None):
    """`value` as an int, refused unless it is one and at least `low`."""
    if not is_int(value):
        raise TypeError(f"{op}: {what} must be an int, got {shown(value)}")
    if low is not None and value < low:
        raise ValueError(f"{op}: {what} must be at least {low}, got {value}")
    return int(value)


def number_arg(value, op, what, low=None, high=None, open_high=False):
    """`value`, refused unless it is a real number in [low, high] (or [low, high)).

    The comparisons are written so that NaN fails every bound.
    """
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(
            value, (bool, np.bool_)):
        raise TypeError(f"{op}: {what} must be a number, got {shown(value)}")
    too_low = low is not None and not value >= low
    too_high = high is not None and not (value < high if open_high else value <= high)
    if too_low or too_high:
        bounds = (f"at least {low}" if high is None else
                  f"in [{low}, {high}{')' if open_high else ']'}")
        raise ValueError(f"{op}: {what} must be {bounds}, got {value}")
    return value


def as_dtype(dtype, op):
    """`dtype` (tensorgrad.float32, np.int64, 'float64', float ...) as a numpy dtype of
    numbers. numpy would also make strings, objects and complex numbers; tensors hold none."""
    if isinstance(dtype, str) and dtype.split(":")[0] in DEVICES:
        raise TypeError(f"{op}: {dtype!r} is a device, not a dtype; give it as device= "
                        "(tensorgrad runs on the CPU only)")
    try:
        out = np.dtype(dtype) if dtype is not None else None     # np.dtype(None) is float64
    except TypeError:
        out = None
    if out is None:
        raise TypeError(f"{op}: {dtype!r:.40} is not a dtype; use tensorgrad.float32, "
                        "float64, int64 or bool")
    if out.kind not in NUMBER_KINDS:
        raise TypeError(f"{op}: tensors hold bools, integers or floats, not {out}")
    return out


def index_range(index, n, op, what):
    """Refuse values of the integer array `index` outside [0, n): numpy would read a
    negative index from the end, and PyTorch refuses it. One min and one max, no copy."""
    if index.size and (np.minimum.reduce(index, None) < 0
                       or np.maximum.reduce(index, None) >= n):
        raise IndexError(f"{op}: {what} must lie in [0, {n}), got values from "
                         f"{index.min()} to {index.max()}")


def nonzero_divisor(divisor, op):
    """Refuse an integer `divisor` array that holds a 0: numpy's integer remainder by zero
    is 0 (with a warning, silenced in many loops), and PyTorch raises."""
    if divisor.dtype.kind in "iu" and not np.all(divisor):
        zeros = divisor.size - np.count_nonzero(divisor)
        raise ZeroDivisionError(f"{op}: integer division by zero (the divisor holds 0 at "
                                f"{zeros} of its {divisor.size} positions)")


# The checks above that read the values in an array, not only its shape or dtype: code
# generated for a step (tensorgrad.codegen.compile) makes each such call again at every run.
VALUE_CHECKS = (index_range, nonzero_divisor)


def checked_state(state, own, where):
    """The arrays of `state` (from a `state_dict()`), checked against `own`, the same names
    mapped to what they will be copied into: the names, the dtypes (numbers) and every
    shape must match. Checking all before copying any keeps a failed load from leaving
    the model half loaded."""
    if not isinstance(state, Mapping):
        raise TypeError(f"load_state_dict: expected a dict of arrays by name (as "
                        f"state_dict() returns), got {type(state).__name__}")
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    if missing or unexpected:
        raise KeyError(f"load_state_dict: missing {missing or 'nothing'}, "
                       f"unexpected {unexpected or 'nothing'}")
    arrays = {}
    for name, target in own.items():
        value = np.asarray(state[name])
        if value.dtype.kind not in NUMBER_KINDS:
            raise TypeError(f"load_state_dict: {name} holds {value.dtype} values in the "
                            "state; expected numbers")
        if value.shape != np.shape(target):
            raise ValueError(f"load_state_dict: {name} has shape {value.shape} in the "
                             f"state but {np.shape(target)} in the {where}")
        arrays[name] = value
    return arrays


def correction_arg(name, unbiased, correction):
    """var's and std's divisor n - correction: `unbiased=False` is correction 0, as in
    PyTorch; the default is 1 (Bessel's correction). Giving both is refused, as there."""
    if unbiased is not None and correction is not None:
        raise TypeError(f"{name}: give unbiased or correction, not both")
    if correction is None:
        return 0 if unbiased is False else 1
    return int_arg(correction, name, "correction", low=0)


def int_args(name, what, args):
    """Integers given as f(2, 3) or as f((2, 3)): PyTorch accepts both."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    if not all(is_int(a) for a in args):
        raise TypeError(f"{name}: {what} must be integers, got {args}")
    return tuple(int(a) for a in args)


def shape_arg(name, shape, inferred=0):
    """A shape given as f(2, 3) or f((2, 3)): sizes that are not negative, except that up
    to `inferred` of them may be -1 (the size reshape infers, or expand keeps)."""
    shape = int_args(name, "sizes", shape)
    if any(n < -1 or (n == -1 and not inferred) for n in shape):
        allowed = ", or -1 for one size inferred from the others" if inferred else ""
        raise ValueError(f"{name}: sizes must be 0 or more{allowed}, got {shape}")
    if shape.count(-1) > inferred:
        raise ValueError(f"{name}: only one size can be -1 (inferred from the others), "
                         f"got {shape}")
    return shape


def split_sizes(sizes, n, op):
    """The sizes of the pieces `split` cuts a dimension of size `n` into: pieces of `sizes`
    (an int) and a shorter last one, or the list `sizes` itself, which must add up to n."""
    if is_int(sizes):
        size = int_arg(sizes, op, "split_size", low=1)
        return [size] * (n // size) + ([n % size] if n % size or not n else [])
    sizes = int_args(op, "split sizes", (sizes,))
    if sum(sizes) != n or min(sizes, default=0) < 0:
        raise ValueError(f"{op}: split sizes {list(sizes)} must be at least 0 and add up to "
                         f"the size of the dimension, {n}")
    return sizes
