"""The recorded graph and the backward pass over it.

Each op applied to a tensor that requires grad records a `Node`: the op, its attributes, the
input arrays its backward needs, and the nodes that made those inputs. Leaves that require
grad have a node too, with no op. A Tensor points to its node; nodes point only backwards,
to their parents, so the graph has no cycles and is freed as soon as nothing refers to its
output.

Nodes, not tensors, form the graph so that an in-place change of a tensor (`t += 1`,
`t[i] = v`) can give the tensor a new node while the ops that read the old value keep
pointing at the old one.

In order: recording on and off (no_grad ...), keep_grads, anomaly mode, in-place safety
and shared memory, the Node, the topological order and the backward pass, tracing hooks for
codegen, and `grad` (not implemented yet).
"""
import contextlib
import functools
import heapq
import inspect
import itertools
import operator
import os
import sys
import warnings
import weakref

import numpy as np

from .arrays import unbroadcast

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


class keep_grads(contextlib.ContextDecorator):
    """Inside this block, backward passes keep every node's gradient in `node.grad`.

    Normally, as in PyTorch, only leaves and tensors that called `retain_grad()` keep their
    gradient; the others are dropped as soon as they have been passed on, to save memory.
    Keeping them all lets a drawing of the backward pass (`tensorgrad.viz`) show the
    gradient of every intermediate. It costs one array per node while the graph lives.
    """

    def __enter__(self):
        _keeping_grads.append(True)

    def __exit__(self, *exc):
        _keeping_grads.pop()


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


# ---------------------------------------------------------------- in-place safety
# A node keeps the arrays its backward needs: its inputs, its output, and any array among its
# attributes (an index, a mask). If one of them is changed in place afterwards (`y += 1`
# inside no_grad, `idx[0] = 3`, `optimizer.step()`, `load_state_dict()`), the gradient
# computed from it would be silently wrong. Every in-place change through tensorgrad is
# noted here by the array that owns the memory; backward refuses to use a node whose saved
# arrays were changed after the node was made (PyTorch's version counters, by another name).

_changes = [0]        # how many in-place changes so far: a clock
_changed_at = {}      # id of a memory-owning array -> the clock at its latest change


def memory_owner(array):
    """The array that owns `array`'s memory: itself, or the base its view was taken from."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def note_inplace_change(array):
    """Record that `array` (or the memory it views) is being changed in place."""
    owner = memory_owner(array)
    _changes[0] += 1
    if id(owner) not in _changed_at:
        weakref.finalize(owner, _changed_at.pop, id(owner), None)
    _changed_at[id(owner)] = _changes[0]


def saved_arrays(node):
    """(what, array) for every array `node` keeps for its backward: inputs, output, and the
    arrays among its attributes (an index tensor, a boolean mask)."""
    yield from ((f"input {i}", a) for i, a in enumerate(node.inputs))
    yield "the output", node.out
    for key, value in node.attrs.items():
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, np.ndarray):
                yield f"the {key} array", item


def _check_unchanged(node):
    """Raise if an array `node` saved was changed in place after the node was made."""
    for what, array in saved_arrays(node):
        if _changed_at.get(id(memory_owner(array)), 0) > node.made_at:
            i = int(what[6:]) if what.startswith("input ") else None
            parent = node.parents[i] if i is not None else None
            name = f" ('{parent.name}')" if parent is not None and parent.name else ""
            raise RuntimeError(
                f"backward: {what}{name} of '{node.op.name}' (shape {array.shape}) was changed "
                "in place after the op used it, so its gradient would be wrong; clone() the "
                "tensor before changing it, or change it after backward()")


# Tensors can share memory: a view (`y[0]`, `y.view(...)`, `y.T`), `detach()`, or an array
# handed to numpy code (`numpy()`, `.data`, `from_numpy`). An in-place op that is recorded
# in the graph gives its tensor a new array (the old values stay for the nodes that read
# them), so the tensors sharing the old memory would not see the change, as they do in
# PyTorch. Such an op is refused instead of silently leaving them behind.

_sharers = {}    # id of a memory-owning array -> {id: weak reference} of the tensors viewing
                 # it, or None once the memory was handed to numpy code


def note_sharing(array, *tensors):
    """Record that `tensors` share `array`'s memory (none given: numpy code holds it)."""
    owner = memory_owner(array)
    key = id(owner)
    if key not in _sharers:
        weakref.finalize(owner, _sharers.pop, key, None)
        _sharers[key] = {}
    if not tensors:
        _sharers[key] = None
    elif _sharers[key] is not None:
        _sharers[key].update((id(t), weakref.ref(t)) for t in tensors)


