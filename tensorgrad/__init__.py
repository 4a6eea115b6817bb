"""tensorgrad: a small, readable tensor autodiff engine on numpy.

    import tensorgrad as torch
    import tensorgrad.nn.functional as F

runs PyTorch-style code (the makemore lecture's, in particular) on tensorgrad. The layers,
one-way, each importing only those before it:

    checks      argument checks shared by public functions  plain Python
    devices     torch.device: the CPU, the one device there is
    arrays      unbroadcast, type promotion, indexing       plain numpy
    ops         the op table: forward and gradient rules    plain numpy
    grad_mode   no_grad, keep_grads, anomaly mode
    versions    in-place changes and shared memory
    graph       the Node and the backward pass
    reductions, movement  two groups of Tensor's methods, as mixins (they apply ops
                through `self`, importing nothing above the op table)
    tensor      Tensor and `apply`
    higher      gradients of gradients: the op table's rules run on tensors
    source      the op table's rules written out as code
    autograd    torch.autograd's names over the engine
    cuda        torch.cuda on a machine without a GPU: is_available() is False
    creation    tensor(), zeros(), randn(), Generator ...
    functional  exp(), cat(), softmax(), cross_entropy() ...
    nn, optim   layers, nn.functional, optimizers
    serialization  save() and load(): safetensors files, no pickle
    utils       torch.utils's data (DataLoader ...) and tensorboard (SummaryWriter)
    symbolic    gradients derived with sympy (not imported here: `from tensorgrad import
                symbolic`; functional fetches its fused ops from it on first use)
    data        the names data set and dataset builders
"""
import numpy as _np

from .grad_mode import (AnomalyWarning, detect_anomaly, enable_grad, inference_mode,
                        is_grad_enabled, no_grad, set_grad_enabled)
from .devices import device
from .creation import (Generator, arange, as_tensor, default_generator, empty, from_numpy, full,
                       full_like, linspace, manual_seed, multinomial, ones, ones_like, rand,
                       randint, randn, randperm, tensor, zeros, zeros_like)
from .functional import (all, allclose, cat, exp, flatten, gather, histogram, log,
                         log_softmax, matmul, pow, relu, remainder, roll, sigmoid, softmax,
                         split, sqrt, stack, tanh, topk, tril, triu, where)
from .tensor import Tensor
from .serialization import load, save
from . import autograd, cuda, nn, optim, utils

# dtypes, by PyTorch's names (numpy dtypes: `tensor.dtype == tensorgrad.float32`)
float16 = half = _np.dtype(_np.float16)
float32 = float = _np.dtype(_np.float32)
float64 = double = _np.dtype(_np.float64)
uint8 = _np.dtype(_np.uint8)
int8 = _np.dtype(_np.int8)
int16 = short = _np.dtype(_np.int16)
int32 = int = _np.dtype(_np.int32)
int64 = long = _np.dtype(_np.int64)
bool = _np.dtype(_np.bool_)

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "zeros_like",
    "ones_like", "full_like", "arange", "randn", "rand", "randint", "multinomial",
    "Generator", "default_generator", "manual_seed", "no_grad", "enable_grad", "set_grad_enabled",
    "is_grad_enabled", "detect_anomaly", "AnomalyWarning", "exp", "log", "tanh", "sqrt", "sigmoid", "relu", "matmul", "flatten",
    "cat", "stack", "all", "allclose",
    "empty", "linspace", "randperm", "device", "cuda", "inference_mode", "where", "tril",
    "triu", "roll", "topk", "gather", "split", "remainder", "pow", "histogram", "softmax",
    "log_softmax", "float16", "half", "float32", "float", "float64", "double",
    "uint8", "int8", "int16", "short", "int32", "int", "int64", "long", "bool", "nn", "optim",
    "save", "load", "utils", "autograd",
]
