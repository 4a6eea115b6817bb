"""Gradients of gradients: the backward pass recorded as a graph of its own.

`loss.backward(create_graph=True)` and `autograd.grad(..., create_graph=True)` run the same
backward loop as always (graph.backpropagate), with one difference: the gradients are
tensors instead of arrays, so every op of the backward pass records a node, and the
gradients can be differentiated again.

The gradient rules need not be written twice for that. The rules in ops.py are written for
numpy arrays (`g * out`, `np.where(out > 0, g, 0)`, `g.sum(axis=...)`); here they receive
`Recorded` values instead: tensors that answer numpy's calls (its operators, its methods,
its functions through `__array_ufunc__` and `__array_function__`) with tensor ops. The
same lines then record the ops they compute, so each op's second derivative comes from the
one rule it has, and the third from that, and so on.

What a rule reads becomes a tensor in the graph too: an input, with the node that made it;
the output, with the op's own node (so differentiating `g * out` through `out` runs exp's
rule once more); the values a forward computed on the side (var's x - mean), computed again
from the inputs by running the forward on `Recorded` inputs. A value that is not a function
of the inputs (a comparison's booleans, `argmax`, `sign`) stays a plain array: a constant.
"""
import numpy as np

from . import ops
from .arrays import normalize_dims
from .grad_mode import _keeping_grads, enable_grad
from .graph import backpropagate, deliver, rule_arguments, topological_order
from .tensor import Tensor, _binary, _constant, apply, unary


