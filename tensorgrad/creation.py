"""Making tensors: from data, filled with a constant, or random (with PyTorch's signatures).

Each takes `device=` as PyTorch does: the CPU is accepted in any spelling, any other device
refused in one line (tensorgrad.devices).

Random numbers come from numpy's PCG64 generator: seeding gives reproducible runs, but not
the same numbers PyTorch draws for the same seed.
"""
import math

import numpy as np

from .arrays import DEFAULT_FLOAT, DEFAULT_INT
from .versions import note_sharing
from .checks import NUMBER_KINDS, as_dtype, int_arg, number_arg, shape_arg, shown
from .devices import device_arg
from .tensor import Tensor, as_array


def tensor(data, dtype=None, device=None, requires_grad=False, name=None):
    """A new tensor holding a copy of `data` (a list, number, numpy array or Tensor).

    `name` is optional, for `repr` and drawings of the graph (`Tensor.name`).
    """
    device_arg(device, "tensor")
    return Tensor(data, dtype=dtype, requires_grad=requires_grad, name=name)


def as_tensor(data, dtype=None, device=None):
    """`data` as a tensor, without copying when it already is one of that dtype."""
    device_arg(device, "as_tensor")
    if isinstance(data, Tensor) and (dtype is None or data.dtype == as_dtype(dtype, "as_tensor")):
        return data
    return Tensor._wrap(as_array(data, dtype, op="as_tensor"), None)


def from_numpy(array):
    """A tensor sharing memory with a numpy array (changes to one show in the other)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy array, got {shown(array)}")
    if array.dtype.kind not in NUMBER_KINDS:
        raise TypeError(f"from_numpy: tensors hold bools, integers or floats, not {array.dtype}")
    note_sharing(array)             # numpy code holds the memory too
    return Tensor._wrap(array, None)


def _filled(fill, size, dtype, requires_grad, name, device=None):
    device_arg(device, name)
    shape = shape_arg(name, size)
    fill = fill._data if isinstance(fill, Tensor) else fill
    if np.ndim(fill) != 0 or np.asarray(fill).dtype.kind not in NUMBER_KINDS:
        raise TypeError(f"{name}: fill_value must be a number, got {shown(fill)}")
    if dtype is not None:
        dtype = as_dtype(dtype, name)
    elif name == "full" and isinstance(fill, (bool, np.bool_)):
        dtype = np.dtype(np.bool_)                  # full's dtype follows its fill value
    else:
        dtype = DEFAULT_INT if name == "full" and isinstance(fill, int) else DEFAULT_FLOAT
    return Tensor._wrap(np.full(shape, fill, dtype), None).requires_grad_(requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros of the given size."""
    return _filled(0, size, dtype, requires_grad, "zeros", device)


