"""Optimizers: update parameters in place from their `.grad`.

Updates work on the numpy arrays directly, outside the graph, as the lecture's
`p.data += -lr * p.grad` does, and are noted as in-place changes: a graph recorded before
`step()` that still needs the old values refuses to run backward.
"""
import numpy as np

from .autograd import note_inplace_change


class Optimizer:
    """Holds the parameters, the step count and the learning rate (or its schedule).

    `lr_schedule`, if given, maps the step number (0, 1, ...) to the learning rate of
    that step, e.g. `lambda step: 0.1 if step < 100_000 else 0.01`.
    """

    def __init__(self, params, lr, lr_schedule=None):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got no parameters to optimize")
        self.base_lr, self.lr_schedule, self.steps = lr, lr_schedule, 0

    @property
    def lr(self):
        """The learning rate the next `step()` uses."""
        return self.lr_schedule(self.steps) if self.lr_schedule else self.base_lr

    def zero_grad(self):
        """Forget every parameter's gradient (set to None, so the next backward starts anew)."""
        for p in self.params:
            p.grad = None

    def step(self):
        """Update every parameter that has a gradient, then count the step."""
        lr = self.lr
        for i, p in enumerate(self.params):
            if p.grad is not None:
                note_inplace_change(p._data)
                self.update(i, p._data, p.grad._data, lr)
        self.steps += 1

    def update(self, i, param, grad, lr):
        raise NotImplementedError

    def state_dict(self):
        """The optimizer's state (step count and per-parameter buffers) as numpy arrays."""
        return {"steps": np.array(self.steps)}

    def load_state_dict(self, state):
        """Restore a state from `state_dict()`."""
        self.steps = int(state["steps"])


class SGD(Optimizer):
    """Stochastic gradient descent: p -= lr * grad (with optional momentum)."""

    def __init__(self, params, lr=0.1, momentum=0.0, lr_schedule=None):
        super().__init__(params, lr, lr_schedule)
        self.momentum = momentum
        self.velocity = [np.zeros_like(p._data) for p in self.params] if momentum else None

    def update(self, i, param, grad, lr):
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
        super().load_state_dict(state)
        for i, v in enumerate(self.velocity or ()):
            v[...] = state[f"velocity.{i}"]


class Adam(Optimizer):
    """Adam: steps scaled by running estimates of the gradient's mean and square."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, lr_schedule=None):
        super().__init__(params, lr, lr_schedule)
        self.betas, self.eps = betas, eps
        self.m = [np.zeros_like(p._data) for p in self.params]
        self.v = [np.zeros_like(p._data) for p in self.params]

    def update(self, i, param, grad, lr):
        b1, b2 = self.betas
        m, v, t = self.m[i], self.v[i], self.steps + 1
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * grad * grad
        param -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + self.eps)

    def state_dict(self):
        state = super().state_dict()
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            state[f"m.{i}"], state[f"v.{i}"] = m, v
        return state

    def load_state_dict(self, state):
        super().load_state_dict(state)
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            m[...], v[...] = state[f"m.{i}"], state[f"v.{i}"]