class Recorded:
    """A tensor dressed as a numpy array, for the op table's rules: what they compute on it
    is recorded in the graph. `t` is the tensor; an in-place change (`a[i] = v`,
    `np.add.at(a, i, v)`) makes `t` the tensor of the result."""

    __slots__ = ("t",)

    def __init__(self, t):
        self.t = t

    # ------------------------------------------------------------ what an array tells
    shape = property(lambda self: self.t.shape)
    ndim = property(lambda self: self.t.ndim)
    dtype = property(lambda self: self.t._data.dtype)
    size = property(lambda self: self.t._data.size)

    def __array__(self, dtype=None, copy=None):
        raise TypeError("a gradient recorded in the graph was handed to numpy code that has no "
                        "tensor version (see tensorgrad/higher.py); gradients of gradients are "
                        "not available through it")

    def __repr__(self):
        return f"Recorded({self.t!r})"

    # ------------------------------------------------------------ arithmetic
    def _op(self, op, other, reverse=False):
        a, b = (other, self) if reverse else (self, other)
        return Recorded(_binary(op, tensor_of(a), tensor_of(b)))

    __add__ = lambda self, o: self._op(ops.Add, o)              # noqa: E731
    __radd__ = lambda self, o: self._op(ops.Add, o, True)       # noqa: E731
    __sub__ = lambda self, o: self._op(ops.Sub, o)              # noqa: E731
    __rsub__ = lambda self, o: self._op(ops.Sub, o, True)       # noqa: E731
    __mul__ = lambda self, o: self._op(ops.Mul, o)              # noqa: E731
    __rmul__ = lambda self, o: self._op(ops.Mul, o, True)       # noqa: E731
    __truediv__ = lambda self, o: self._op(ops.Div, o)          # noqa: E731
    __rtruediv__ = lambda self, o: self._op(ops.Div, o, True)   # noqa: E731
    __pow__ = lambda self, o: self._op(ops.Pow, o)              # noqa: E731
    __rpow__ = lambda self, o: self._op(ops.Pow, o, True)       # noqa: E731
    __matmul__ = lambda self, o: self._op(ops.MatMul, o)        # noqa: E731
    __rmatmul__ = lambda self, o: self._op(ops.MatMul, o, True)  # noqa: E731

    def __neg__(self):
        return Recorded(unary(ops.Neg, self.t))

    # comparisons give constants: booleans have no gradient
    __eq__ = lambda self, o: values(self) == values(o)          # noqa: E731
    __ne__ = lambda self, o: values(self) != values(o)          # noqa: E731
    __lt__ = lambda self, o: values(self) < values(o)           # noqa: E731
    __le__ = lambda self, o: values(self) <= values(o)          # noqa: E731
    __gt__ = lambda self, o: values(self) > values(o)           # noqa: E731
    __ge__ = lambda self, o: values(self) >= values(o)          # noqa: E731
    __hash__ = object.__hash__

    # ------------------------------------------------------------ numpy's methods
    @property
    def T(self):
        return self.transpose()

    def sum(self, axis=None, keepdims=False):              # numpy's: axis=() sums nothing
        dims = normalize_dims(axis, self.ndim, "sum")
        return Recorded(apply(ops.Sum, self.t, dims=dims, keepdim=keepdims)) if dims else self

    def reshape(self, *shape):
        return Recorded(self.t.reshape(*shape))

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        axes = axes or tuple(reversed(range(self.ndim)))
        return Recorded(apply(ops.Permute, self.t, dims=tuple(int(a) for a in axes)))

    def swapaxes(self, a, b):
        return Recorded(self.t.transpose(a, b))

    def squeeze(self, axis=None):
        return Recorded(self.t.squeeze(axis))

    def astype(self, dtype):
        return Recorded(self.t.to(dtype))

    def copy(self):
        return Recorded(self.t.clone())

    def __getitem__(self, index):                     # numpy's reading of the index
        return Recorded(apply(ops.GetItem, self.t, index=index))

    def __setitem__(self, index, value):
        value = tensor_of(value, like=self.t).to(self.t.dtype)
        self.t = apply(ops.SetItem, self.t, value, index=index)

    # ------------------------------------------------------------ numpy's functions
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "at" and ufunc is np.add:        # np.add.at(a, index, values)
            target, index, value = inputs
            value = tensor_of(value, like=target.t).to(target.t.dtype)
            target.t = apply(ops.IndexAdd, target.t, value, index=index)
            return None
        if method == "reduce" and ufunc in _REDUCTIONS:   # np.add.reduce(h, axis=...) ...
            return _reduce(ufunc, *inputs, **kwargs)
        if method == "__call__" and not kwargs:
            op = ops.BY_UFUNC.get(ufunc)
            if op is not None and len(inputs) == 2:
                return Recorded(_binary(op, tensor_of(inputs[0]), tensor_of(inputs[1])))
            if op is not None:
                return Recorded(unary(op, inputs[0].t))
            if ufunc in _CONSTANT_UFUNCS:
                return ufunc(*map(values, inputs))
        called = ufunc.__name__ + ("" if method == "__call__" else f".{method}")
        raise NotImplementedError(f"numpy's {called} has no version on recorded gradients "
                                  "(tensorgrad/higher.py)")

    def __array_function__(self, func, types, args, kwargs):
        handler = _FUNCTIONS.get(func)
        if handler is None:
            raise NotImplementedError(f"numpy's {func.__name__} has no version on recorded "
                                      "gradients (tensorgrad/higher.py)")
        return handler(*args, **kwargs)


# ufuncs whose result has no gradient (a zero one, almost everywhere): computed on the values
_CONSTANT_UFUNCS = {np.sign, np.isfinite, np.isnan, np.isinf, np.equal, np.not_equal,
                    np.less, np.less_equal, np.greater, np.greater_equal, np.logical_and,
                    np.logical_or, np.logical_not, np.bitwise_and, np.bitwise_or, np.invert,
                    np.floor, np.ceil, np.trunc, np.rint}


def _reduce(ufunc, a, axis=0, keepdims=False):
    if ufunc is np.add:
        return a.sum(axis, keepdims)
    dims = normalize_dims(axis, a.ndim, ufunc.__name__)
    if len(dims) > 1 and len(dims) < a.ndim:
        raise NotImplementedError(f"numpy's {ufunc.__name__}.reduce over several (not all) "
                                  "axes has no version on recorded gradients")
    dim = None if len(dims) == a.ndim and a.ndim != 1 else dims[0]
    return Recorded(apply(_REDUCTIONS[ufunc], a.t, dim=dim, keepdim=keepdims))


