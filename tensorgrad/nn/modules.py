"""Layers with parameters, in PyTorch's shapes and names.

A Module finds its parameters by looking at its attributes: leaf tensors that require grad
are parameters, Modules (and lists of Modules) are children, and the names listed in
`buffers` are state that is saved but not trained (batchnorm's running statistics).
"""
import math

import numpy as np

from ..versions import note_inplace_change
from ..checks import checked_state, index_range, int_arg, number_arg, shown
from ..creation import ones, rand, randn, zeros
from ..functional import _tensor, batch_norm
from ..tensor import Tensor


class Module:
    """Base class: parameters, train/eval mode, state dict. Subclasses define `forward`."""

    buffers = ()
    training = True

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}: forward() is not defined; a "
                                  "subclass of Module defines forward()")

    def children(self):
        """(name, module) for each direct sub-module, in attribute order."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                yield from ((f"{name}.{i}", m) for i, m in enumerate(value)
                            if isinstance(m, Module))

    def named_parameters(self, prefix=""):
        """(dotted name, tensor) for every parameter of this module and its children.

        A tensor held by two modules (tied weights) is listed once, under its first name,
        as in PyTorch: an optimizer given it twice would update it twice per step.
        """
        seen = set()
        for name, p in self._all_parameters(prefix):
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def _all_parameters(self, prefix):
        for name, value in vars(self).items():
            if isinstance(value, Tensor) and value.requires_grad and value.is_leaf:
                yield prefix + name, value
        for name, child in self.children():
            yield from child._all_parameters(f"{prefix}{name}.")

    def parameters(self):
        """Every parameter, as a list."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        """(dotted name, tensor) for every buffer (saved state that is not trained)."""
        for name in self.buffers:
            yield prefix + name, getattr(self, name)
        for name, child in self.children():
            yield from child.named_buffers(f"{prefix}{name}.")

    def train(self, mode=True):
        """Set training mode (batch statistics in batchnorm) here and in all children."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be True or False, got {shown(mode)}")
        self.training = mode
        for _, child in self.children():
            child.train(mode)
        return self

    def eval(self):
        """Set evaluation mode (running statistics in batchnorm)."""
        return self.train(False)

    def zero_grad(self):
        """Forget the gradients of all parameters (set them to None)."""
        for p in self.parameters():
            p.grad = None

    def state_dict(self):
        """Every parameter and buffer by dotted name, as numpy arrays (copies)."""
        items = list(self.named_parameters()) + list(self.named_buffers())
        return {name: t._data.copy() for name, t in items}

    def load_state_dict(self, state):
        """Copy arrays from `state` into the parameters and buffers; names and shapes must
        match (all are checked before any is copied)."""
        own = dict(self.named_parameters()) | dict(self.named_buffers())
        for name, value in checked_state(state, own, "model").items():
            note_inplace_change(own[name]._data)     # a graph that read the old value
            own[name]._data[...] = value              # must not run backward with the new

    def __repr__(self):
        inner = "".join(f"\n  ({name}): " + repr(child).replace("\n", "\n  ")
                        for name, child in self.children())
        return f"{type(self).__name__}({self.extra_repr()}{inner}{chr(10) if inner else ''})"

    def extra_repr(self):
        return ""


