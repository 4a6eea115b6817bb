"""Layers with parameters, in PyTorch's shapes and names.

A Module finds its parameters by looking at its attributes: leaf tensors that require grad
are parameters (`nn.Parameter` makes one), Modules (and lists of Modules) are children, and
the tensors named with `register_buffer` are buffers, state that is saved but not trained
(batchnorm's running statistics, a causal mask). Names are dotted paths, as PyTorch's:
`blocks.0.sa.heads.1.key.weight`.
"""
import math

import numpy as np

from ..devices import device, device_arg
from ..versions import note_inplace_change, note_sharing
from ..checks import as_dtype, checked_state, index_range, int_arg, number_arg, shown
from ..codegen.hooks import note_effect
from ..creation import ones, rand, randn, tensor, zeros
from ..functional import (_normalized_shape, _tensor, batch_norm, dropout, gelu, layer_norm,
                          linear)
from ..grad_mode import module_call
from ..tensor import Tensor


class _ParameterType(type):
    """`isinstance(t, nn.Parameter)` holds for what a Module counts as a parameter: a leaf
    tensor that requires grad."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.is_leaf and obj.requires_grad


class Parameter(metaclass=_ParameterType):
    """`nn.Parameter(data)`: a leaf tensor sharing `data`'s values that requires grad. Set
    as a Module attribute, it is one of the module's parameters.

    The result is a plain Tensor: in tensorgrad any leaf tensor that requires grad is a
    parameter, so there is nothing more to mark (`isinstance(p, nn.Parameter)` is True for
    each of them).
    """

    def __new__(cls, data=None, requires_grad=True):
        if not requires_grad:
            raise ValueError("Parameter: requires_grad=False would make a plain tensor, which "
                             "a Module does not list among its parameters; use "
                             "register_buffer for state that is not trained")
        data = zeros(0) if data is None else _tensor(data, "Parameter")
        t = Tensor._wrap(data._data, None)
        note_sharing(data._data, data, t)
        return t.requires_grad_()


class Module:
    """Base class: parameters, buffers, children, train/eval mode, state dict. Subclasses
    define `forward`."""

    training = True

    def __call__(self, *args, **kwargs):
        enclosing = module_call[0]
        module_call[0] = (self, enclosing)      # the ops forward records note this call
        try:
            return self.forward(*args, **kwargs)
        finally:
            module_call[0] = enclosing

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}: forward() is not defined; a "
                                  "subclass of Module defines forward()")

    # ------------------------------------------------------------ what a module holds

    def named_children(self):
        """(name, module) for each direct sub-module, in the order they were set."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                yield from ((f"{name}.{i}", m) for i, m in enumerate(value)
                            if isinstance(m, Module))

    def children(self):
        """Each direct sub-module."""
        return (module for _, module in self.named_children())

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module ('') and every module below it, parents
        before children; a module reachable by two paths is listed once, under the first."""
        seen, stack = set(), [(prefix, self)]
        while stack:                # an explicit stack: no recursion, however deep
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            below = [(f"{name}.{k}" if name else k, m) for k, m in module.named_children()]
            stack.extend(reversed(below))

    def modules(self):
        """This module and every module below it."""
        return (module for _, module in self.named_modules())

    def _own_parameters(self):
        buffers = self._buffer_flags()
        for name, value in vars(self).items():
            if isinstance(value, Parameter) and name not in buffers:
                yield name, value

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, tensor) for every parameter of this module and its children.

        A tensor held by two modules (tied weights) is listed once, under its first name,
        as in PyTorch: an optimizer given it twice would update it twice per step.
        """
        seen = set()
        for path, module in self.named_modules(prefix) if recurse else [(prefix, self)]:
            for name, p in module._own_parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield _dotted(path, name), p

    def parameters(self, recurse=True):
        """Every parameter, as a list."""
        return [p for _, p in self.named_parameters(recurse=recurse)]

    def register_buffer(self, name, tensor, persistent=True):
        """Keep `tensor` as attribute `name`: state that moves with the module (`to`) and,
        if `persistent`, is saved in `state_dict`, but is not a parameter (not trained)."""
        if not isinstance(name, str) or not name.isidentifier():
            raise KeyError(f"register_buffer: the name must be an identifier (no dots), got "
                           f"{shown(name)}")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name} must be a Tensor or None, got "
                            f"{type(tensor).__name__}")
        if name not in self._buffer_flags() and (name in vars(self) or hasattr(type(self), name)):
            raise KeyError(f"register_buffer: attribute {name!r} already exists and is not "
                           "a buffer")
        self.__dict__.setdefault("_buffers", {})[name] = bool(persistent)
        setattr(self, name, tensor)

    def _buffer_flags(self):
        """{buffer name: persistent} for the buffers registered on this module."""
        return vars(self).get("_buffers", {})

    def named_buffers(self, prefix="", recurse=True):
        """(dotted name, tensor) for every buffer (state that is not trained)."""
        for path, module in self.named_modules(prefix) if recurse else [(prefix, self)]:
            for name in module._buffer_flags():
                value = getattr(module, name)
                if value is not None:
                    yield _dotted(path, name), value

    def buffers(self, recurse=True):
        """Every buffer, as a list."""
        return [b for _, b in self.named_buffers(recurse=recurse)]

    # ------------------------------------------------------------ changing all of them

    def apply(self, fn):
        """Call `fn(module)` on every module below this one, then on this one (children
        first, as PyTorch does: `model.apply(init_weights)`); returns self."""
        stack = [(self, False)]
        while stack:
            module, visited = stack.pop()
            if visited:
                fn(module)
                continue
            stack.append((module, True))
            stack.extend((child, False) for child in reversed(list(module.children())))
        return self

    def train(self, mode=True):
        """Set training mode (batch statistics in batchnorm, dropout on) here and in all
        children."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be True or False, got {shown(mode)}")
        for module in self.modules():
            module.training = mode
        return self

    def eval(self):
        """Set evaluation mode (running statistics in batchnorm, dropout off)."""
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Forget the gradients of all parameters: set them to None (or to zeros)."""
        zero_grads(self.parameters(), set_to_none)

    def to(self, *args, **kwargs):
        """Cast the floating-point parameters and buffers to a floating dtype, in place
        (the same tensor objects, as an optimizer holds them); returns self.

        Devices: 'cpu' is accepted (nothing moves: numpy computes on the CPU); any other is
        refused. `to(device)`, `to(dtype)`, `to(device, dtype)` and keywords, as PyTorch.
        """
        dtype = None
        for value in list(args) + [kwargs.pop("device", None), kwargs.pop("dtype", None)]:
            if value is None:
                continue
            if isinstance(value, (str, device)):
                device_arg(value, "Module.to")
            else:
                dtype = as_dtype(value, "Module.to")
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"Module.to: unexpected argument(s) {sorted(kwargs)}")
        if dtype is not None:
            if dtype.kind != "f":
                raise TypeError(f"Module.to: dtype must be a floating type (it casts the "
                                f"parameters), got {dtype}")
            for t in self.parameters() + self.buffers():
                if t._data.dtype.kind == "f" and t._data.dtype != dtype:
                    old = t._data
                    t._replace_data(old.astype(dtype), "Module.to")
                    note_inplace_change(old)   # graphs that read the old values must not
                                               # backpropagate into these
                    if t.grad is not None:
                        t.grad = Tensor._wrap(t.grad._data.astype(dtype), None)
        return self

    def cpu(self):
        """The module itself: tensorgrad computes on the CPU."""
        return self

    def cuda(self, device=None):
        """Refused: tensorgrad computes with numpy on the CPU."""
        device_arg("cuda", "Module.cuda")

    def float(self):
        """Cast the floating-point parameters and buffers to float32."""
        return self.to(np.float32)

    def double(self):
        """Cast the floating-point parameters and buffers to float64."""
        return self.to(np.float64)

    # ------------------------------------------------------------ saving

    def _state_tensors(self):
        """{dotted name: tensor} of what state_dict saves, in PyTorch's order: each module's
        parameters, then its persistent buffers, parents before children."""
        out, seen = {}, set()
        for path, module in self.named_modules():
            for name, p in module._own_parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    out[_dotted(path, name)] = p
            for name, persistent in module._buffer_flags().items():
                value = getattr(module, name)
                if persistent and value is not None:
                    out[_dotted(path, name)] = value
        return out

    def state_dict(self):
        """Every parameter and persistent buffer by dotted name, as numpy arrays (copies)."""
        return {name: t._data.copy() for name, t in self._state_tensors().items()}

    def load_state_dict(self, state):
        """Copy arrays from `state` into the parameters and buffers; names and shapes must
        match (all are checked before any is copied)."""
        own = self._state_tensors()
        for name, value in checked_state(state, own, "model").items():
            note_inplace_change(own[name]._data)     # a graph that read the old value
            own[name]._data[...] = value              # must not run backward with the new

    def __repr__(self):
        inner = "".join(f"\n  ({name}): " + repr(child).replace("\n", "\n  ")
                        for name, child in self.named_children())
        return f"{type(self).__name__}({self.extra_repr()}{inner}{chr(10) if inner else ''})"

    def extra_repr(self):
        return ""