def check_unshared(tensor, op_name):
    """Refuse a recorded in-place op on `tensor` if other tensors or numpy code see its memory."""
    owner = memory_owner(tensor._data)
    if id(owner) not in _sharers:
        return
    family = _sharers[id(owner)]
    if family is None:
        holder = "numpy code (numpy(), .data or from_numpy)"
    else:
        others = [t for t in (ref() for ref in family.values())
                  if t is not None and t is not tensor and memory_owner(t._data) is owner]
        if not others:
            return
        holder = "another tensor (a view such as t[0], t.view(...) or t.T, or detach())"
    raise RuntimeError(
        f"{op_name}: in-place change, recorded in the graph, of a tensor whose memory "
        f"{holder} shares; tensorgrad would update this tensor alone and the others would keep "
        "the old values. Write it out of place (y = y + x), or clone() the tensor before "
        "taking views of it")


_sequence = itertools.count()


class Node:
    """One recorded op application (or, with `op` None, a leaf that requires grad).

    `parents[i]` is the node of input i, or None when that input needs no gradient. `seq`
    numbers nodes in the order they were made, so a node's number is larger than its
    parents'.
    `tensor` is a weak reference to the tensor whose `.grad` receives this node's gradient:
    set for leaves and for tensors that called `retain_grad()`. `name` is the name of the
    tensor it made (`Tensor.name`), for drawing. `grad` is the node's gradient from the
    latest backward pass, kept only inside `keep_grads()`.
    """

    __slots__ = ("op", "attrs", "inputs", "out", "parents", "tensor", "name", "grad", "freed",
                 "made_at", "site", "seq")

    def __init__(self, op, attrs, inputs, out, parents):
        self.op, self.attrs, self.inputs, self.out, self.parents = op, attrs, inputs, out, parents
        self.tensor = self.name = self.grad = self.site = None   # site: set in anomaly mode
        self.freed = False
        self.made_at = _changes[0]
        self.seq = next(_sequence)                # made after its parents: a larger number

    def __repr__(self):
        return f"<{self.op.name if self.op else 'leaf'} node>"


def leaf_node(tensor):
    """The node of a leaf tensor that requires grad: its gradient goes to `tensor.grad`."""
    node = Node(None, None, (), None, ())
    node.tensor = weakref.ref(tensor)
    node.name = tensor.name
    return node


def topological_order(root):
    """Every node `root` depends on, each after all of its parents: in the order they were
    made (`seq`), which is the order the backward pass visits them in, reversed.

    Found with an explicit stack instead of recursion: a chain of 100,000 ops is as easy
    as ten.
    """
    seen, stack = {root}, [root]
    while stack:
        for p in stack.pop().parents:
            if p is not None and p not in seen:
                seen.add(p)
                stack.append(p)
    return sorted(seen, key=operator.attrgetter("seq"))


def backpropagate(roots, retain_graph=False):
    """Backpropagate from `roots`, a dict {node: the gradient of some result with respect
    to that node's output} (one root for `loss.backward()`).

    Walks the nodes from the roots back to the leaves. A node's gradient is complete once
    every node that used it has been visited. Every such user was made after it, so taking
    the waiting nodes latest-made first (a heap on `seq`) is an order that guarantees this,
    found without sorting the whole graph. For each node the engine asks its op for each
    input's gradient, sums that down to the input's shape (unbroadcast), and adds it to
    what the input has received so far.
    """
    grads, keep = dict(roots), _keeping_grads[-1]
    waiting = [(-root.seq, root) for root in grads]
    heapq.heapify(waiting)
    while waiting:
        node = heapq.heappop(waiting)[1]
        g = grads.pop(node)
        if keep:
            node.grad = g
        if node.tensor is not None:
            _deliver(node.tensor(), g)
        op = node.op
        if op is None:
            continue
        if node.freed:
            raise RuntimeError(
                f"backward: the graph through '{op.name}' was already used by an earlier "
                "backward(); call backward(retain_graph=True) the first time to go through it "
                "again, or run the forward pass anew")
        if _changes[0] != node.made_at:
            _check_unchanged(node)
        inputs, out, attrs, grad_fns = node.inputs, node.out, node.attrs, op.grads
        for i, parent in enumerate(node.parents):
            if parent is None:
                continue
            if grad_fns:                          # op.vjp, without one more call
                pg = grad_fns[i](g, out, *inputs, **attrs)
            else:
                pg = op.vjp(i, g, out, inputs, attrs)
            shape = inputs[i].shape
            if pg.shape != shape:
                pg = unbroadcast(pg, shape)
            if node.site is not None:
                check_finite(op.name, f"backward (input {i})", inputs + (g,), pg, node.site)
            if parent in grads:
                grads[parent] = grads[parent] + pg
            else:
                grads[parent] = pg
                heapq.heappush(waiting, (-parent.seq, parent))
        node.freed = not retain_graph