class Linear(Module):
    """y = x @ weight.T + bias, weight of shape (out_features, in_features), as PyTorch.

    Initialised uniformly in +-1/sqrt(in_features), as PyTorch does.
    """

    def __init__(self, in_features, out_features, bias=True, generator=None):
        in_features = int_arg(in_features, "Linear", "in_features", low=0)
        out_features = int_arg(out_features, "Linear", "out_features", low=0)
        bound = 1 / math.sqrt(in_features) if in_features else 0.0
        self.weight = _uniform((out_features, in_features), bound, generator)
        self.bias = _uniform((out_features,), bound, generator) if bias else None

    def forward(self, x):
        x = _tensor(x, "Linear")
        if x.shape[-1:] != self.weight.shape[1:]:
            raise ValueError(f"Linear: expected input of shape (..., {self.weight.shape[1]}) "
                             f"(in_features={self.weight.shape[1]}), got {x.shape}")
        out = x @ self.weight.T
        return out + self.bias if self.bias is not None else out

    def extra_repr(self):
        out_features, in_features = self.weight.shape
        return f"{in_features}, {out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: row i of `weight` (num_embeddings, embedding_dim) for index i."""

    def __init__(self, num_embeddings, embedding_dim, generator=None):
        self.weight = randn(int_arg(num_embeddings, "Embedding", "num_embeddings", low=0),
                            int_arg(embedding_dim, "Embedding", "embedding_dim", low=0),
                            generator=generator, requires_grad=True)

    def forward(self, idx):
        index = idx._data if isinstance(idx, Tensor) else np.asarray(idx)
        if index.dtype.kind not in "iu":
            raise TypeError(f"Embedding: indices must be integers, got {index.dtype}")
        # PyTorch refuses a negative index; numpy would read it from the end
        index_range(index, self.weight.shape[0], "Embedding", "indices")
        return self.weight[idx]

    def extra_repr(self):
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}"


class BatchNorm1d(Module):
    """Normalise each feature over the batch, then scale by `weight` and shift by `bias`.

    Training mode uses the batch's mean and its Bessel-corrected variance (divided by n-1,
    as the lecture does) and updates the running statistics with `momentum`; eval mode
    uses the running statistics. Input (N, C), or (N, L, C) normalised over N and L.
    Runs on `functional.batch_norm`, whose training-mode backward is derived with sympy.
    """

    buffers = ("running_mean", "running_var")

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        num_features = int_arg(num_features, "BatchNorm1d", "num_features", low=0)
        if momentum is None:
            raise TypeError("BatchNorm1d: momentum must be a number in [0, 1]; the cumulative "
                            "average of momentum=None is not supported")
        self.eps = number_arg(eps, "BatchNorm1d", "eps", low=0)
        self.momentum = number_arg(momentum, "BatchNorm1d", "momentum", low=0, high=1)
        self.weight = ones(num_features, requires_grad=True)
        self.bias = zeros(num_features, requires_grad=True)
        self.running_mean = zeros(num_features)
        self.running_var = ones(num_features)

    def forward(self, x):
        x = _tensor(x, "BatchNorm1d")
        if x.ndim not in (2, 3) or x.shape[-1] != self.weight.shape[0]:
            raise ValueError(f"BatchNorm1d: expected input (N, {self.weight.shape[0]}) or "
                             f"(N, L, {self.weight.shape[0]}), got {x.shape}")
        if self.training and math.prod(x.shape[:-1]) < 2:
            raise ValueError(f"BatchNorm1d: training needs more than one value per "
                             f"feature to compute a variance, got input {x.shape}")
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          training=self.training, momentum=self.momentum, eps=self.eps)

    def extra_repr(self):
        return f"{self.weight.shape[0]}, eps={self.eps}, momentum={self.momentum}"


class Tanh(Module):
    """tanh, elementwise."""

    def forward(self, x):
        return _tensor(x, "Tanh").tanh()


class Flatten(Module):
    """Merge dimensions start_dim..end_dim (by default all but the batch dimension)."""

    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return _tensor(x, "Flatten").flatten(self.start_dim, self.end_dim)


class Sequential(Module):
    """Layers applied one after another."""

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                hint = ("; pass the layers as separate arguments, Sequential(*layers)"
                        if isinstance(layer, (list, tuple)) else "")
                raise TypeError(f"Sequential: layer {i} is a {type(layer).__name__}, not a "
                                f"Module{hint}")
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def children(self):
        """The layers, named by their position ("0", "1", ...), as PyTorch names them."""
        return ((str(i), layer) for i, layer in enumerate(self.layers))

    def __getitem__(self, i):
        try:
            return self.layers[i]
        except IndexError:
            raise IndexError(f"Sequential: index {i} is out of range for "
                             f"{len(self.layers)} layers") from None
        except TypeError:
            raise TypeError(f"Sequential: index must be an int or a slice, got "
                            f"{shown(i)}") from None

    def __len__(self):
        return len(self.layers)


def _uniform(shape, bound, generator):
    return (rand(*shape, generator=generator) * (2 * bound) - bound).requires_grad_()