def _dotted(path, name):
    return f"{path}.{name}" if path else name


def zero_grads(params, set_to_none=True):
    """Set each tensor's `.grad` to None (the next backward starts anew) or, with
    `set_to_none=False`, to zeros of its shape (a missing one stays None, as in PyTorch)."""
    if not isinstance(set_to_none, bool):
        raise TypeError(f"zero_grad: set_to_none must be True or False, got "
                        f"{shown(set_to_none)}")
    for p in params:
        if set_to_none or p.grad is None:
            p.grad = None
        else:
            p.grad = Tensor._wrap(np.zeros_like(p.grad._data), None)


def _made_on(module, device, dtype, name):
    """A layer's `device=` (the CPU only) and `dtype=` (a floating dtype for its parameters
    and buffers, float32 by default), as PyTorch's layers take them."""
    device_arg(device, name)
    if dtype is not None:
        module.to(dtype)
    return module


class Linear(Module):
    """y = x @ weight.T + bias, weight of shape (out_features, in_features), as PyTorch.

    Initialised uniformly in +-1/sqrt(in_features), as PyTorch does.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None,
                 generator=None):
        in_features = int_arg(in_features, "Linear", "in_features", low=0)
        out_features = int_arg(out_features, "Linear", "out_features", low=0)
        bound = 1 / math.sqrt(in_features) if in_features else 0.0
        self.weight = _uniform((out_features, in_features), bound, generator)
        self.bias = _uniform((out_features,), bound, generator) if bias else None
        _made_on(self, device, dtype, "Linear")

    def forward(self, x):
        x = _tensor(x, "Linear")
        if x.shape[-1:] != self.weight.shape[1:]:
            raise ValueError(f"Linear: expected input of shape (..., {self.weight.shape[1]}) "
                             f"(in_features={self.weight.shape[1]}), got {x.shape}")
        return linear(x, self.weight, self.bias)

    def extra_repr(self):
        out_features, in_features = self.weight.shape
        return f"{in_features}, {out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: row i of `weight` (num_embeddings, embedding_dim) for index i."""

    def __init__(self, num_embeddings, embedding_dim, device=None, dtype=None, generator=None):
        self.weight = randn(int_arg(num_embeddings, "Embedding", "num_embeddings", low=0),
                            int_arg(embedding_dim, "Embedding", "embedding_dim", low=0),
                            generator=generator, requires_grad=True)
        _made_on(self, device, dtype, "Embedding")

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
    as the lecture does; PyTorch divides by n) and updates the running statistics with
    `momentum`; eval mode uses the running statistics. Input (N, C), or (N, L, C)
    normalised over N and L (features last, as the lecture's; PyTorch takes (N, C, L)).
    Runs on `functional.batch_norm`, whose training-mode backward is derived with sympy.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, device=None, dtype=None):
        num_features = int_arg(num_features, "BatchNorm1d", "num_features", low=0)
        if momentum is None:
            raise TypeError("BatchNorm1d: momentum must be a number in [0, 1]; the cumulative "
                            "average of momentum=None is not supported")
        self.eps = number_arg(eps, "BatchNorm1d", "eps", low=0)
        self.momentum = number_arg(momentum, "BatchNorm1d", "momentum", low=0, high=1)
        self.weight = ones(num_features, requires_grad=True)
        self.bias = zeros(num_features, requires_grad=True)
        self.register_buffer("running_mean", zeros(num_features))
        self.register_buffer("running_var", ones(num_features))
        self.register_buffer("num_batches_tracked", tensor(0))   # training batches seen
        _made_on(self, device, dtype, "BatchNorm1d")

    def forward(self, x):
        x = _tensor(x, "BatchNorm1d")
        if x.ndim not in (2, 3) or x.shape[-1] != self.weight.shape[0]:
            raise ValueError(f"BatchNorm1d: expected input (N, {self.weight.shape[0]}) or "
                             f"(N, L, {self.weight.shape[0]}), got {x.shape}")
        if self.training and math.prod(x.shape[:-1]) < 2:
            raise ValueError(f"BatchNorm1d: training needs more than one value per "
                             f"feature to compute a variance, got input {x.shape}")
        out = batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         training=self.training, momentum=self.momentum, eps=self.eps)
        if self.training:
            _count_batch(None, self.num_batches_tracked)
            note_effect(_count_batch, out._data, self.num_batches_tracked)  # compiled too
        return out

    def extra_repr(self):
        return f"{self.weight.shape[0]}, eps={self.eps}, momentum={self.momentum}"