def _deliver(tensor, g):
    """Add a finished gradient to `tensor.grad`, as an array of its own.

    Gradients may alias each other (an add passes the same array to both inputs), so `g`
    is copied, unless it owns its memory and nothing but the backward pass holds it (its
    reference count: the caller's variable, this function's argument and getrefcount's
    own), the test numpy makes before reusing a temporary array.
    """
    if tensor is None:
        return
    dtype = tensor._data.dtype
    if type(g) is not np.ndarray or g.dtype != dtype:
        g = np.array(g, dtype=dtype)
    elif g.base is not None or sys.getrefcount(g) > 3:
        g = g.copy()
    tensor.grad = type(tensor)._wrap(g if tensor.grad is None else tensor.grad._data + g, None)


# ---------------------------------------------------------------- tracing, for codegen
# Functions that compute a constant array from their inputs outside the graph (cross_entropy's
# one-hot of the targets) say how, so generated code can compute it again for new inputs;
# while a step is traced (`tensorgrad.codegen.compile`), updates of state outside the graph
# (batchnorm's running statistics) are recorded too, so the code can make them.

_tracing = [False]
derived_constants = {}     # id(array) -> (weak reference to it, kind, source arrays)
traced_effects = []        # (function, array, arguments): an in-place update outside the graph


@contextlib.contextmanager
def tracing():
    """Record the updates made outside the graph, for the duration of the block."""
    _tracing.append(True)
    try:
        yield
    finally:
        _tracing.pop()
        if not _tracing[-1]:
            traced_effects.clear()


def note_derived(array, kind, *sources):
    """`array` was computed as `kind` of `sources`, outside the graph: remembered while the
    array lives."""
    key = id(array)
    forget = functools.partial(_forget_derived, key)
    derived_constants[key] = (weakref.ref(array, forget), kind, sources)


def _forget_derived(key, reference):
    if key in derived_constants and derived_constants[key][0] is reference:
        del derived_constants[key]


def note_effect(function, array, *arguments):
    """While tracing: `function(array, *arguments)` updated state in place (batchnorm's
    running statistics), so generated code must call it too."""
    if _tracing[-1]:
        traced_effects.append((function, array, arguments))


# ---------------------------------------------------------------- PyTorch's functions

def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Backpropagate from several tensors at once, as `torch.autograd.backward`: the same as
    the sum of their `backward(grad)` calls, in one pass over the graph they share."""
    if create_graph or inputs is not None:
        raise NotImplementedError("autograd.backward: create_graph and inputs are not "
                                  "implemented in tensorgrad yet")
    tensors = list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    grad_tensors = list(grad_tensors) if isinstance(grad_tensors, (list, tuple)) else [
        grad_tensors]
    if len(grad_tensors) != len(tensors):
        raise ValueError(f"autograd.backward: {len(tensors)} tensors but "
                         f"{len(grad_tensors)} gradients")
    roots = {}
    for t, g in zip(tensors, grad_tensors):
        node, g = t._initial_grad(g, "autograd.backward")
        roots[node] = roots[node] + g if node in roots else g
    backpropagate(roots, bool(retain_graph))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """`torch.autograd.grad` is not implemented yet: it raises NotImplementedError."""
    raise NotImplementedError(
        "autograd.grad: gradients returned as values (and gradients of gradients) are not "
        "implemented in tensorgrad yet; call loss.backward() and read each input's .grad")
