"""tensorgrad: a small, readable tensor autodiff engine on numpy.

    import tensorgrad as torch
    import tensorgrad.nn.functional as F

runs PyTorch-style code (the makemore lecture's, in particular) on tensorgrad. The layers,
one-way, each importing only those before it:

    checks      argument checks shared by public functions  plain Python
    arrays      broadcasting helpers (unbroadcast)          plain numpy
    ops         the op table: forward and gradient rules    plain numpy
    autograd    graph nodes, no_grad, the backward pass
    tensor      Tensor and `apply`
    creation    tensor(), zeros(), randn(), Generator ...
    functional  exp(), cat(), softmax(), cross_entropy() ...
    nn, optim   layers, nn.functional, optimizers
    symbolic    gradients derived with sympy (not imported here: `from tensorgrad import
                symbolic`; functional fetches its fused ops from it on first use)
    data        the names data set and dataset builders
"""
import numpy as _np

from .autograd import AnomalyWarning, detect_anomaly, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .creation import (Generator, arange, as_tensor, default_generator, from_numpy, full,
                       full_like, manual_seed, multinomial, ones, ones_like, rand, randint,
                       randn, tensor, zeros, zeros_like)
from .functional import (all, allclose, cat, exp, flatten, log, matmul, relu, sigmoid, sqrt,
                         stack, tanh)
from .tensor import Tensor
from . import nn, optim

float32 = _np.dtype(_np.float32)
float64 = _np.dtype(_np.float64)
int64 = _np.dtype(_np.int64)
long = int64
bool = _np.dtype(_np.bool_)

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "zeros_like",
    "ones_like", "full_like", "arange", "randn", "rand", "randint", "multinomial",
    "Generator", "default_generator", "manual_seed", "no_grad", "enable_grad", "set_grad_enabled",
    "is_grad_enabled", "detect_anomaly", "AnomalyWarning", "exp", "log", "tanh", "sqrt", "sigmoid", "relu", "matmul", "flatten",
    "cat", "stack", "all", "allclose", "float32", "float64", "int64", "long", "bool", "nn", "optim",
]
