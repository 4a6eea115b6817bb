"""Functions of tensors: the `tensorgrad.*` math functions and the neural-net functions of
`tensorgrad.nn.functional`.

Most are composites of Tensor methods: none of those has a backward of its own, so each is
differentiable by construction. The others are not: `cross_entropy`, `batch_norm` (training
mode) and `layer_norm` run on fused ops whose backward tensorgrad derives with sympy from
their forward, and `gelu` and `softplus` are defined by their formulas alone. Those ops live in
`tensorgrad.symbolic`, above this module in the import graph; `_symbolic()` fetches it on
first use, so `import tensorgrad` does not load sympy.
"""
import math
from collections import namedtuple

import numpy as np

from . import ops
from .arrays import DEFAULT_INT, count, normalize_dim
from .codegen.hooks import note_derived, note_effect
from .checks import index_range, int_arg, number_arg, shown
from .creation import rand
from .tensor import Tensor, apply, tensors_result_type, values_of, where as select


def _symbolic():
    """tensorgrad.symbolic, imported on first use (a lazy hook: it sits above this module
    and imports sympy). The fused ops it makes derive their backward once, then are cached."""
    if not _loaded:
        from . import symbolic
        _loaded.append(symbolic)
    return _loaded[0]


_loaded = []


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


def pow(input, exponent):
    """`input` to the power `exponent` (either may be a number)."""
    return input ** exponent if isinstance(input, Tensor) else _tensor(exponent, "pow").__rpow__(
        input)


def remainder(input, other):
    """input % other with the sign of `other` (Python's convention, as PyTorch)."""
    return input % other if isinstance(input, Tensor) else _tensor(other, "remainder").__rmod__(
        input)


def where(condition, input=None, other=None):
    """`input` where `condition` (a bool tensor) holds, `other` elsewhere; both tensors or
    numbers, the three shapes broadcast together. `where(condition)` alone gives the indices
    of the True elements, one int64 tensor per dimension."""
    if input is None and other is None:
        array = _tensor(condition, "where")._data
        return tuple(Tensor._wrap(i, None) for i in np.nonzero(array))
    return select(condition, input, other)


def tril(input, diagonal=0):
    """The lower triangle of the last two dimensions of `input`, zeros above `diagonal`."""
    return _tensor(input, "tril").tril(diagonal)


def triu(input, diagonal=0):
    """The upper triangle of the last two dimensions of `input`, zeros below `diagonal`."""
    return _tensor(input, "triu").triu(diagonal)


def roll(input, shifts, dims=None):
    """`input` shifted by `shifts` along `dims`, the elements wrapping around."""
    return _tensor(input, "roll").roll(shifts, dims)


def topk(input, k, dim=-1, largest=True, sorted=True):
    """The `k` largest (or smallest) elements along `dim`: a (values, indices) pair."""
    return _tensor(input, "topk").topk(k, dim, largest, sorted)


def gather(input, dim, index):
    """The elements of `input` that `index` picks along `dim` (see Tensor.gather)."""
    return _tensor(input, "gather").gather(dim, index)


def split(tensor, split_size_or_sections, dim=0):
    """`tensor` cut along `dim` into pieces (see Tensor.split)."""
    return _tensor(tensor, "split").split(split_size_or_sections, dim)


HistogramResult = namedtuple("HistogramResult", "hist bin_edges")


def histogram(input, bins=100, *, range=None, weight=None, density=False):
    """Counts of the values of `input` in `bins` equal bins between its smallest and largest
    value (or `range`), or between the edges in `bins` (a 1-D tensor): a (hist, bin_edges)
    pair of the input's float dtype, as `torch.histogram`. Outside the graph."""
    values = _tensor(input, "histogram")._data
    if values.dtype.kind != "f":
        raise TypeError(f"histogram: needs a floating-point tensor, got {values.dtype} (as "
                        "in PyTorch); convert with .float() first")
    if isinstance(bins, Tensor):
        bins = bins._data
    elif not isinstance(bins, np.ndarray):
        bins = int_arg(bins, "histogram", "bins", low=1)
    if weight is not None:
        weight = _tensor(weight, "histogram")._data
        if weight.shape != values.shape:
            raise ValueError(f"histogram: weight has shape {weight.shape} but input has "
                             f"{values.shape}")
    hist, edges = np.histogram(values, bins, range=range, weights=weight, density=density)
    return HistogramResult(Tensor._wrap(hist.astype(values.dtype), None),
                           Tensor._wrap(edges.astype(values.dtype), None))


def matmul(input, other):
    """Matrix product `input @ other`."""
    return _tensor(input, "matmul") @ other