_REDUCTIONS = {np.add: ops.Sum, np.maximum: ops.Max, np.minimum: ops.Min}


def values(x):
    """The numpy values of a Recorded value (a constant from here on), or `x` itself."""
    return x.t._data if isinstance(x, Recorded) else x


def tensor_of(x, like=None):
    """`x` as a Tensor: a Recorded value's tensor, or a constant (an array or a number; a
    number takes the dtype of the tensor `like`, as in arithmetic)."""
    if isinstance(x, Recorded):
        return x.t
    if isinstance(x, np.ndarray):
        return Tensor._wrap(x, None)
    return _constant(ops.Mul, x, like) if like is not None else x


def _where(condition, a, b):
    a_t, b_t = tensor_of(a), tensor_of(b)
    if not isinstance(a_t, Tensor):
        a_t = tensor_of(a, like=b_t)
    if not isinstance(b_t, Tensor):
        b_t = tensor_of(b, like=a_t)
    dtype = np.result_type(a_t._data.dtype, b_t._data.dtype)
    return Recorded(apply(ops.Where, a_t.to(dtype), b_t.to(dtype),
                          condition=np.asarray(values(condition), bool)))


def _expand_dims(a, axis):
    axes = normalize_dims(axis, a.ndim + (len(axis) if isinstance(axis, tuple) else 1),
                          "expand_dims")
    shape = list(a.shape)
    for ax in axes:
        shape.insert(ax, 1)
    return a.reshape(tuple(shape))


def _zeros_like(a, dtype=None, shape=None):
    shape = a.shape if shape is None else shape
    return Recorded(Tensor._wrap(np.zeros(shape, dtype or a.dtype), None))


def _put_along_axis(arr, indices, value, axis):
    """Into `arr` (zeros, in the rules), `value` at `indices` along `axis` (numpy's)."""
    index = list(np.indices(indices.shape, sparse=True))
    index[axis] = indices
    arr[tuple(index)] = value


def _concatenate(arrays, axis=0):
    return Recorded(apply(ops.Cat, *[tensor_of(a) for a in arrays], dim=axis))


_FUNCTIONS = {
    np.where: _where,
    np.expand_dims: _expand_dims,
    np.broadcast_to: lambda a, shape: Recorded(apply(ops.Expand, a.t, shape=tuple(shape))),
    np.reshape: lambda a, shape: a.reshape(shape),
    np.zeros_like: _zeros_like,
    np.put_along_axis: _put_along_axis,
    np.concatenate: _concatenate,
    np.roll: lambda a, shift, axis=None: Recorded(apply(ops.Roll, a.t, shifts=shift, dims=axis)),
    np.tril: lambda a, k=0: Recorded(apply(ops.Tril, a.t, diagonal=k)),
    np.triu: lambda a, k=0: Recorded(apply(ops.Triu, a.t, diagonal=k)),
    np.argmax: lambda a, axis=None: np.argmax(values(a), axis=axis),
    np.argmin: lambda a, axis=None: np.argmin(values(a), axis=axis),
    np.shape: lambda a: a.shape,
    np.ndim: lambda a: a.ndim,
}


# ---------------------------------------------------------------- the recorded backward pass

def recorded_rule(node, i, g):
    """Input i's gradient from `node`'s rule, run on Recorded values: recorded in the graph.

    The rule reads the node's kept inputs as tensors of the nodes that made them, its output
    as a tensor of the node itself, and the values its forward computed on the side as the
    forward computes them again from those inputs."""
    op = node.op
    inputs = tuple(None if a is None else Recorded(Tensor._wrap(a, p))
                   for a, p in zip(node.inputs, node.parents))
    out = Recorded(Tensor._wrap(node.out, node)) if node.out is not None else None
    extras = None
    if node.extras:
        _, *side = op.forward(*inputs, **node.attrs)
        extras = dict(zip(op.extras, side))
    rule = op.grads[0 if op.variadic else i]
    grad = rule(g, *rule_arguments(node, i, inputs, out, extras))
    return grad if isinstance(grad, Recorded) else Recorded(tensor_of(np.asarray(grad)))