def _count_batch(steps, counter):
    """One more training batch seen, as PyTorch counts in `num_batches_tracked` (called as
    an update outside the graph, which a compiled step makes too: `steps` is unused)."""
    counter._data += 1


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


# ---------------------------------------------------------------- layers without parameters

class ReLU(Module):
    """max(x, 0), elementwise. `inplace` is accepted and computes out of place."""

    def __init__(self, inplace=False):
        self.inplace = bool(inplace)

    def forward(self, x):
        return _tensor(x, "ReLU").relu()


class Sigmoid(Module):
    """The logistic function 1 / (1 + exp(-x)), elementwise."""

    def forward(self, x):
        return _tensor(x, "Sigmoid").sigmoid()


class GELU(Module):
    """GELU, x * Phi(x), elementwise (approximate='tanh' for the tanh approximation)."""

    def __init__(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got "
                             f"{approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return gelu(_tensor(x, "GELU"), self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Dropout(Module):
    """In training mode, zero each element with probability p and scale the rest by
    1/(1 - p) (so the expected value is unchanged); in eval mode, the identity. The mask
    is drawn from the global generator (`tensorgrad.manual_seed`). `inplace` is accepted
    and computes out of place: the same values, in a new tensor."""

    def __init__(self, p=0.5, inplace=False):
        self.p = number_arg(p, "Dropout", "p (the probability of zeroing an element)", low=0,
                            high=1)
        self.inplace = bool(inplace)

    def forward(self, x):
        return dropout(_tensor(x, "Dropout"), self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class LayerNorm(Module):
    """Normalise each row over its last dimensions (`normalized_shape`, e.g. the n_embd
    channels of a (B, T, C) input) with its mean and biased variance, then scale by
    `weight` (ones) and shift by `bias` (zeros). Runs on `functional.layer_norm`, whose
    backward is derived with sympy."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        self.normalized_shape = _normalized_shape(normalized_shape, "LayerNorm")
        self.eps = number_arg(eps, "LayerNorm", "eps", low=0)
        self.elementwise_affine = bool(elementwise_affine)
        affine = self.elementwise_affine
        self.weight = ones(*self.normalized_shape, requires_grad=True) if affine else None
        self.bias = (zeros(*self.normalized_shape, requires_grad=True)
                     if affine and bias else None)
        _made_on(self, device, dtype, "LayerNorm")

    def forward(self, x):
        return layer_norm(_tensor(x, "LayerNorm"), self.normalized_shape, self.weight,
                          self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


def _uniform(shape, bound, generator):
    return (rand(*shape, generator=generator) * (2 * bound) - bound).requires_grad_()