def flatten(input, start_dim=0, end_dim=-1):
    """Merge dimensions start_dim..end_dim into one."""
    return _tensor(input, "flatten").flatten(start_dim, end_dim)


def cat(tensors, dim=0):
    """Join tensors along an existing dimension `dim`; they must agree in every other one."""
    tensors = _tensor_list(tensors, "cat")
    flat = next((k for k, t in enumerate(tensors) if t.ndim == 0), None)
    if flat is not None:
        raise ValueError(f"cat: the tensor at position {flat} is 0-d: it has no dimension to "
                         "join along (use stack)")
    axis = normalize_dim(dim, tensors[0].ndim, "cat")
    dtype = tensors_result_type(tensors)                # PyTorch's promotion: int + float
    return apply(ops.Cat, *(t.to(dtype) for t in tensors), dim=axis)    # is float


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new dimension `dim`."""
    tensors = _tensor_list(tensors, "stack")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors need the same shape, got {sorted(shapes)}")
    return cat([t.unsqueeze(dim) for t in tensors], dim)


def _class_indices(target, name, what):
    """Class indices as an int64 array, as PyTorch requires (uint8 too)."""
    if not isinstance(target, (Tensor, np.ndarray)):
        raise TypeError(f"{name}: {what} must be a tensor of class indices, got "
                        f"{type(target).__name__}")
    index = values_of(target)
    if index.dtype not in (np.int64, np.uint8):
        raise TypeError(f"{name}: {what} must be int64 class indices (as in PyTorch), got "
                        f"{index.dtype}; convert with .long()")
    return index


def _tensor_list(tensors, name):
    """A non-empty list or tuple of tensors (a single tensor is refused: it is not a list
    of its rows)."""
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{name}: expected a list or tuple of tensors, got "
                        f"{type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{name}: expected a non-empty list of tensors")
    return [_tensor(t, name) for t in tensors]


def all(input):
    """A bool tensor: whether every element of `input` is true (non-zero)."""
    return _tensor(input, "all").all()


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True if |input - other| <= atol + rtol * |other| everywhere (a Python bool)."""
    return bool(np.allclose(values_of(input), values_of(other), rtol, atol, equal_nan))


# ---------------------------------------------------------------- nn.functional

def linear(input, weight, bias=None):
    """input @ weight.T + bias: `weight` is (out_features, in_features) or, without a bias,
    (in_features,), `bias` (out_features,) or None, `input` (..., in_features). With a bias of
    that shape, and the three of one dtype, it runs as one op (`ops.Linear`), whose
    gradients are the same arrays as those of the matmul and the add it stands for."""
    input, weight = _tensor(input, "linear"), _tensor(weight, "linear")
    if input.ndim == 0 or weight.ndim not in (1, 2) or input.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input {input.shape} and weight {weight.shape}: the weight "
                         "is (out_features, in_features) or (in_features,), and the input's "
                         "last size is in_features")
    if bias is None:
        return input @ weight.T
    if weight.ndim == 1:
        raise ValueError(f"linear: a weight of shape {weight.shape} (one output) takes no bias, "
                         "as in PyTorch; give it the shape (1, in_features)")
    bias = _tensor(bias, "linear")
    if bias.shape != weight.shape[:1] or not input.dtype == weight.dtype == bias.dtype:
        return input @ weight.T + bias          # the general rules: broadcasting, dtypes
    return apply(ops.Linear, input, weight, bias)


def one_hot(tensor, num_classes=-1):
    """An int64 tensor with a trailing dimension of size `num_classes`: 1 at each index."""
    index = _class_indices(tensor, "one_hot", "indices")
    num_classes = int_arg(num_classes, "one_hot", "num_classes")
    if num_classes < -1:
        raise ValueError(f"one_hot: num_classes must be -1 (one more than the largest "
                         f"index) or at least 0, got {num_classes}")
    found = num_classes == -1
    if found:
        if not index.size:
            raise ValueError("one_hot: cannot tell the number of classes from an empty tensor; "
                             "pass num_classes")
        num_classes = max(int(index.max()) + 1, 0)
    index_range(index, num_classes, "one_hot", "indices")
    out = np.eye(num_classes, dtype=DEFAULT_INT)[index]
    if not found:                       # so generated code can build it again (found, its
        note_derived(out, "one_hot", index)     # shape would depend on the values)
    return Tensor._wrap(out, None)


def log_softmax(input, dim=None):
    """log(softmax(input)) along `dim`, computed as x - logsumexp(x) (no overflow)."""
    return _tensor(input, "log_softmax").log_softmax(dim)


