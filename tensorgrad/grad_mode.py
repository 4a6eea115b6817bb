"""Recording on and off, keeping every gradient, and anomaly mode: the switches of the engine.

`no_grad()`, `enable_grad()` and `set_grad_enabled()` turn recording off and on (as context
managers and decorators); `keep_grads()` makes a backward pass keep every intermediate's
gradient (for drawings); `detect_anomaly()` checks every op's forward and backward for NaN
and Inf born there; `module_call` says which module's forward is running (for drawings'
frames). Each is a flag the engine reads; nothing here knows about tensors.
"""
import contextlib
import functools
import inspect
import os
import sys
import warnings

import numpy as np

_grad_enabled = [True]


def is_grad_enabled():
    """True unless inside `no_grad()`: whether ops on tensors that require grad are recorded."""
    return _grad_enabled[0]


class _GradMode:
    """Recording on or off (`mode`) for a `with` block, or for every call of a decorated
    function. A decorated generator function gets the mode each time its body runs, between
    one `yield` and the next, not only while the generator object is made."""

    mode = False

    def __init__(self):
        self.previous = []

    def __enter__(self):
        self.previous.append(_grad_enabled[0])
        _grad_enabled[0] = self.mode

    def __exit__(self, *exc):
        _grad_enabled[0] = self.previous.pop()

    def _same(self):
        """A fresh context manager with this one's mode (one per call of a decorated function)."""
        return set_grad_enabled(self.mode, now=False)

    def __call__(self, func):
        if not callable(func):
            raise TypeError(f"{type(self).__name__}: decorates a function, got "
                            f"{type(func).__name__}")
        if inspect.isgeneratorfunction(func):
            return _generator_in_mode(self._same, func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self._same():
                return func(*args, **kwargs)
        return wrapper


def _generator_in_mode(mode, func):
    """`func`, a generator function, with each stretch of its body run inside `mode()`."""
    @functools.wraps(func)
    def generator(*args, **kwargs):
        with mode():
            inner = func(*args, **kwargs)
        resume, value = inner.send, None
        while True:
            try:
                with mode():
                    item = resume(value)
            except StopIteration as stop:
                return stop.value
            try:
                value, resume = (yield item), inner.send
            except GeneratorExit:
                with mode():
                    inner.close()
                raise
            except BaseException as error:              # thrown in: pass it to the body
                value, resume = error, inner.throw
    return generator


class no_grad(_GradMode):
    """Do not record ops: for evaluation, sampling and hand-written parameter updates.

    Works as `with tensorgrad.no_grad():` and as a decorator, `@tensorgrad.no_grad()` or
    `@tensorgrad.no_grad`.
    """

    mode = False

    def __new__(cls, func=None):
        if func is None:
            return super().__new__(cls)
        return cls()(func)                       # bare @no_grad: decorate at once


class inference_mode(_GradMode):
    """PyTorch's faster `no_grad` for evaluation, here the same as `no_grad`, as a context
    manager or decorator (`@torch.inference_mode()`); `inference_mode(False)` records.
    Unlike PyTorch, tensors made inside may later be used in recorded ops."""

    def __new__(cls, mode=True):
        if callable(mode):
            return cls()(mode)                   # bare @inference_mode: decorate at once
        return super().__new__(cls)

    def __init__(self, mode=True):
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"inference_mode: mode must be a bool, got {type(mode).__name__}")
        super().__init__()
        self.mode = not mode


class enable_grad(no_grad):
    """Record ops again (inside a `no_grad()` block), as a context manager or decorator."""

    mode = True