def deliver_recorded(tensor, g):
    """Add a gradient recorded in the graph to `tensor.grad` (itself a tensor in the graph)."""
    if tensor is not None:
        g = g.t.to(tensor.dtype)
        tensor.grad = g if tensor.grad is None else tensor.grad + g


def run(roots, retain_graph, create_graph, only=None):
    """The backward pass from `roots` ({node: the gradient there, an array or a Tensor}),
    recorded in the graph with `create_graph`. Returns graph.backpropagate's {node:
    gradient} for the nodes of `only` (arrays, or Recorded values with `create_graph`)."""
    if not create_graph:
        return backpropagate(roots, retain_graph, only=only)
    with enable_grad():
        roots = {node: Recorded(g if isinstance(g, Tensor) else Tensor._wrap(g, None))
                 for node, g in roots.items()}
        got = backpropagate(roots, retain_graph, only=only, rule=recorded_rule,
                            store=deliver_recorded)
    if _keeping_grads[-1]:                  # keep_grads() kept each node's gradient: as values
        for node in {n for root in roots for n in topological_order(root)}:
            if isinstance(node.grad, Recorded):
                node.grad = node.grad.t._data
    return got


def backward_into(roots, retain_graph, create_graph, inputs, name):
    """`backward()` with `create_graph` or `inputs`: gradients added to `.grad`, of the
    tensors `inputs` only when given."""
    if inputs is None:
        run(roots, retain_graph, create_graph)
        return
    tensors = _differentiated(inputs, name)
    got = run(roots, retain_graph, create_graph, only={t._node for t in tensors})
    store = deliver_recorded if create_graph else deliver
    for t in tensors:
        if t._node in got:
            store(t, got[t._node])


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, materialize_grads=False):
    """The gradients of `outputs` with respect to `inputs`, returned (a tuple, one per
    input) rather than added to `.grad`: `torch.autograd.grad`.

    `grad_outputs` gives the gradient to start from for each output (default 1 for a single
    element). With `create_graph=True` the gradients are tensors in the graph, to be
    differentiated again. An input the outputs do not depend on is an error, unless
    `allow_unused=True` (its gradient is then None, or zeros with `materialize_grads`).
    """
    outputs = _as_list(outputs)
    tensors = _differentiated(inputs, "autograd.grad")
    given = _as_list(grad_outputs) if grad_outputs is not None else [None] * len(outputs)
    if len(given) != len(outputs):
        raise ValueError(f"autograd.grad: {len(outputs)} outputs but {len(given)} "
                         "grad_outputs")
    roots = {}
    for out, g in zip(outputs, given):
        node, g = out._initial_grad(g, "autograd.grad", create_graph)
        roots[node] = roots[node] + g if node in roots else g
    retain = create_graph if retain_graph is None else bool(retain_graph)
    got = run(roots, retain, create_graph, only={t._node for t in tensors})
    result = []
    for t in tensors:
        g = got.get(t._node)
        if g is None:
            if not (allow_unused or materialize_grads):
                raise RuntimeError("autograd.grad: an input was not used to compute the "
                                   "outputs (its gradient would be None); pass "
                                   "allow_unused=True if that is expected")
            result.append(Tensor._wrap(np.zeros_like(t._data), None) if materialize_grads
                          else None)
        elif create_graph:
            result.append(g.t.to(t.dtype))
        else:
            result.append(Tensor._wrap(np.array(g, t._data.dtype), None))
    return tuple(result)


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _differentiated(inputs, name):
    """The tensors to differentiate with respect to, each one that requires grad."""
    tensors = _as_list(inputs)
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: inputs must be tensors, got {type(t).__name__}")
        if t._node is None:
            raise RuntimeError(f"{name}: an input does not require grad (shape {t.shape}), "
                               "so it has no gradient; set requires_grad=True on it")
    return tensors
