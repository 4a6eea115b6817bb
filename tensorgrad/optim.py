"""Optimizers: update parameters in place from their `.grad`.

Updates work on the numpy arrays directly, outside the graph, as the lecture's
`p.data += -lr * p.grad` does, and are noted as in-place changes: a graph recorded before
`step()` that still needs the old values refuses to run backward.
"""
import math

import numpy as np

from .versions import note_inplace_change
from .checks import checked_state, int_arg, number_arg, shown
from .nn.modules import zero_grads
from .tensor import Tensor


class Optimizer:
    """Holds the parameters, the step count and the learning rate (or its schedule).

    `lr_schedule`, if given, maps the step number (0, 1, ...) to the learning rate of
    that step, e.g. `lambda step: 0.1 if step < 100_000 else 0.01`.

    The parameters are checked once, here: each a distinct leaf tensor that requires grad.
    A tensor listed twice would be updated twice per step, and a tensor computed by an op
    (`w * 2`) or one that never gets a gradient would silently never train.
    """

    def __init__(self, params, lr, lr_schedule=None, weight_decay=0.0):
        name = type(self).__name__
        self.params = _parameters(name, params)
        self.base_lr = number_arg(lr, name, "lr", low=0)
        self.weight_decay = number_arg(weight_decay, name, "weight_decay", low=0)
        if lr_schedule is not None and not callable(lr_schedule):
            raise TypeError(f"{name}: lr_schedule must be a function of the step number, "
                            f"got {shown(lr_schedule)}")
        self.lr_schedule, self.steps = lr_schedule, 0
        self.lr                                         # the first step's rate, checked now

    @property
    def lr(self):
        """The learning rate the next `step()` uses."""
        if not self.lr_schedule:
            return self.base_lr
        return number_arg(self.lr_schedule(self.steps), type(self).__name__,
                          f"the learning rate lr_schedule({self.steps})", low=0)

    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient: set to None, so the next backward starts anew
        (or to zeros, with set_to_none=False)."""
        zero_grads(self.params, set_to_none)

    def step(self):
        """Update every parameter that has a gradient, then count the step."""
        lr, update = self.lr, self.update
        for i, p in enumerate(self.params):
            grad = p.grad
            if grad is not None:
                note_inplace_change(p._data)
                update(i, p._data, grad._data, lr)
        self.steps += 1

    def update(self, i, param, grad, lr):
        raise NotImplementedError

    def decayed(self, param, grad):
        """The gradient with weight decay (an L2 penalty, as PyTorch adds it) folded in."""
        return grad + self.weight_decay * param if self.weight_decay else grad

    def state_dict(self):
        """The optimizer's state (step count and per-parameter buffers) as numpy arrays."""
        return {"steps": np.array(self.steps)}

    def load_state_dict(self, state):
        """Restore a state from `state_dict()`: the same names and shapes, all checked
        before any buffer is overwritten."""
        state = checked_state(state, self.state_dict(), "optimizer")
        self.steps = int_arg(state["steps"].item(), "load_state_dict", "steps", low=0)
        return state


def _parameters(name, params):
    """`params` as a list of distinct leaf tensors that require grad, or a clear refusal."""
    if isinstance(params, Tensor) or hasattr(params, "parameters"):
        raise TypeError(f"{name}: params must be an iterable of tensors, such as "
                        f"model.parameters(), got {type(params).__name__}")
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"{name}: params must be an iterable of tensors, such as "
                        f"model.parameters(), got {shown(params)}") from None
    if not params:
        raise ValueError(f"{name}: got no parameters to optimize")
    seen = {}
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            groups = " (parameter groups are not supported)" if isinstance(p, dict) else ""
            raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, not a "
                            f"Tensor{groups}")
        if id(p) in seen:
            raise ValueError(f"{name}: parameter {i} is the same tensor as parameter "
                             f"{seen[id(p)]}; it would be updated twice per step")
        seen[id(p)] = i
        if not p.is_leaf:
            raise ValueError(f"{name}: parameter {i} (shape {p.shape}) is not a leaf: "
                             f"'{p.grad_fn.op.name}' computed it, so it gets no .grad; "
                             "optimize the tensors it was computed from")
        if not p.requires_grad:
            raise ValueError(f"{name}: parameter {i} (shape {p.shape}) does not require "
                             "grad, so it would never get a gradient; create it with "
                             "requires_grad=True")
    return params


class SGD(Optimizer):
    """Stochastic gradient descent: p -= lr * grad (with optional momentum)."""

    def __init__(self, params, lr=0.1, momentum=0.0, lr_schedule=None, weight_decay=0.0):
        super().__init__(params, lr, lr_schedule, weight_decay)
        self.momentum = number_arg(momentum, "SGD", "momentum", low=0)
        self.velocity = [np.zeros_like(p._data) for p in self.params] if momentum else None

    def update(self, i, param, grad, lr):
        if self.weight_decay:
            grad = self.decayed(param, grad)
        if self.velocity is not None:
            v = self.velocity[i]
            v *= self.momentum
            v += grad
            grad = v
        param -= lr * grad

    def state_dict(self):
        state = super().state_dict()
        for i, v in enumerate(self.velocity or ()):
            state[f"velocity.{i}"] = v
        return state

    def load_state_dict(self, state):
        state = super().load_state_dict(state)
        for i, v in enumerate(self.velocity or ()):
            v[...] = state[f"velocity.{i}"]


class Adam(Optimizer):
    """Adam: steps scaled by running estimates of the gradient's mean and square."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, lr_schedule=None,
                 weight_decay=0.0):
        super().__init__(params, lr, lr_schedule, weight_decay)
        name = type(self).__name__
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{name}: betas must be a pair of numbers, such as (0.9, 0.999), "
                            f"got {shown(betas)}")
        self.betas = tuple(number_arg(b, name, f"betas[{i}]", low=0, high=1, open_high=True)
                           for i, b in enumerate(betas))
        self.eps = number_arg(eps, name, "eps", low=0)
        self.m = [np.zeros_like(p._data) for p in self.params]
        self.v = [np.zeros_like(p._data) for p in self.params]

    def update(self, i, param, grad, lr):
        b1, b2 = self.betas
        grad = self.decayed(param, grad)
        m, v, t = self.m[i], self.v[i], self.steps + 1
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * grad * grad
        # lr * m_hat / (sqrt(v_hat) + eps), in the order PyTorch computes it (the same
        # rounding in float64, to the last bits)
        denom = np.sqrt(v) / math.sqrt(1 - b2 ** t) + self.eps
        param -= (lr / (1 - b1 ** t)) * m / denom

    def state_dict(self):
        state = super().state_dict()
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            state[f"m.{i}"], state[f"v.{i}"] = m, v
        return state

    def load_state_dict(self, state):
        state = super().load_state_dict(state)
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            m[...], v[...] = state[f"m.{i}"], state[f"v.{i}"]


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019), as torch.optim.AdamW:
    each step first shrinks every parameter by a factor 1 - lr * weight_decay, then takes
    Adam's step on the gradient alone (Adam's weight_decay adds it to the gradient, where
    Adam's scaling then undoes most of its effect)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 lr_schedule=None):
        super().__init__(params, lr, betas, eps, lr_schedule, weight_decay)

    def decayed(self, param, grad):
        return grad                             # the decay is applied to the parameter

    def update(self, i, param, grad, lr):
        if self.weight_decay:
            param *= 1 - lr * self.weight_decay
        super().update(i, param, grad, lr)


__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]
