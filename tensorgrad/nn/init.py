"""`torch.nn.init`: fill a tensor (a parameter, usually) in place, outside the graph.

Each function writes into the tensor's array, as PyTorch does under `no_grad`, and returns
the tensor. Random fills draw from the global generator (`tensorgrad.manual_seed`), or from
`generator=` when given. A graph that read the old values refuses to run backward after.
"""
import math

import numpy as np

from ..checks import number_arg, shown
from ..creation import rand, randn
from ..tensor import Tensor
from ..versions import note_inplace_change


def _write(tensor, values):
    """Copy `values` into `tensor`'s array (in its dtype); returns the tensor."""
    note_inplace_change(tensor._data)
    tensor._data[...] = values
    return tensor


def _floating(tensor, op):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(tensor).__name__}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"{op}: draws floats, but the tensor is {tensor.dtype}")
    return tensor


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with samples of the normal distribution N(mean, std**2)."""
    _floating(tensor, "normal_")
    mean = number_arg(mean, "normal_", "mean")
    std = number_arg(std, "normal_", "std", low=0)
    draws = randn(*tensor.shape, generator=generator, dtype=np.float64)._data
    return _write(tensor, draws * std + mean)


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with samples of the uniform distribution on [a, b)."""
    _floating(tensor, "uniform_")
    a, b = number_arg(a, "uniform_", "a"), number_arg(b, "uniform_", "b")
    if not a <= b:
        raise ValueError(f"uniform_: expected a <= b, got a={a} and b={b}")
    draws = rand(*tensor.shape, generator=generator, dtype=np.float64)._data
    return _write(tensor, draws * (b - a) + a)


def constant_(tensor, val):
    """Fill with the number `val`."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"constant_: expected a Tensor, got {type(tensor).__name__}")
    return _write(tensor, number_arg(val, "constant_", "val"))


def zeros_(tensor):
    """Fill with zeros."""
    return constant_(tensor, 0)


def ones_(tensor):
    """Fill with ones."""
    return constant_(tensor, 1)


def calculate_gain(nonlinearity, param=None):
    """The gain PyTorch recommends for a nonlinearity: 5/3 for tanh, sqrt(2) for relu,
    sqrt(2 / (1 + slope**2)) for leaky_relu (slope `param`, 0.01 by default), else 1."""
    if nonlinearity in ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else number_arg(param, "calculate_gain", "param")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unknown nonlinearity {shown(nonlinearity)}")


def _fans(tensor, op):
    """(fan_in, fan_out) of a weight (out_features, in_features, *kernel)."""
    if tensor.ndim < 2:
        raise ValueError(f"{op}: fan in and fan out need a tensor with at least 2 "
                         f"dimensions, got shape {tensor.shape}")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Uniform in +-gain * sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio, 2010)."""
    fan_in, fan_out = _fans(_floating(tensor, "xavier_uniform_"), "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Normal with std gain * sqrt(2 / (fan_in + fan_out)) (Glorot and Bengio, 2010)."""
    fan_in, fan_out = _fans(_floating(tensor, "xavier_normal_"), "xavier_normal_")
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(tensor, a, mode, nonlinearity, op):
    fan_in, fan_out = _fans(_floating(tensor, op), op)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{op}: mode must be 'fan_in' or 'fan_out', got {shown(mode)}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """Uniform in +-gain * sqrt(3 / fan) (He et al., 2015); with a=math.sqrt(5) it is
    nn.Linear's initialisation of its weight, uniform in +-1/sqrt(in_features)."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_")
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """Normal with std gain / sqrt(fan) (He et al., 2015)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_")
    return normal_(tensor, 0.0, std, generator)


__all__ = ["calculate_gain", "constant_", "kaiming_normal_", "kaiming_uniform_", "normal_",
           "ones_", "uniform_", "xavier_normal_", "xavier_uniform_", "zeros_"]