def ones(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of ones of the given size."""
    return _filled(1, size, dtype, requires_grad, "ones", device)


def empty(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of the given size to be filled in: zeros here (PyTorch leaves whatever the
    memory held; zeros keep runs repeatable)."""
    return _filled(0, size, dtype, requires_grad, "empty", device)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor of the given size filled with `fill_value`."""
    return _filled(fill_value, (size,), dtype, requires_grad, "full", device)


def zeros_like(input, dtype=None, device=None, requires_grad=False):
    """Zeros with the shape (and, by default, dtype) of `input`; never in the graph."""
    return _filled_like(input, 0, dtype, requires_grad, "zeros_like", device)


def ones_like(input, dtype=None, device=None, requires_grad=False):
    """Ones with the shape (and, by default, dtype) of `input`."""
    return _filled_like(input, 1, dtype, requires_grad, "ones_like", device)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    """`fill_value` everywhere, with the shape (and, by default, dtype) of `input`."""
    return _filled_like(input, fill_value, dtype, requires_grad, "full_like", device)


def _filled_like(input, fill, dtype, requires_grad, name, device):
    array = input._data if isinstance(input, Tensor) else as_array(input, op=name)
    return _filled(fill, array.shape, dtype or array.dtype, requires_grad, name, device)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """Evenly spaced values in [start, end): int64 for integer arguments, else float32."""
    device_arg(device, "arange")
    if end is None:
        start, end = 0, start
    for what, value in (("start", start), ("end", end), ("step", step)):
        if not math.isfinite(number_arg(value, "arange", what)):
            raise ValueError(f"arange: {what} must be finite, got {value}")
    if step == 0 or (end - start) * step < 0:
        raise ValueError(f"arange: cannot go from {start} to {end} in steps of {step}")
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = DEFAULT_INT if ints else DEFAULT_FLOAT
    dtype = _counting_dtype(dtype, "arange")
    return Tensor._wrap(np.arange(start, end, step, dtype=dtype), None).requires_grad_(
        requires_grad)


def _counting_dtype(dtype, op):
    """The dtype of a function that counts or draws integers: any but bool (PyTorch has
    no bool arange, linspace, randint or randperm)."""
    dtype = as_dtype(dtype, op)
    if dtype.kind == "b":
        raise TypeError(f"{op}: dtype bool is not supported (as in PyTorch); make an "
                        "integer tensor and compare it")
    return dtype


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """`steps` evenly spaced values from `start` to `end`, both included (float32 by
    default). Computed as PyTorch does, from both ends towards the middle, so the last
    value is `end` exactly."""
    device_arg(device, "linspace")
    for what, value in (("start", start), ("end", end)):
        number_arg(value, "linspace", what)
    steps = int_arg(steps, "linspace", "steps", low=0)
    dtype = _counting_dtype(dtype, "linspace") if dtype is not None else DEFAULT_FLOAT
    i = np.arange(steps, dtype=np.float64)
    step = (end - start) / (steps - 1) if steps > 1 else 0.0
    values = np.where(i < steps // 2, start + i * step, end - (steps - 1 - i) * step)
    if steps == 1:
        values[0] = start                               # one value: the start, as PyTorch
    return Tensor._wrap(values.astype(dtype), None).requires_grad_(requires_grad)


# ---------------------------------------------------------------- random numbers

class Generator:
    """A source of random numbers with its own state, as `torch.Generator`.

    `Generator().manual_seed(2147483647)` returns the seeded generator, so it can be
    created and seeded in one expression. Its state can be saved and restored.
    """

    def __init__(self, seed=67280421310721):
        self._reseed(seed, "Generator")

    def manual_seed(self, seed):
        """Reset the state from an integer seed; returns the generator."""
        return self._reseed(seed, "manual_seed")

    def _reseed(self, seed, op):
        self._seed = int_arg(seed, op, "seed")
        # numpy takes seeds >= 0; a negative one is read modulo 2**64, as PyTorch does
        self.rng = np.random.Generator(np.random.PCG64(
            self._seed if self._seed >= 0 else self._seed % 2**64))
        return self

    def initial_seed(self):
        """The seed last given to `manual_seed`."""
        return self._seed

    def get_state(self):
        """The generator's state, a dict that `set_state` accepts (e.g. for a checkpoint)."""
        return self.rng.bit_generator.state

    def set_state(self, state):
        """Restore a state from `get_state`."""
        if not isinstance(state, dict):
            raise TypeError(f"set_state: expected a state from get_state() (a dict), "
                            f"got {shown(state)}")
        try:
            self.rng.bit_generator.state = state
        except (TypeError, ValueError, KeyError) as e:
            raise ValueError(f"set_state: not a state from get_state(): {e}") from None
        return self


default_generator = Generator()


def manual_seed(seed):
    """Seed the default generator, used when a random function gets no `generator`."""
    return default_generator.manual_seed(seed)


def _rng(generator, op):
    if generator is None:
        return default_generator.rng
    if not isinstance(generator, Generator):
        raise TypeError(f"{op}: generator must be a tensorgrad.Generator, got {shown(generator)}")
    return generator.rng


def _float_dtype(dtype, op):
    dtype = as_dtype(dtype, op) if dtype is not None else DEFAULT_FLOAT
    if dtype.kind != "f":
        raise TypeError(f"{op}: dtype must be a floating type (it draws floats), got {dtype}")
    return dtype


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Samples from the standard normal distribution, float32 by default."""
    device_arg(device, "randn")
    dtype = _float_dtype(dtype, "randn")
    data = _rng(generator, "randn").standard_normal(shape_arg("randn", size), dtype=np.float64)
    return Tensor._wrap(data.astype(dtype), None).requires_grad_(requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Samples from the uniform distribution on [0, 1), float32 by default."""
    device_arg(device, "rand")
    dtype = _float_dtype(dtype, "rand")
    data = _rng(generator, "rand").random(shape_arg("rand", size))
    return Tensor._wrap(data.astype(dtype), None).requires_grad_(requires_grad)


def randint(*args, size=None, generator=None, dtype=None, device=None):
    """Random integers in [low, high): `randint(high, size)` or `randint(low, high, size)`.

    `size` is a tuple, such as (32,), as in PyTorch: `randint(0, 5)` would otherwise read
    as high=0 and five draws.
    """
    device_arg(device, "randint")
    if size is not None:
        args = args + (size,)
    if len(args) == 2:
        args = (0,) + args
    if len(args) != 3:
        raise TypeError("randint: expected randint(high, size) or randint(low, high, size)")
    low, high, size = args
    low, high = int_arg(low, "randint", "low"), int_arg(high, "randint", "high")
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"randint: size must be a tuple of ints, such as (32,), got "
                        f"{shown(size)}")
    if high <= low:
        raise ValueError(f"randint: the range [{low}, {high}) is empty")
    size = shape_arg("randint", (size,))
    dtype = _counting_dtype(dtype, "randint") if dtype is not None else DEFAULT_INT
    data = _rng(generator, "randint").integers(low, high, size=size, dtype=np.int64)
    return Tensor._wrap(data.astype(dtype), None)


