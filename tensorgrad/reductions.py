"""Tensor's reductions and the ops along a dim: sum, mean, var, std, max, min, argmax,
logsumexp, softmax, log_softmax, topk.

A mixin of `Tensor` (tensor.py): each method applies ops of the table to `self` through
`self._apply`, so this file needs nothing of tensor.py and the imports stay one-way.
"""
import math
from collections import namedtuple

import numpy as np

from . import ops
from .arrays import normalize_dim, normalize_dims
from .checks import correction_arg, int_arg

MaxResult = namedtuple("MaxResult", "values indices")
MinResult = namedtuple("MinResult", "values indices")
TopkResult = namedtuple("TopkResult", "values indices")


class Reductions:
    """Tensor's reductions and ops along a dim (see the module docstring)."""

    __slots__ = ()

    def _reduction_dims(self, dim, op):
        """The axes a reduction runs over. An empty tuple is refused: PyTorch reduces over
        every dimension for dim=(), numpy over none, so either reading surprises someone."""
        if isinstance(dim, (tuple, list)) and not dim:
            raise ValueError(f"{op}: dim={dim!r} is ambiguous (PyTorch reduces over every "
                             "dimension, numpy over none); pass dim=None for every dimension")
        return normalize_dims(dim, self.ndim, op)

    def sum(self, dim=None, keepdim=False, *, keepdims=None):
        """Sum over `dim` (an int, a tuple, or None for all); keepdims is an alias of keepdim."""
        keepdim = bool(keepdim if keepdims is None else keepdims)
        return self._apply(ops.Sum, dims=self._reduction_dims(dim, "sum"), keepdim=keepdim)

    def mean(self, dim=None, keepdim=False, *, keepdims=None):
        """Mean over `dim` (an int, a tuple, or None for all)."""
        keepdim = bool(keepdim if keepdims is None else keepdims)
        return self._float_only("mean")._apply(ops.Mean, dims=self._reduction_dims(dim, "mean"),
                     keepdim=keepdim)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None, keepdims=None):
        """Variance over `dim`, divided by n - correction (default 1: Bessel's correction).

        `unbiased=False` is `correction=0`, as in PyTorch.
        """
        return self._float_only("var")._apply(ops.Var, dims=self._reduction_dims(dim, "var"),
                     keepdim=bool(keepdim if keepdims is None else keepdims),
                     correction=correction_arg("var", unbiased, correction))[0]

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None, keepdims=None):
        """Standard deviation: the square root of `var` with the same arguments (its gradient
        is 0 where the deviation is 0, as in PyTorch)."""
        return self._float_only("std")._apply(ops.Std, dims=self._reduction_dims(dim, "std"),
                     keepdim=bool(keepdim if keepdims is None else keepdims),
                     correction=correction_arg("std", unbiased, correction))[0]

    def _extremum(self, op, result, dim, keepdim, keepdims):
        keepdim = bool(keepdim if keepdims is None else keepdims)
        if self._data.size == 0:
            raise ValueError(f"{op.name}: the tensor of shape {self.shape} is empty")
        if dim is None:
            return self._apply(op, dim=None, keepdim=False)
        axis = normalize_dim(dim, self.ndim, op.name)
        if self.ndim == 0:
            return result(self._apply(op, dim=None, keepdim=False), type(self)(0))
        values = self._apply(op, dim=axis, keepdim=keepdim)
        indices = op.pick(self._data, axis=axis, keepdims=keepdim)
        return result(values, type(self)._wrap(np.asarray(indices), None))

    def max(self, dim=None, keepdim=False, *, keepdims=None):
        """The largest element; with `dim`, a (values, indices) pair along that dim.

        The gradient flows to the element `indices` names (the first maximum) along a dim,
        and is split equally between tied maxima over the whole tensor.
        """
        return self._extremum(ops.Max, MaxResult, dim, keepdim, keepdims)

    def min(self, dim=None, keepdim=False, *, keepdims=None):
        """The smallest element; with `dim`, a (values, indices) pair. Ties as in `max`."""
        return self._extremum(ops.Min, MinResult, dim, keepdim, keepdims)

    def argmax(self, dim=None, keepdim=False):
        """Index of the (first) largest element, over all elements or along `dim`."""
        return self._position(np.argmax, "argmax", dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        """Index of the (first) smallest element, over all elements or along `dim`."""
        return self._position(np.argmin, "argmin", dim, keepdim)

    def _position(self, pick, name, dim, keepdim):
        """argmax or argmin (`pick`) over all elements, or along a checked `dim`."""
        self._not_bool(name)
        if self._data.size == 0:
            raise ValueError(f"{name}: the tensor of shape {self.shape} is empty")
        axis = None if dim is None else normalize_dim(dim, self.ndim, name)
        axis = axis if self.ndim else None               # dim 0 of a 0-d tensor: itself
        return type(self)._wrap(np.asarray(pick(self._data, axis=axis, keepdims=keepdim)), None)

    def logsumexp(self, dim, keepdim=False, *, keepdims=None):
        """log(sum(exp(x))) over `dim`, computed without overflow."""
        keepdim = bool(keepdim if keepdims is None else keepdims)
        return self._floating()._apply(ops.LogSumExp,
                     dims=self._reduction_dims(dim, "logsumexp"), keepdim=keepdim)

    def softmax(self, dim):
        """exp(x) / sum(exp(x)) along `dim`; each slice along `dim` sums to 1. The max is
        subtracted first (no overflow); a slice that is -inf but for one element gives 1
        there (a causal mask's first row), one that is all -inf gives NaN, as in PyTorch."""
        x, dim = self._along(dim, "softmax")
        # the max only shifts the exponents (softmax does not change), so it is taken
        # outside the graph: no max node that backward would skip and codegen could not
        # trace back to, just an op on values that generated code computes again
        shift = type(self)._wrap(x._data, None).max(dim, keepdim=True).values
        counts = (x - shift).exp()
        return counts / counts.sum(dim, keepdim=True)

    def log_softmax(self, dim):
        """log(softmax(x)) along `dim`, computed as (x - m) - log(sum(exp(x - m))) with m the
        max (outside the graph, as in softmax): no overflow, and for logits so large that
        adding log(sum) to m would lose it (|x| > 1e16), the log-sum survives, as in PyTorch."""
        x, dim = self._along(dim, "log_softmax")
        m = type(self)._wrap(x._data, None).max(dim, keepdim=True).values
        m = m.where(m.abs() < math.inf, 0)               # rows of -inf: no shift (tensor
        shifted = x - m                                  # ops, which generated code repeats)
        return shifted - shifted.exp().sum(dim, keepdim=True).log()

    def _along(self, dim, name):
        """The tensor (floating point) and the dim its probabilities run along, checked."""
        self._float_only(name)
        if dim is None:
            raise TypeError(f"{name}: say which dim the probabilities run along, e.g. "
                            f"{name}(x, dim=-1)")
        return self, normalize_dim(dim, self.ndim, name)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """The `k` largest elements along `dim` (smallest with largest=False), largest
        first: a (values, indices) pair. The gradient flows through the values to the
        elements they came from."""
        self._not_bool("topk")
        if self.ndim == 0:
            values, indices = self.reshape(1).topk(k, 0, largest, sorted)
            return TopkResult(values.reshape(()), indices.reshape(()))
        axis = normalize_dim(dim, self.ndim, "topk")
        k = int_arg(k, "topk", "k", low=0)
        if k > self.shape[axis]:
            raise ValueError(f"topk: k={k} is more than the {self.shape[axis]} elements "
                             f"along dim {dim} of a tensor of shape {self.shape}")
        keys = self._data.astype(np.float64) if self._data.dtype.kind == "u" else self._data
        order = np.argsort(-keys if largest else keys, axis=axis, kind="stable")
        indices = np.take(order, np.arange(k), axis=axis)
        return TopkResult(self.gather(axis, indices), type(self)._wrap(indices, None))