def softmax(input, dim=None):
    """exp(x) / sum(exp(x)) along `dim`; each slice along `dim` sums to 1 (see
    Tensor.softmax for rows masked with -inf)."""
    return _tensor(input, "softmax").softmax(dim)


def cross_entropy(input, target, *, ignore_index=-100, reduction="mean"):
    """The negative log-likelihood of the `target` classes under softmax(`input`).

    `input` holds logits of shape (N, C); `target` the N class indices. `reduction` is
    'mean' (the default), 'sum' or 'none'. Runs on a fused op whose backward,
    (softmax(input) - one_hot(target)) / N for 'mean', is derived from this forward by
    `tensorgrad.symbolic` (exercise 2 of the lecture, solved by the engine).

    Rows whose target is `ignore_index` (makemore pads words with -1) count for nothing:
    'mean' averages over the other rows (NaN if there are none, as in PyTorch), 'none'
    gives them a loss of 0, and none of them gets a gradient.
    """
    input = _tensor(input, "cross_entropy")
    if input.ndim != 2:
        raise ValueError(f"cross_entropy: expected logits of shape (N, C), got {input.shape}")
    if 0 in input.shape:
        raise ValueError(f"cross_entropy: logits of shape {input.shape} are empty: a batch "
                         "needs at least one row and one class")
    index = _class_indices(target, "cross_entropy", "target")
    if index.shape != input.shape[:1]:
        raise ValueError(f"cross_entropy: {input.shape[0]} rows of logits but target has "
                         f"shape {index.shape}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', "
                         f"got {reduction!r}")
    ignore_index = int_arg(ignore_index, "cross_entropy", "ignore_index")
    logits = input._floating()
    if not (index == ignore_index).any():          # the common case: the fused op alone
        return _fused_cross_entropy(logits, index, reduction)
    # Some rows are ignored: each row's loss from the fused op (an ignored target read as
    # class 0), weighted by whether it counts. Written with tensor ops, not numpy, so that
    # generated code computes the weights again from each batch's targets.
    target = Tensor._wrap(index, None) if not isinstance(target, Tensor) else target
    kept = target != ignore_index                                     # (N,) bools
    losses = _fused_cross_entropy(logits, select(kept, target, 0)._data, "none") * kept
    if reduction == "none":
        return losses
    total = losses.sum()
    if reduction == "sum":
        return total
    n = kept.sum()
    return select(n == 0, math.nan, total / (n + (n == 0)))  # no row kept: NaN, gradient 0