class set_grad_enabled(_GradMode):
    """Turn recording on or off: at once when called on its own, as in PyTorch, or for the
    duration of a `with` block or a decorated function."""

    def __init__(self, mode, now=True):
        if not isinstance(mode, (bool, int, np.bool_)):
            raise TypeError(f"set_grad_enabled: mode must be a bool, got {type(mode).__name__}")
        super().__init__()
        self.mode, self.before = bool(mode), _grad_enabled[0]
        if now:
            _grad_enabled[0] = self.mode

    def __enter__(self):
        self.previous.append(self.before)
        _grad_enabled[0] = self.mode

    def __call__(self, func):
        _grad_enabled[0] = self.before          # as a decorator: act per call, not now
        return super().__call__(func)


_keeping_grads = [False]
_keeping_values = [False]      # nodes keep every input and output: keep_grads(), and while
                               # codegen traces a step (it writes the whole graph out)


class keep_grads(contextlib.ContextDecorator):
    """Inside this block the graph keeps everything, for drawings (`tensorgrad.viz`): ops
    recorded here keep every input and output, and backward passes keep every node's
    gradient in `node.grad` and let go of nothing.

    Normally, as in PyTorch, a node keeps only what its gradient reads, only leaves and
    tensors that called `retain_grad()` keep their gradient, and backward lets go of what
    it read. Keeping it all lets a drawing show the value and gradient of every
    intermediate. It costs two arrays per node while the graph lives.
    """

    def __enter__(self):
        _keeping_grads.append(True)
        _keeping_values.append(True)

    def __exit__(self, *exc):
        _keeping_grads.pop()
        _keeping_values.pop()


# The module call running now, as the pair (module, the call it was made in) or None; set by
# nn.Module.__call__ around forward. Each node notes it, so a drawing can frame the ops each
# module call recorded (`viz.draw(loss, modules=model)`). A fresh pair per call tells two
# calls of one module apart; the chain of pairs gives the calls it sits in.
module_call = [None]


# ---------------------------------------------------------------- anomaly detection

_anomaly = [False]
_PACKAGE = os.path.dirname(os.path.abspath(__file__))


class detect_anomaly(contextlib.ContextDecorator):
    """Find where NaN or Inf is born: inside this block (or decorated function), the first
    op whose forward or backward turns finite values into NaN (or a gradient into Inf)
    raises FloatingPointError naming the op, its input shapes and the line of your code
    that created it; an infinity from a forward (log(0)) gives an AnomalyWarning. Off by
    default: the checks cost a pass over every array. Outside it, tensorgrad silences
    numpy's floating-point warnings from its own code: NaN and Inf flow on quietly."""

    def __enter__(self):
        _anomaly.append(True)

    def __exit__(self, *exc):
        _anomaly.pop()


def creation_site():
    """'file:line in function' of the innermost caller outside tensorgrad (anomaly mode)."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame = frame.f_back
    if frame is None:
        return "unknown location"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


class AnomalyWarning(UserWarning):
    """A forward produced an infinity from finite inputs (like log(0) = -inf), in anomaly mode."""


def check_finite(op_name, stage, arrays, result, site):
    """In anomaly mode: complain if `result` holds a NaN or an infinity that no input had.

    A NaN is always an error: inf - inf, 0 * inf and log(-1) are where a NaN is born, even
    when an input was infinite. An infinity from a forward is a warning: log(0) = -inf is the
    right value of a log-probability that is impossible. An infinity in a gradient is an
    error: no update can use it.
    """
    if np.isfinite(result).all():
        return
    if np.isnan(result).any() and not any(np.isnan(a).any() for a in arrays):
        bad = "NaN"
    elif np.isinf(result).any() and all(np.isfinite(a).all() for a in arrays):
        bad = "Inf"
    else:
        return                                  # it came in through an input
    shapes = ", ".join(str(a.shape) for a in arrays)
    source = "no NaN" if bad == "NaN" else "finite values"
    message = (f"{op_name}: the {stage} produced {bad} from inputs with {source}, of shapes "
               f"{shapes}; the op was created at {site}")
    if bad == "Inf" and stage == "forward":
        warnings.warn(message, AnomalyWarning, stacklevel=2)
    else:
        raise FloatingPointError(message)