def randperm(n, generator=None, dtype=None, device=None, requires_grad=False):
    """The integers 0 .. n-1 in a random order (int64 by default)."""
    device_arg(device, "randperm")
    n = int_arg(n, "randperm", "n", low=0)
    dtype = _counting_dtype(dtype, "randperm") if dtype is not None else DEFAULT_INT
    data = _rng(generator, "randperm").permutation(n)
    return Tensor._wrap(data.astype(dtype), None).requires_grad_(requires_grad)


def multinomial(input, num_samples, replacement=False, generator=None):
    """Draw `num_samples` category indices per row, with probability proportional to `input`.

    `input` holds non-negative weights (they need not sum to 1), one row per distribution
    (1-D or 2-D). Without replacement a category is drawn at most once per row.
    """
    weights = as_array(input, op="multinomial").astype(np.float64)
    num_samples = int_arg(num_samples, "multinomial", "num_samples", low=1)
    if weights.ndim not in (1, 2):
        raise ValueError(f"multinomial: weights must be 1-D or 2-D, got shape {weights.shape}")
    rows = np.atleast_2d(weights)
    if (rows < 0).any() or not np.isfinite(rows).all():
        raise ValueError("multinomial: weights must be finite and non-negative")
    totals = rows.sum(axis=1, keepdims=True)
    if (totals <= 0).any():
        raise ValueError("multinomial: every row of weights needs a positive sum")
    if not replacement and num_samples > (rows > 0).sum(axis=1).min():
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without "
                         f"replacement from a row with {(rows > 0).sum(axis=1).min()} "
                         "categories of non-zero weight")
    rng = _rng(generator, "multinomial")
    draws = [rng.choice(rows.shape[1], size=num_samples, replace=replacement, p=p / t)
             for p, t in zip(rows, totals)]
    out = np.array(draws, dtype=DEFAULT_INT)
    return Tensor._wrap(out if weights.ndim == 2 else out[0], None)


__all__ = ["tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "zeros_like",
           "ones_like", "full_like", "arange", "linspace", "Generator", "default_generator",
           "manual_seed", "randn", "rand", "randint", "randperm", "multinomial", "as_array"]