def _fused_cross_entropy(logits, index, reduction):
    """The fused op on logits (N, C) and class indices `index`, all in [0, C)."""
    index_range(index, logits.shape[1], "cross_entropy", "target classes")
    one_hot = np.zeros(logits.shape, logits.dtype)             # (N, C), in the logits' dtype
    one_hot[np.arange(len(index)), index] = 1
    note_derived(one_hot, "one_hot", index)        # so generated code can build it again
    op = _symbolic().builtin_op("cross_entropy_" + reduction)
    return op(logits, Tensor._wrap(one_hot, None))


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation of `input` (N, C), or (N, L, C) normalised over N and L.

    Features come last, as in `nn.BatchNorm1d` here. Training mode normalises with the
    batch mean and the Bessel-corrected batch variance (divided by n - 1, as the lecture
    does; PyTorch divides by n) on a fused op whose backward is derived from this forward
    (exercise 3 of the lecture), and updates `running_mean` and `running_var` in place when
    given. Evaluation mode normalises with the running statistics.
    """
    input = _tensor(input, "batch_norm")
    if input.ndim not in (2, 3):
        raise ValueError(f"batch_norm: expected input (N, C) or (N, L, C), got {input.shape}")
    dims = tuple(range(input.ndim - 1))
    x = input._floating()
    features = (x.shape[-1],)
    _check_per_feature(x.shape, running_mean=running_mean, running_var=running_var,
                       weight=weight, bias=bias)
    number_arg(eps, "batch_norm", "eps", low=0)
    if training:
        if count(x.shape, dims) < 2:
            raise ValueError(f"batch_norm: training needs more than one value per feature "
                             f"to compute a variance, got input {x.shape}")
        for name, stat in (("running_mean", running_mean), ("running_var", running_var)):
            if stat is not None and not isinstance(stat, Tensor):
                raise TypeError(f"batch_norm: {name} must be a Tensor (training updates it "
                                f"in place), got {type(stat).__name__}")
        number_arg(momentum, "batch_norm", "momentum", low=0, high=1)
        weight = Tensor(np.ones(features, x.dtype)) if weight is None else weight
        bias = Tensor(np.zeros(features, x.dtype)) if bias is None else bias
        steps = {}
        out = _symbolic().builtin_op("batch_norm")(x, weight, bias, eps=eps, dim=dims,
                                                   saved=steps)
        if running_mean is not None and running_var is not None:
            _update_running_stats(steps, running_mean, running_var, momentum)
            note_effect(_update_running_stats, out._data, running_mean, running_var, momentum)
        return out
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
    out = (x - running_mean) * (running_var + eps) ** -0.5
    out = out * weight if weight is not None else out
    return out + bias if bias is not None else out


def _check_per_feature(shape, **given):
    """Each of `given` that is not None holds one value per feature: the input's last size,
    as (C,) (or (1, C), the lecture's bngain)."""
    features = shape[-1]
    for name, value in given.items():
        if value is None:
            continue
        size = value.shape if isinstance(value, Tensor) else np.shape(value)
        if size != (features,) and (size[-1:] != (features,) or math.prod(size) != features):
            raise ValueError(f"batch_norm: {name} has shape {size} but the input {shape} has "
                             f"{features} features")


def _update_running_stats(steps, running_mean, running_var, momentum):
    """running = (1 - momentum) * running + momentum * batch statistic, in place, from the
    batch mean and variance the fused op computed (`steps`: what its forward saved)."""
    m = momentum
    for running, batch in ((running_mean._data, steps["bnmeani"]), (running_var._data,
                                                                   steps["bnvar"])):
        running *= 1 - m
        running += m * batch.reshape(-1)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalisation over the last dimensions of `input` (those of `normalized_shape`):
    each row minus its mean, over the square root of its biased variance (divided by n, as
    PyTorch does) plus `eps`, then times `weight` and plus `bias` (both of
    `normalized_shape`, or None). Runs on a fused op whose backward is derived from this
    forward (`tensorgrad.symbolic.derivation("layer_norm")`).
    """
    input = _tensor(input, "layer_norm")
    shape = _normalized_shape(normalized_shape, "layer_norm")
    if input.ndim < len(shape) or input.shape[input.ndim - len(shape):] != shape:
        raise ValueError(f"layer_norm: normalized_shape={shape} must be the last dimensions "
                         f"of the input, got input {input.shape}")
    for name, value in (("weight", weight), ("bias", bias)):
        size = value.shape if isinstance(value, Tensor) else np.shape(value)
        if value is not None and size != shape:
            raise ValueError(f"layer_norm: {name} has shape {size}, expected "
                             f"normalized_shape {shape}")
    number_arg(eps, "layer_norm", "eps", low=0)
    x = input._floating()
    weight = Tensor(np.ones(shape, x.dtype)) if weight is None else weight
    bias = Tensor(np.zeros(shape, x.dtype)) if bias is None else bias
    dims = tuple(range(-len(shape), 0))
    return _symbolic().builtin_op("layer_norm")(x, weight, bias, eps=eps, dim=dims)


def _normalized_shape(shape, name):
    """`normalized_shape` (an int or a sequence of ints, each at least 1) as a tuple."""
    shape = (shape,) if not isinstance(shape, (tuple, list)) else tuple(shape)
    if not shape:
        raise ValueError(f"{name}: normalized_shape must name at least one dimension, got ()")
    return tuple(int_arg(s, name, "normalized_shape", low=1) for s in shape)


def dropout(input, p=0.5, training=True, inplace=False):
    """In training, each element zeroed with probability `p`, the others scaled by
    1/(1 - p); otherwise `input` itself. The mask comes from the global generator
    (`tensorgrad.manual_seed`); the gradient flows through the same mask and scale, as a
    product with a constant. `inplace` is accepted and computes out of place."""
    input = _tensor(input, "dropout")
    p = number_arg(p, "dropout", "p (the probability of zeroing an element)", low=0, high=1)
    if not isinstance(training, bool):
        raise TypeError(f"dropout: training must be True or False, got {shown(training)}")
    if not training or p == 0:
        return input
    x = input._float_only("dropout")
    if p == 1:                                              # every element zeroed
        return x * Tensor._wrap(np.zeros((), x.dtype), None)
    keep = rand(*x.shape, dtype=np.float64)._data >= p     # kept with probability 1 - p
    return x * Tensor._wrap((keep * (1 / (1 - p))).astype(x.dtype), None)


def gelu(input, approximate="none"):
    """GELU, x * Phi(x) for each element; approximate='tanh' for the tanh approximation.

    Defined by its formula in `tensorgrad.symbolic`; its gradient is derived with sympy.
    """
    return _symbolic().gelu(_tensor(input, "gelu"), approximate)


def softplus(input):
    """log(1 + exp(x)) for each element, without overflow; its gradient is derived."""
    return _symbolic().softplus(_tensor(input, "softplus"))
